//! End-to-end tests: real nodes over real HTTP, driven by the AWS SDK for Rust (one test
//! binary for the whole suite, so the SDK is linked once).
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "tests fail loudly on purpose"
)]

mod anti_entropy;
mod auth;
mod backups;
mod batches;
mod capacity;
mod common;
mod concurrency;
mod crash;
mod error_answers;
mod fuzz_regressions;
mod global_backfill;
mod global_chaos;
mod global_clocks;
mod global_control;
mod global_durability;
mod global_kafka_stops;
mod global_parked;
mod global_removal;
mod global_tables;
mod indexes;
mod items;
mod metrics;
mod operator;
mod partiql;
mod peer_links;
mod protocol;
mod publish;
mod query_scan;
mod region_cluster;
mod streams;
mod table_arns;
mod tables;
mod tls;
mod transactions;
mod transfers;
mod ttl;
mod ui;
