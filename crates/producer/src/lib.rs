//! The streamhub producer: watches the admin service for approved topics, creates them
//! in Kafka, activates them and publishes generated events to every active topic.

pub mod generate;
