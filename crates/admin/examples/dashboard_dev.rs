//! Serves the embedded dashboard on a local port, with the CSP the admin app sets, for
//! working on the page: `cargo run -p streamhub-admin --example dashboard_dev -- 127.0.0.1:5080`.

#[path = "../src/dashboard.rs"]
mod dashboard;

use axum::http::{HeaderValue, header};

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:5080".to_owned());
    let app = dashboard::routes::<()>().layer(axum::middleware::map_response(
        |mut res: axum::response::Response| async move {
            res.headers_mut().insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            );
            res
        },
    ));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!(
        "dashboard on http://{} (assets v{})",
        listener.local_addr()?,
        dashboard::asset_version()
    );
    axum::serve(listener, app).await?;
    Ok(())
}
