//! streamhub-producer
