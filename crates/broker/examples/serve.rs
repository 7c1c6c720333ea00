//! Runs the broker until Ctrl-C: `cargo run -p streamhub-broker --example serve -- [listen] [data dir]`.

use std::net::SocketAddr;

use streamhub_broker::{Broker, BrokerConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let mut args = std::env::args().skip(1);
    let listen: SocketAddr = args
        .next()
        .unwrap_or_else(|| "127.0.0.1:9092".into())
        .parse()?;
    let mut config = BrokerConfig::ephemeral();
    config.listen = listen;
    config.data_dir = args.next().map(Into::into);
    let broker = Broker::start(config).await?;
    println!("bootstrap.servers={}", broker.bootstrap_servers());
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        e = broker.failed() => eprintln!("{e}"),
    }
    broker.shutdown().await;
    Ok(())
}
