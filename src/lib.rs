//! calltrail: receives voice-gateway call-status notifications, stores them durably, folds
//! them into one record per call and serves call history and outcomes.

pub mod call;
pub mod cli;
pub mod config;
pub mod dialer;
pub mod dialout;
pub mod healthcheck;
pub mod http;
pub mod import;
pub mod ingest;
pub mod metrics;
pub mod notification;
pub mod reprocess;
pub mod retention;
pub mod sim;
pub mod spool;
pub mod startup;
pub mod stats;
pub mod store;
pub mod telemetry;
