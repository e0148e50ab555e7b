//! Recording many deliveries in one transaction (group commit): the bookkeeping both stores
//! share. Pure: the backends run the SQL and feed the answers back in.
//!
//! The order of work in a backend's `record_batch` is:
//! 1. insert the batch's distinct notification contents as events, skipping those already
//!    stored ([`Plan::new_events`], [`Plan::inserted`]);
//! 2. look up the ids of those that were already stored ([`Plan::unresolved`],
//!    [`Plan::existing`]);
//! 3. insert one delivery per body, accepted / duplicate / rejected ([`Plan::outcomes`]);
//! 4. re-fold every call that gained an event ([`Plan::calls_to_refold`]).
//!
//! SQLite's writer thread runs the steps in this order, one prepared statement per row.
//!
//! PostgreSQL's two-round-trip path reads the calls' stored events first instead
//! ([`Plan::known`]), takes every other content as new ([`Plan::new_for_the_rest`], with
//! stand-in ids the write statement replaces), then writes all of it in one statement; it
//! falls back to the order above when a call changed in between.
//!
//! Two copies of one notification in one batch are one content: the first copy (in batch
//! order, which is arrival order) is the one inserted and answered `accepted`, every later
//! copy is a `duplicate` of it, exactly as if they had been recorded one after the other.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};

use super::rows::{DeliveryOutcome, EventRow};
use super::{DeliveryResult, NewDelivery, Recorded, Result, StoreError, StoredEvent};
use crate::call::{self, Call, Ended, RecordedEvent};
use crate::notification::{Notification, Rejection};

/// One body waiting to be recorded, with what parsing made of it.
#[derive(Debug, Clone, Copy)]
pub struct Pending<'a> {
    pub delivery: NewDelivery<'a>,
    pub parsed: &'a Result<Notification, Rejection>,
}

/// A batch committed, with its answers in batch order, which may be given only once the
/// commit is on disk ([`Committed::durable`]).
#[derive(Debug)]
pub struct Committed {
    recorded: Vec<Recorded>,
    /// The calls the batch made terminal for the first time ([`call::ended`]).
    ended: Vec<Ended>,
    /// Told by whoever syncs the commit (the SQLite writer's syncer); `None` when the
    /// commit returned only once it was on disk.
    on_disk: Option<tokio::sync::oneshot::Receiver<Result<()>>>,
}

impl Committed {
    /// A commit that returned once it was on disk.
    pub(super) fn on_disk(recorded: Vec<Recorded>, ended: Vec<Ended>) -> Self {
        Self {
            recorded,
            ended,
            on_disk: None,
        }
    }

    /// A commit that `on_disk` tells about once it is on disk.
    pub(super) fn syncing(
        recorded: Vec<Recorded>,
        ended: Vec<Ended>,
        on_disk: tokio::sync::oneshot::Receiver<Result<()>>,
    ) -> Self {
        Self {
            recorded,
            ended,
            on_disk: Some(on_disk),
        }
    }

    /// The calls the batch made terminal for the first time, each with its source and
    /// outcome then; to be counted once the commit is on disk.
    pub fn ended(&self) -> &[Ended] {
        &self.ended
    }

    /// The answers, once the commit is on disk.
    pub async fn durable(self) -> Result<Vec<Recorded>> {
        if let Some(on_disk) = self.on_disk {
            on_disk.await.map_err(|_| StoreError::WriterStopped)??;
        }
        Ok(self.recorded)
    }
}

/// What a batch does, worked out before and between its statements.
#[derive(Debug)]
pub(super) struct Plan<'p, 'a> {
    pending: &'p [Pending<'a>],
    /// For each body holding a notification: the index of its content in `contents`.
    content_of: Vec<Option<usize>>,
    /// The batch's distinct notification contents, in order of first appearance.
    contents: Vec<Content>,
    by_key: HashMap<(&'a str, &'a str), usize>,
}

#[derive(Debug)]
struct Content {
    /// The body that carried this content first.
    first: usize,
    /// The stored event, once known.
    event_id: Option<i64>,
    /// True when this batch inserted the event.
    new: bool,
}

/// A stored event's id and its identity, as the event inserts and look-ups return them.
pub(super) type EventKey = (i64, String, String);

impl<'p, 'a> Plan<'p, 'a> {
    pub fn new(pending: &'p [Pending<'a>]) -> Self {
        let mut contents = Vec::new();
        let mut by_key = HashMap::new();
        let content_of = pending
            .iter()
            .enumerate()
            .map(|(index, item)| {
                let notification = item.parsed.as_ref().ok()?;
                let key = (
                    notification.event.conversation_id.as_str(),
                    notification.content_hash.as_str(),
                );
                Some(*by_key.entry(key).or_insert_with(|| {
                    contents.push(Content {
                        first: index,
                        event_id: None,
                        new: false,
                    });
                    contents.len() - 1
                }))
            })
            .collect();
        Self {
            pending,
            content_of,
            contents,
            by_key,
        }
    }

    /// The conversation ids of the batch's notifications, sorted and distinct: the order in
    /// which a store that locks calls must lock them, so that two batches never deadlock.
    pub fn conversation_ids(&self) -> Vec<&'a str> {
        let ids: BTreeSet<&str> = self.by_key.keys().map(|(id, _)| *id).collect();
        ids.into_iter().collect()
    }

    /// Each distinct content once, with the time its first copy arrived: the events to
    /// insert unless already stored.
    pub fn new_events(&self) -> impl Iterator<Item = (&'a Notification, DateTime<Utc>)> + '_ {
        self.contents.iter().map(|content| {
            let item = &self.pending[content.first];
            let notification = item
                .parsed
                .as_ref()
                .expect("a content comes from a notification");
            (notification, item.delivery.received_at)
        })
    }

    /// Takes note of the events the insert stored.
    pub fn inserted(&mut self, rows: impl IntoIterator<Item = EventKey>) -> Result<()> {
        for row in rows {
            let content = self.content_mut(&row)?;
            content.event_id = Some(row.0);
            content.new = true;
        }
        Ok(())
    }

    /// `(conversation_id, content_hash)` of the contents that were stored before.
    pub fn unresolved(&self) -> Vec<(&'a str, &'a str)> {
        self.by_key
            .iter()
            .filter(|(_, index)| self.contents[**index].event_id.is_none())
            .map(|(key, _)| *key)
            .collect()
    }

    /// Takes note of the ids of events stored before this batch.
    pub fn existing(&mut self, rows: impl IntoIterator<Item = EventKey>) -> Result<()> {
        for row in rows {
            self.content_mut(&row)?.event_id = Some(row.0);
        }
        Ok(())
    }

    /// Takes note of the ids of stored events, skipping those whose content is not in the
    /// batch (`rows` may hold every event of the batch's calls).
    pub fn known<'r>(&mut self, rows: impl IntoIterator<Item = (i64, &'r str, &'r str)>) {
        for (id, conversation_id, content_hash) in rows {
            if let Some(&index) = self.by_key.get(&(conversation_id, content_hash)) {
                self.contents[index].event_id = Some(id);
            }
        }
    }

    /// Marks every content not known to be stored as new, standing in for its event's id
    /// with `-1`, `-2`, … in order, and returns those events to insert in that order (a
    /// store that learns the ids only from the insert puts the real ones in afterwards).
    pub fn new_for_the_rest(&mut self) -> Vec<(&'a Notification, DateTime<Utc>)> {
        let mut events = Vec::new();
        for content in self.contents.iter_mut().filter(|c| c.event_id.is_none()) {
            let item = &self.pending[content.first];
            let notification = item
                .parsed
                .as_ref()
                .expect("a content comes from a notification");
            events.push((notification, item.delivery.received_at));
            content.event_id = Some(-(events.len() as i64));
            content.new = true;
        }
        events
    }

    fn content_mut(
        &mut self,
        (_, conversation_id, content_hash): &EventKey,
    ) -> Result<&mut Content> {
        let index = self
            .by_key
            .get(&(conversation_id.as_str(), content_hash.as_str()))
            .copied()
            .ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "the database returned event {conversation_id:?}/{content_hash} that the batch did not write"
                ))
            })?;
        Ok(&mut self.contents[index])
    }

    /// What each body's delivery row says, in batch order. Fails if an event id is still
    /// unknown, which the database should have made impossible.
    pub fn outcomes(&self) -> Result<Vec<DeliveryOutcome<'a>>> {
        self.pending
            .iter()
            .zip(&self.content_of)
            .enumerate()
            .map(|(index, (item, content))| match (item.parsed, content) {
                (Err(rejection), _) => Ok(DeliveryOutcome::rejected(rejection)),
                (Ok(notification), Some(content)) => {
                    let content = &self.contents[*content];
                    let event_id = content.event_id.ok_or_else(|| {
                        StoreError::Corrupt(format!(
                            "event {:?}/{} was neither inserted nor found",
                            notification.event.conversation_id, notification.content_hash
                        ))
                    })?;
                    let result = if content.new && content.first == index {
                        DeliveryResult::Accepted
                    } else {
                        DeliveryResult::Duplicate
                    };
                    Ok(DeliveryOutcome::stored(
                        result,
                        &notification.event.conversation_id,
                        event_id,
                    ))
                }
                (Ok(_), None) => unreachable!("every notification has a content"),
            })
            .collect()
    }

    /// The calls that gained an event in this batch, sorted and distinct.
    pub fn calls_to_refold(&self) -> Vec<&'a str> {
        let ids: BTreeSet<&str> = self
            .by_key
            .iter()
            .filter(|(_, index)| self.contents[**index].new)
            .map(|((id, _), _)| *id)
            .collect();
        ids.into_iter().collect()
    }
}

/// What each body became, in batch order, given its delivery's outcome and id.
pub(super) fn recorded(outcomes: &[DeliveryOutcome<'_>], delivery_ids: &[i64]) -> Vec<Recorded> {
    outcomes
        .iter()
        .zip(delivery_ids)
        .map(|(outcome, &delivery_id)| outcome.recorded(delivery_id))
        .collect()
}

/// Folds the calls whose events `rows` holds (grouped by call, in received order within
/// each); there must be `expected` of them.
pub(super) fn fold_calls(rows: Vec<EventRow>, expected: usize) -> Result<Vec<Call>> {
    let mut events: BTreeMap<String, Vec<RecordedEvent>> = BTreeMap::new();
    for row in rows {
        let stored = StoredEvent::try_from(row)?;
        events
            .entry(stored.recorded.event.conversation_id.clone())
            .or_default()
            .push(stored.recorded);
    }
    let calls: Vec<Call> = events
        .values()
        .filter_map(|events| call::fold(events))
        .collect();
    if calls.len() != expected {
        return Err(StoreError::Corrupt(format!(
            "re-folding {expected} calls found events for {}",
            calls.len()
        )));
    }
    Ok(calls)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notification::{Event, content_hash};

    fn notification(conversation_id: &str, status: &str) -> Notification {
        let payload = serde_json::json!({ "conversationId": conversation_id, "status": status });
        Notification {
            content_hash: content_hash(&payload),
            payload,
            event: Event {
                conversation_id: conversation_id.to_owned(),
                source: crate::notification::Format::Kore,
                status: status.to_owned(),
                reason_code: None,
                reason_code_raw: None,
                reason: None,
                sip_code: None,
                sip_reason: None,
                amd_mode: None,
                amd_result: None,
                duration_s: None,
                ring_ms: None,
                connect_ms: None,
                connect_time: None,
                disconnect_time: None,
                warnings: vec![],
            },
        }
    }

    fn pending(parsed: &Result<Notification, Rejection>) -> Pending<'_> {
        Pending {
            delivery: NewDelivery {
                received_at: Utc::now(),
                source: crate::notification::Format::Kore,
                content_type: None,
                body: b"{}",
            },
            parsed,
        }
    }

    fn key(id: i64, parsed: &Result<Notification, Rejection>) -> EventKey {
        let n = parsed.as_ref().unwrap();
        (id, n.event.conversation_id.clone(), n.content_hash.clone())
    }

    #[test]
    fn copies_in_one_batch_are_one_event_and_the_first_copy_is_accepted() {
        let answered = Ok(notification("b", "answered"));
        let completed = Ok(notification("a", "completed"));
        let rejected = Err(Rejection::Malformed("not JSON".into()));
        let items = [
            pending(&answered),
            pending(&rejected),
            pending(&completed),
            pending(&answered),
        ];
        let mut plan = Plan::new(&items);

        assert_eq!(plan.conversation_ids(), ["a", "b"]);
        let to_insert: Vec<_> = plan
            .new_events()
            .map(|(n, _)| n.event.status.as_str())
            .collect();
        assert_eq!(to_insert, ["answered", "completed"]);
        plan.inserted([key(7, &answered)]).unwrap();
        let unresolved = plan.unresolved();
        assert_eq!(unresolved.len(), 1);
        assert_eq!(unresolved[0].0, "a");
        plan.existing([key(3, &completed)]).unwrap();

        let outcomes = plan.outcomes().unwrap();
        let got = recorded(&outcomes, &[10, 11, 12, 13]);
        assert_eq!(
            got,
            [
                Recorded::Accepted {
                    delivery_id: 10,
                    event_id: 7
                },
                Recorded::Rejected { delivery_id: 11 },
                Recorded::Duplicate {
                    delivery_id: 12,
                    event_id: 3
                },
                Recorded::Duplicate {
                    delivery_id: 13,
                    event_id: 7
                },
            ]
        );
        assert_eq!(plan.calls_to_refold(), ["b"]);
    }

    #[test]
    fn an_event_neither_inserted_nor_found_is_an_error_not_a_guess() {
        let answered = Ok(notification("c", "answered"));
        let items = [pending(&answered)];
        let plan = Plan::new(&items);
        assert!(matches!(plan.outcomes(), Err(StoreError::Corrupt(_))));
        let mut plan = Plan::new(&items);
        assert!(plan.inserted([(1, "x".into(), "y".into())]).is_err());
    }
}
