//! Kore.ai Voice Gateway notifications. (stub: to be implemented)

use super::{NormalizeSettings, Notification, Rejection};

/// Parses and normalizes one Kore.ai notification body.
pub fn parse(_body: &[u8], _settings: &NormalizeSettings) -> Result<Notification, Rejection> {
    todo!()
}
