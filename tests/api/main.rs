//! calltrail's HTTP API as a user sees it: a real server on a random port, a fresh database
//! per test, on SQLite and on PostgreSQL.

#[path = "../support/mod.rs"]
mod support;

mod helpers;

mod auth;
mod bad_input;
mod batching;
mod calls;
mod dashboard;
mod database_down;
mod deliveries;
mod dialouts;
mod duplicates;
mod end_to_end;
mod export;
mod gateways;
mod list;
mod metrics;
mod openapi;
mod problems;
mod retention;
mod samples;
mod seed;
mod signatures;
mod simulator;
mod slow_clients;
mod sources;
mod spool;
mod spool_sources;
mod stats;
