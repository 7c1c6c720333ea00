//! streamhub-admin
