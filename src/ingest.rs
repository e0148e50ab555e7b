//! The receiving pipeline shared by `POST /notify` and `calltrail import`: parse and
//! normalize (pure), then record (I/O).

use chrono::Utc;

use crate::notification::{Format, NormalizeSettings, Notification, Rejection};
use crate::store::{self, NewDelivery, Recorded, Store};

/// What became of one body.
#[derive(Debug)]
pub struct Ingested {
    /// What the store did.
    pub recorded: Recorded,
    /// The parse result the store acted on.
    pub parsed: Result<Notification, Rejection>,
}

/// Parses, normalizes and durably records notification bodies.
#[derive(Debug, Clone)]
pub struct Ingest {
    store: Store,
    format: Format,
    settings: NormalizeSettings,
}

impl Ingest {
    /// A pipeline for one gateway format.
    pub fn new(store: Store, format: Format, settings: NormalizeSettings) -> Self {
        Self {
            store,
            format,
            settings,
        }
    }

    /// Records one body, received now. Returns after the commit.
    #[tracing::instrument(skip_all, fields(bytes = body.len()))]
    pub async fn ingest(&self, body: &[u8], content_type: Option<&str>) -> store::Result<Ingested> {
        let received_at = Utc::now();
        let parsed = self.format.parse(body, &self.settings);
        let delivery = NewDelivery {
            received_at,
            content_type,
            body,
        };
        let recorded = self.store.record(delivery, &parsed).await?;
        Ok(Ingested { recorded, parsed })
    }
}
