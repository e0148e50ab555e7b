//! How the simulator behaves.

use std::net::SocketAddr;
use std::path::PathBuf;

use chrono_tz::Tz;

use super::faults::Faults;
use super::outcome::Weights;
use crate::dialout::Secret;
use crate::notification::{DateOrder, Format};

/// How the simulator behaves.
#[derive(Debug, Clone)]
pub struct SimSettings {
    pub bind: SocketAddr,
    /// The app's client id: the JWT's `appId` must be this.
    pub client_id: String,
    /// The secret the JWT must be signed with.
    pub client_secret: Secret,
    /// When set, only this bot id is served (another is a 404).
    pub bot_id: Option<String>,
    /// Simulated seconds per real second: 10 plays a 30-second call in 3 seconds.
    pub speed: f64,
    pub weights: Weights,
    /// The zone of the gateway's local-time timestamps.
    pub timezone: Tz,
    pub date_order: DateOrder,
    pub faults: Faults,
    /// The first this many dial-out requests are answered `500` (after authentication).
    pub fail_first_dialouts: u32,
    /// Where every played call is written, one JSON object per line.
    pub log: Option<PathBuf>,
    /// Seeds the random choices, for repeatable runs.
    pub seed: Option<u64>,
    /// Which gateway's notifications to send: Kore.ai's to the dial-out's `notifyurl`, or
    /// jambonz's (Twilio's) to the same URL with `/notify` turned into `/jambonz/notify`
    /// (`/twilio/notify`).
    pub source: Format,
    /// Signs every notification as the source does with this secret.
    pub signing_secret: Option<Secret>,
}

impl Default for SimSettings {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 9090)),
            client_id: "calltrail-sim".into(),
            client_secret: Secret::new("calltrail-sim-secret"),
            bot_id: None,
            speed: 1.0,
            weights: Weights::default(),
            timezone: chrono_tz::UTC,
            date_order: DateOrder::Mdy,
            faults: Faults::default(),
            fail_first_dialouts: 0,
            log: None,
            seed: None,
            source: Format::Kore,
            signing_secret: None,
        }
    }
}
