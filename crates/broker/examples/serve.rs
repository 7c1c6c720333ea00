//! Runs the broker until Ctrl-C:
//! `cargo run -p streamhub-broker --example serve -- [listen] [data dir] [--sasl-user name:password]... [--super-user User:name]...`.
//!
//! Any `--sasl-user` turns SASL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) and ACLs on; those
//! users get SCRAM credentials for their passwords.

use std::net::SocketAddr;

use streamhub_broker::{Broker, BrokerConfig, SaslConfig, SaslUser, Security};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let mut positional = Vec::new();
    let mut sasl = SaslConfig::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--sasl-user" => {
                let v = args.next().ok_or("--sasl-user needs name:password")?;
                let (name, password) =
                    v.split_once(':').ok_or("--sasl-user needs name:password")?;
                sasl.users.push(SaslUser {
                    name: name.into(),
                    password: password.into(),
                });
            }
            "--super-user" => sasl.super_users.push(
                args.next()
                    .ok_or("--super-user needs a principal, e.g. User:admin")?,
            ),
            _ => positional.push(arg),
        }
    }
    let mut positional = positional.into_iter();
    let listen: SocketAddr = positional
        .next()
        .unwrap_or_else(|| "127.0.0.1:9092".into())
        .parse()?;
    let mut config = BrokerConfig::ephemeral();
    config.listen = listen;
    config.data_dir = positional.next().map(Into::into);
    if !sasl.users.is_empty() || !sasl.super_users.is_empty() {
        config.security = Security::Sasl(sasl);
    }
    let broker = Broker::start(config).await?;
    println!("bootstrap.servers={}", broker.bootstrap_servers());
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        e = broker.failed() => eprintln!("{e}"),
    }
    broker.shutdown().await;
    Ok(())
}
