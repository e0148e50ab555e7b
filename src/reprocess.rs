//! Reprocessing stored deliveries through today's normalizer and configuration.

use crate::ingest::Ingested;
use crate::notification::NormalizeSettings;
use crate::store::query::{DeliveryFilter, Page};
use crate::store::{self, Recorded, Store};

/// Runs stored deliveries through the parser again, each with the normalizer of the source
/// whose endpoint received it.
#[derive(Debug, Clone)]
pub struct Reprocessor {
    store: Store,
    settings: NormalizeSettings,
}

/// What a bulk reprocessing did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Counts {
    /// Deliveries run through the normalizer again.
    pub reprocessed: u64,
    /// Of those, the ones now `accepted`.
    pub accepted: u64,
    /// Of those, the ones now `duplicate`.
    pub duplicate: u64,
    /// Of those, the ones now `rejected`.
    pub rejected: u64,
}

impl Reprocessor {
    pub fn new(store: Store, settings: NormalizeSettings) -> Self {
        Self { store, settings }
    }

    /// Reprocesses one delivery; `None` when there is no such delivery.
    #[tracing::instrument(skip(self))]
    pub async fn one(&self, delivery_id: i64) -> store::Result<Option<Ingested>> {
        let Some(delivery) = self.store.delivery(delivery_id).await? else {
            return Ok(None);
        };
        let parsed = delivery.source.parse(&delivery.body, &self.settings);
        let recorded = self.store.reprocess(&delivery, &parsed).await?;
        Ok(Some(Ingested { recorded, parsed }))
    }

    /// Reprocesses every delivery matching `filter`, newest first, a page at a time.
    /// Deliveries that arrive meanwhile are newer than the first page and are left alone.
    #[tracing::instrument(skip(self))]
    pub async fn all(&self, filter: &DeliveryFilter) -> store::Result<Counts> {
        const PAGE: u32 = 500;
        let mut counts = Counts::default();
        let mut after = None;
        loop {
            let Page { items, next } = self
                .store
                .list_deliveries(filter, after.as_ref(), PAGE)
                .await?;
            for delivery in &items {
                let parsed = delivery.source.parse(&delivery.body, &self.settings);
                match self.store.reprocess(delivery, &parsed).await? {
                    Recorded::Accepted { .. } => counts.accepted += 1,
                    Recorded::Duplicate { .. } => counts.duplicate += 1,
                    Recorded::Rejected { .. } => counts.rejected += 1,
                }
                counts.reprocessed += 1;
            }
            match next {
                Some(cursor) => after = Some(cursor),
                None => return Ok(counts),
            }
        }
    }
}
