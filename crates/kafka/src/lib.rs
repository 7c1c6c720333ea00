//! streamhub-kafka
