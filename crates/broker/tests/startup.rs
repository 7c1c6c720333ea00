//! Start time with a few topics (printed, not asserted: figures belong in benchmarks).

mod common;

use std::time::Instant;

use common::*;
use kafka_protocol::messages::*;
use streamhub_broker::{Broker, BrokerConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_broker_answers_with_its_topics() {
    let dir = tempfile::tempdir().expect("temp dir");
    let broker = Broker::start(BrokerConfig::with_data_dir(dir.path()))
        .await
        .expect("start");
    let bs = broker.bootstrap_servers();
    for i in 0..5 {
        create_topic(&bs, &format!("t{i}"), 4).await;
    }
    broker.shutdown().await;

    let started = Instant::now();
    let broker = Broker::start(BrokerConfig::with_data_dir(dir.path()))
        .await
        .expect("restart");
    let mut raw = RawClient::connect(&broker).await;
    let r: MetadataResponse = raw
        .call(
            ApiKey::Metadata,
            12,
            &MetadataRequest::default().with_topics(None),
        )
        .await;
    let elapsed = started.elapsed();
    assert_eq!(r.topics.len(), 5);
    assert!(r.topics.iter().all(|t| t.partitions.len() == 4));
    eprintln!("restart to first answer with 5 topics x 4 partitions: {elapsed:?}");
    broker.shutdown().await;
}
