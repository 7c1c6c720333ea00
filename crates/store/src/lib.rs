//! streamhub-store
