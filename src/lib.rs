//! calltrail: receives voice-gateway call-status notifications, stores them durably, folds
//! them into one record per call and serves call history and outcomes.

pub mod call;
pub mod notification;
pub mod store;
