//! `streamhub up --sample-topics`: the original's five topics, requested and approved at
//! start so that the producer provisions them and a first read has data.

use anyhow::Context;
use streamhub_model::{Action, DataType, TopicName};
use streamhub_store::{NewTopic, Store, StoreError, TopicRef};

/// Name, partitions and description of each sample topic; the data type is inferred from
/// the name, as for any request that names none.
pub const SAMPLE_TOPICS: [(&str, i32, &str); 5] = [
    ("sensor_data", 3, "IoT sensor readings"),
    ("payments", 3, "Payment transactions"),
    ("weather", 1, "Weather station reports"),
    ("logs", 2, "Application logs"),
    ("user_activity", 3, "User activity on a web site"),
];

/// Requests each sample topic in the name of `admin` and approves it. A sample topic that
/// already exists (a later start on the same data) is left as it is: an admin may have
/// deactivated it since.
pub async fn ensure(store: &dyn Store, admin: &str) -> anyhow::Result<()> {
    for (name, partitions, description) in SAMPLE_TOPICS {
        match store.topic_by_name(name).await {
            Ok(_) => continue,
            Err(StoreError::NotFound(_)) => {}
            Err(e) => return Err(e).with_context(|| format!("cannot look up topic {name}")),
        }
        let topic_name: TopicName = name.parse()?;
        let topic = store
            .create_topic(
                admin,
                NewTopic {
                    name: topic_name,
                    created_by: admin.to_owned(),
                    partitions,
                    replication_factor: 1,
                    description: description.to_owned(),
                    data_type: DataType::infer_from_name(name),
                    rate_per_second: None,
                    traffic_profile: None,
                },
            )
            .await
            .with_context(|| format!("cannot request sample topic {name}"))?;
        store
            .transition(admin, TopicRef::Id(topic.topic_id), Action::Approve, None)
            .await
            .with_context(|| format!("cannot approve sample topic {name}"))?;
    }
    Ok(())
}
