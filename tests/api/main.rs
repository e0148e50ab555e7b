//! calltrail's HTTP API as a user sees it: a real server on a random port, a fresh database
//! per test, on SQLite and on PostgreSQL.

#[path = "../support/mod.rs"]
mod support;

mod helpers;

mod auth;
mod bad_input;
mod calls;
mod database_down;
mod duplicates;
mod samples;
