//! The admin service over HTTP: the real server on 127.0.0.1:0 with a temporary SQLite
//! file, driven with reqwest. One binary, one module per concern.

mod common;

mod accounts;
mod auth;
mod authz_matrix;
mod concurrency;
mod connections;
mod errors;
mod events;
mod fuzz_regressions;
mod hardening;
mod limits;
mod multi_instance;
mod openapi;
mod restart;
mod schemas;
mod streams;
mod tls;
mod topic_lists;
mod topic_rules;
mod workflow;
