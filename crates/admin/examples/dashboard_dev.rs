//! Runs the admin service with its dashboard on a local port and a throwaway database,
//! for working on the page and for the browser test without the rest of streamhub:
//!
//!     cargo run -p streamhub-admin --example dashboard_dev -- 127.0.0.1:5080
//!
//! The `admin` password comes from STREAMHUB_ADMIN_PASSWORD or is printed. Kafka
//! figures are off here (no cluster), which is also how the page shows that state.

use streamhub_admin::{AdminConfig, AdminService, Secret};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:5080".to_owned());
    let data = tempfile::tempdir()?;
    let config = AdminConfig {
        listen,
        admin_password: std::env::var("STREAMHUB_ADMIN_PASSWORD")
            .ok()
            .map(Secret::new),
        producer_secret: std::env::var("PRODUCER_SECRET").ok().map(Secret::new),
        ..AdminConfig::local(data.path())
    };
    let handle = AdminService::start(config).await?;
    println!("dashboard on {}/", handle.url());
    if let Some(password) = handle.admin_password() {
        println!("sign in as admin / {password}");
    }
    tokio::signal::ctrl_c().await?;
    handle.stop().await
}
