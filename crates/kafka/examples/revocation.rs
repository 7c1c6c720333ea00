//! How long a running consumer keeps reading after its Read ACL is deleted, for BENCHMARKS.md.
//!
//!   cargo run --release -p streamhub-kafka --example revocation -- --bootstrap HOST:PORT \
//!       -X security.protocol=sasl_plaintext -X sasl.mechanism=SCRAM-SHA-512 \
//!       -X sasl.username=bench -X sasl.password=... \
//!       --admin-X sasl.username=admin --admin-X sasl.password=... --principal User:bench
//!       [--rounds 5]
//!
//! Each round: a fresh one-partition topic and one message in it (written by the admin),
//! Describe and Read on the topic and Read on the group for the principal; a consumer logged in
//! as the principal (`-X`) subscribes and reads the message, then the admin deletes the Read
//! ACL and the time until the consumer sees TOPIC_AUTHORIZATION_FAILED is printed. The
//! consumer long-polls with `fetch.wait.max.ms=100`.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use streamhub_kafka::rdkafka::consumer::{BaseConsumer, Consumer};
use streamhub_kafka::rdkafka::error::RDKafkaErrorCode;
use streamhub_kafka::rdkafka::producer::FutureRecord;
use streamhub_kafka::{KafkaConfig, SecurityAdmin, TopicSpec, parse_property};
use streamhub_model::access::{Acl, Operation, ResourceType};

struct Options {
    bootstrap: String,
    properties: Vec<(String, String)>,
    admin_properties: Vec<(String, String)>,
    principal: String,
    rounds: usize,
}

fn options() -> anyhow::Result<Options> {
    let (mut bootstrap, mut principal) = (None, None);
    let mut o = Options {
        bootstrap: String::new(),
        properties: Vec::new(),
        admin_properties: Vec::new(),
        principal: String::new(),
        rounds: 5,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--bootstrap" => bootstrap = Some(value()?),
            "--principal" => principal = Some(value()?),
            "--rounds" => o.rounds = value()?.parse()?,
            "-X" => o
                .properties
                .push(parse_property(&value()?).map_err(anyhow::Error::msg)?),
            "--admin-X" => o
                .admin_properties
                .push(parse_property(&value()?).map_err(anyhow::Error::msg)?),
            other => bail!(
                "unknown argument {other}; use --bootstrap HOST:PORT, --principal User:NAME, \
                 --rounds N, -X key=value, --admin-X key=value"
            ),
        }
    }
    o.bootstrap = bootstrap.context("--bootstrap HOST:PORT is required")?;
    o.principal = principal.context("--principal User:NAME is required")?;
    if o.rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    Ok(o)
}

/// Polls until a message (Ok) or an error (Err with its code) arrives, within `within`.
fn next(consumer: &BaseConsumer, within: Duration) -> anyhow::Result<Result<(), RDKafkaErrorCode>> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(20)) {
            None => {}
            Some(Ok(_)) => return Ok(Ok(())),
            Some(Err(e)) => {
                return Ok(Err(e
                    .rdkafka_error_code()
                    .unwrap_or(RDKafkaErrorCode::Unknown)));
            }
        }
    }
    bail!("neither a message nor an error within {within:?}")
}

async fn round(o: &Options, user: &KafkaConfig, admin: &KafkaConfig) -> anyhow::Result<f64> {
    let topic = format!("revocation-{:08x}", rand::random::<u32>());
    let group = format!("{topic}-reader");
    admin
        .admin()?
        .ensure_topic(&TopicSpec::new(&topic, 1, 1))
        .await?;
    admin
        .producer()?
        .send(
            FutureRecord::<(), str>::to(&topic).payload("m"),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)
        .context("writing the message")?;
    let read = Acl::allow(&o.principal, Operation::Read, ResourceType::Topic, &topic);
    let acls = [
        read.clone(),
        Acl::allow(
            &o.principal,
            Operation::Describe,
            ResourceType::Topic,
            &topic,
        ),
        Acl::allow(&o.principal, Operation::Read, ResourceType::Group, &group),
    ];
    let security = SecurityAdmin::new(admin)?;
    security.create_acls(&acls).await?;

    let mut c = user.client_config();
    c.set("group.id", &group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "100");
    let consumer: BaseConsumer = c.create()?;
    consumer.subscribe(&[&topic])?;
    // Kafka's authorizer takes the new ACLs from its metadata a moment later: early refusals
    // are retried by librdkafka's fetcher, so wait for the message itself.
    let consumer = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match next(&consumer, Duration::from_secs(30))? {
                Ok(()) => return anyhow::Ok(consumer),
                Err(_) if Instant::now() < deadline => {}
                Err(e) => bail!("the consumer cannot read before the revocation: {e:?}"),
            }
        }
    })
    .await??;

    let removed = security.delete_acls(std::slice::from_ref(&read)).await?;
    let revoked = Instant::now();
    if removed != 1 {
        bail!("deleting the Read ACL removed {removed} ACLs");
    }
    let outcome =
        tokio::task::spawn_blocking(move || next(&consumer, Duration::from_secs(30))).await??;
    let secs = revoked.elapsed().as_secs_f64();
    match outcome {
        Err(RDKafkaErrorCode::TopicAuthorizationFailed) => {}
        other => bail!("after the revocation: {other:?}, not TOPIC_AUTHORIZATION_FAILED"),
    }
    security.delete_acls(&acls).await?;
    admin.admin()?.delete_topic(&topic).await?;
    Ok(secs)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let o = options()?;
    let mut user = KafkaConfig::new(&o.bootstrap).with_timeout(Duration::from_secs(30));
    for (k, v) in &o.properties {
        user = user.with(k, v);
    }
    let mut admin = user.clone();
    for (k, v) in &o.admin_properties {
        admin = admin.with(k, v);
    }
    let mut times = Vec::with_capacity(o.rounds);
    for i in 1..=o.rounds {
        let secs = round(&o, &user, &admin).await?;
        println!(
            "round {i}: refused {:.3} s after the Read ACL was deleted",
            secs
        );
        times.push(secs);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "refused after revocation: median {:.3} s (min {:.3}, max {:.3}, {} rounds)",
        times[times.len() / 2],
        times[0],
        times[times.len() - 1],
        times.len()
    );
    Ok(())
}
