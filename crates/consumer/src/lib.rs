//! streamhub-consumer
