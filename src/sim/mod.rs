//! `calltrail-sim`: a stand-in for the voice gateway, so that the whole loop — dial-out,
//! call, notifications — runs on one machine without a Kore.ai account, and so that tests and
//! benchmarks have a realistic peer.
//!
//! - [`server`]: the gateway's two dial-out APIs (`v1`, `v2`), the `auth` JWT checked, the
//!   body checked as the seed says ([`validate`]); each accepted dial-out is then played;
//! - [`player`]: plays a call — sends its notifications to `notifyurl` on time (scaled by
//!   `--speed`), with the injected [`faults`], and writes what it decided and sent to a
//!   JSON-lines log;
//! - [`outcome`], [`script`], [`time`], [`faults`]: the pure parts — what happens to a call,
//!   which notifications that makes, the gateway's time format;
//! - [`load`]: `calltrail-sim load`, realistic notifications at a fixed rate, with latency
//!   percentiles;
//! - [`senders`]: the same notifications as jambonz or Twilio send them, with signatures.

pub mod cli;
pub mod faults;
pub mod load;
pub mod outcome;
pub mod player;
pub mod script;
pub mod senders;
pub mod server;
mod settings;
pub mod time;
pub mod validate;

pub use server::{SimHandle, SimSettings, Simulator};
