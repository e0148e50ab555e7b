//! Reprocessing stored deliveries through today's normalizer and configuration.

use crate::ingest::Ingested;
use crate::notification::{Format, NormalizeSettings};
use crate::store::query::{DeliveryFilter, Page};
use crate::store::{self, Recorded, Store};

/// Runs stored deliveries through the parser again.
#[derive(Debug, Clone)]
pub struct Reprocessor {
    store: Store,
    format: Format,
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
    pub fn new(store: Store, format: Format, settings: NormalizeSettings) -> Self {
        Self {
            store,
            format,
            settings,
        }
    }

    /// The format a stored body is read in. Deliveries do not record the endpoint they
    /// came to, so the body says: a JSON object with a `call_sid` is jambonz's, a form with
    /// a `CallSid` Twilio's, anything else this reprocessor's own format.
    fn format_of(&self, body: &[u8]) -> Format {
        format_of(body).unwrap_or(self.format)
    }

    /// Reprocesses one delivery; `None` when there is no such delivery.
    #[tracing::instrument(skip(self))]
    pub async fn one(&self, delivery_id: i64) -> store::Result<Option<Ingested>> {
        let Some(delivery) = self.store.delivery(delivery_id).await? else {
            return Ok(None);
        };
        let parsed = self
            .format_of(&delivery.body)
            .parse(&delivery.body, &self.settings);
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
                let parsed = self
                    .format_of(&delivery.body)
                    .parse(&delivery.body, &self.settings);
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

/// jambonz or Twilio when `body` can only be theirs (see [`Reprocessor::format_of`]).
fn format_of(body: &[u8]) -> Option<Format> {
    let is_call_sid = |key: &str| crate::notification::fold_key(key) == "callsid";
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(object)) => object
            .keys()
            .any(|key| is_call_sid(key))
            .then_some(Format::Jambonz),
        Ok(_) => None,
        Err(_) => form_urlencoded::parse(body)
            .any(|(name, _)| is_call_sid(&name))
            .then_some(Format::Twilio),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_source_s_body_is_read_in_its_format() {
        let cases: [(&[u8], Option<Format>); 6] = [
            (br#"{"conversationId":"c","status":"failed"}"#, None),
            (
                br#"{"call_sid":"c","call_status":"busy"}"#,
                Some(Format::Jambonz),
            ),
            (br#"{"callSid":"c"}"#, Some(Format::Jambonz)),
            (b"CallSid=CA1&CallStatus=busy", Some(Format::Twilio)),
            (b"not json at all", None),
            (b"[1,2]", None),
        ];
        for (body, expected) in cases {
            assert_eq!(
                format_of(body),
                expected,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
