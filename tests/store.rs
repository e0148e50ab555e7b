//! The store, on SQLite and on PostgreSQL: what `record` keeps, what `call` and `delivery`
//! give back, and that duplicates and concurrent writers cannot break either.

mod support;

use std::collections::HashSet;

use calltrail::call::{self, CallState, Outcome};
use calltrail::notification::{
    AmdMode, AmdResult, Event, FieldError, Notification, Rejection, content_hash,
};
use calltrail::store::{DeliveryResult, NewDelivery, Recorded, Store};
use chrono::{DateTime, Utc};
use serde_json::json;
use support::{Backend, TestDb, both_stores};

both_stores!(
    records_a_notification_and_folds_its_call,
    the_same_notification_again_is_a_duplicate,
    a_malformed_body_is_kept_byte_for_byte,
    an_invalid_object_is_kept_with_its_field_errors,
    concurrent_copies_store_one_event,
    concurrent_events_of_one_call_all_reach_the_call_record,
    an_unknown_call_is_none,
    timestamps_round_trip_exactly,
    the_schema_holds_exactly_the_columns_the_store_lists,
);

async fn records_a_notification_and_folds_its_call(backend: Backend) {
    let Some(db) = TestDb::new(backend, "records_a_notification_and_folds_its_call").await else {
        return;
    };
    let store = db.store().await;
    let answered = answered("call-1");
    let completed = completed("call-1");

    let first = record(&store, at("2023-05-08T11:32:50.100000Z"), &answered).await;
    let second = record(&store, at("2023-05-08T11:33:04.200000Z"), &completed).await;

    let (
        Recorded::Accepted {
            event_id: answered_id,
            ..
        },
        Recorded::Accepted {
            delivery_id,
            event_id,
        },
    ) = (first, second)
    else {
        panic!("expected two accepted events, got {first:?} and {second:?}");
    };
    let (call, events) = store
        .call("call-1")
        .await
        .unwrap()
        .expect("the call is stored");
    assert_eq!(call.state, CallState::Completed);
    assert_eq!(call.outcome, Outcome::Connected);
    assert_eq!(call.status.as_deref(), Some("completed"));
    assert_eq!(call.reason_code.as_deref(), Some("caller-disconnected"));
    assert_eq!(call.duration_s, Some(14));
    assert_eq!(call.connected_at, Some(at("2023-05-08T11:32:49Z")));
    assert_eq!(call.ended_at, Some(at("2023-05-08T11:33:03Z")));
    assert_eq!(call.occurred_at, at("2023-05-08T11:32:49Z"));
    assert_eq!(call.first_seen_at, at("2023-05-08T11:32:50.100000Z"));
    assert_eq!(call.last_seen_at, at("2023-05-08T11:33:04.200000Z"));
    assert_eq!(call.event_count, 2);

    let ids: Vec<i64> = events.iter().map(|e| e.recorded.id).collect();
    assert_eq!(
        ids,
        [answered_id, event_id],
        "events come in received order"
    );
    assert_eq!(events[0].recorded.event, answered.event);
    assert_eq!(events[0].recorded.content_hash, answered.content_hash);
    assert_eq!(events[1].payload, completed.payload);
    let recorded: Vec<_> = events.iter().map(|e| e.recorded.clone()).collect();
    assert_eq!(Some(call), call::fold(&recorded));

    let delivery = store
        .delivery(delivery_id)
        .await
        .unwrap()
        .expect("the delivery is stored");
    assert_eq!(delivery.result, DeliveryResult::Accepted);
    assert_eq!(delivery.body, body_of(&completed));
    assert_eq!(delivery.content_type.as_deref(), Some("application/json"));
    assert_eq!(delivery.conversation_id.as_deref(), Some("call-1"));
    assert_eq!(delivery.event_id, Some(event_id));
    assert_eq!((delivery.error, delivery.errors), (None, vec![]));
}

async fn the_same_notification_again_is_a_duplicate(backend: Backend) {
    let Some(db) = TestDb::new(backend, "the_same_notification_again_is_a_duplicate").await else {
        return;
    };
    let store = db.store().await;
    let failed = failed_busy("call-2");

    let first = record(&store, at("2023-05-08T11:40:00Z"), &failed).await;
    let again = record(&store, at("2023-05-08T11:40:05Z"), &failed).await;

    let Recorded::Accepted {
        delivery_id: first_delivery,
        event_id,
    } = first
    else {
        panic!("expected the first copy to be accepted, got {first:?}");
    };
    let Recorded::Duplicate {
        delivery_id: second_delivery,
        event_id: duplicate_of,
    } = again
    else {
        panic!("expected the second copy to be a duplicate, got {again:?}");
    };
    assert_eq!(duplicate_of, event_id);
    assert_ne!(first_delivery, second_delivery);
    let (call, events) = store.call("call-2").await.unwrap().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(call.event_count, 1);
    assert_eq!(call.outcome, Outcome::Busy);
    assert_eq!(
        call.last_seen_at,
        at("2023-05-08T11:40:00Z"),
        "a duplicate is not an event"
    );
    let duplicate = store.delivery(second_delivery).await.unwrap().unwrap();
    assert_eq!(duplicate.result, DeliveryResult::Duplicate);
    assert_eq!(duplicate.event_id, Some(event_id));
    assert_eq!(duplicate.received_at, at("2023-05-08T11:40:05Z"));
    let original = store.delivery(first_delivery).await.unwrap().unwrap();
    assert_eq!(original.result, DeliveryResult::Accepted);
}

async fn a_malformed_body_is_kept_byte_for_byte(backend: Backend) {
    let Some(db) = TestDb::new(backend, "a_malformed_body_is_kept_byte_for_byte").await else {
        return;
    };
    let store = db.store().await;
    let body = b"\xff\x00{\"conversationId\": not json\r\n";
    let rejection = Rejection::Malformed("body is not valid JSON: expected value".to_owned());
    let delivery = NewDelivery {
        received_at: at("2023-05-08T12:00:00.000001Z"),
        source: calltrail::notification::Format::Kore,
        content_type: Some("text/plain; charset=latin1"),
        body,
    };

    let recorded = store.record(delivery, &Err(rejection)).await.unwrap();

    let Recorded::Rejected { delivery_id } = recorded else {
        panic!("expected a rejected delivery, got {recorded:?}");
    };
    let stored = store.delivery(delivery_id).await.unwrap().unwrap();
    assert_eq!(stored.id, delivery_id);
    assert_eq!(stored.body, body);
    assert_eq!(stored.received_at, delivery.received_at);
    assert_eq!(stored.content_type.as_deref(), delivery.content_type);
    assert_eq!(stored.result, DeliveryResult::Rejected);
    assert_eq!(
        stored.error.as_deref(),
        Some("body is not valid JSON: expected value")
    );
    assert_eq!(stored.errors, vec![]);
    assert_eq!((stored.conversation_id, stored.event_id), (None, None));
    assert_eq!(store.delivery(delivery_id + 1).await.unwrap(), None);
}

async fn an_invalid_object_is_kept_with_its_field_errors(backend: Backend) {
    let Some(db) = TestDb::new(backend, "an_invalid_object_is_kept_with_its_field_errors").await
    else {
        return;
    };
    let store = db.store().await;
    let body = br#"{"conversationId":"call-3","duration":"soon"}"#;
    let errors = vec![
        field_error("status", "is required"),
        field_error("duration", "must be a whole number of seconds"),
    ];
    let rejection = Rejection::Invalid {
        conversation_id: Some("call-3".to_owned()),
        errors: errors.clone(),
    };
    let delivery = NewDelivery {
        received_at: at("2023-05-08T12:00:00Z"),
        source: calltrail::notification::Format::Kore,
        content_type: None,
        body,
    };

    let recorded = store
        .record(delivery, &Err(rejection.clone()))
        .await
        .unwrap();

    let Recorded::Rejected { delivery_id } = recorded else {
        panic!("expected a rejected delivery, got {recorded:?}");
    };
    let stored = store.delivery(delivery_id).await.unwrap().unwrap();
    assert_eq!(stored.body, body);
    assert_eq!(stored.content_type, None);
    assert_eq!(stored.result, DeliveryResult::Rejected);
    assert_eq!(stored.error, Some(rejection.to_string()));
    assert_eq!(stored.errors, errors);
    assert_eq!(stored.conversation_id.as_deref(), Some("call-3"));
    assert_eq!(stored.event_id, None);
    assert!(
        store.call("call-3").await.unwrap().is_none(),
        "a rejected body makes no call"
    );
}

async fn concurrent_copies_store_one_event(backend: Backend) {
    let Some(db) = TestDb::new(backend, "concurrent_copies_store_one_event").await else {
        return;
    };
    // Two pools on one database, like two calltrail instances behind a load balancer.
    let stores = [db.store().await, db.store().await];
    let answered = answered("call-4");

    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = stores[i % 2].clone();
            let answered = answered.clone();
            tokio::spawn(async move { record(&store, at("2023-05-08T11:32:50Z"), &answered).await })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }

    let accepted: Vec<_> = results
        .iter()
        .filter(|r| matches!(r, Recorded::Accepted { .. }))
        .collect();
    assert_eq!(accepted.len(), 1, "{results:?}");
    let Recorded::Accepted { event_id, .. } = *accepted[0] else {
        unreachable!()
    };
    let duplicates = results
        .iter()
        .filter(|r| matches!(r, Recorded::Duplicate { event_id: id, .. } if *id == event_id))
        .count();
    assert_eq!(duplicates, 19, "{results:?}");
    let delivery_ids: HashSet<i64> = results.iter().map(delivery_id).collect();
    assert_eq!(delivery_ids.len(), 20);
    for id in delivery_ids {
        let delivery = stores[0]
            .delivery(id)
            .await
            .unwrap()
            .expect("every copy is logged");
        assert_eq!(delivery.event_id, Some(event_id));
    }
    let (call, events) = stores[1].call("call-4").await.unwrap().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(call.event_count, 1);
}

async fn concurrent_events_of_one_call_all_reach_the_call_record(backend: Backend) {
    let Some(db) = TestDb::new(
        backend,
        "concurrent_events_of_one_call_all_reach_the_call_record",
    )
    .await
    else {
        return;
    };
    let stores = [db.store().await, db.store().await];

    for round in 0..10 {
        let conversation_id = format!("call-5-{round}");
        let notifications = [
            answered(&conversation_id),
            completed(&conversation_id),
            amd_detected(&conversation_id),
        ];
        let tasks: Vec<_> = notifications
            .into_iter()
            .enumerate()
            .map(|(i, notification)| {
                let store = stores[i % 2].clone();
                tokio::spawn(async move { record(&store, Utc::now(), &notification).await })
            })
            .collect();
        for task in tasks {
            assert!(matches!(task.await.unwrap(), Recorded::Accepted { .. }));
        }

        let (call, events) = stores[0].call(&conversation_id).await.unwrap().unwrap();
        let recorded: Vec<_> = events.into_iter().map(|e| e.recorded).collect();
        assert_eq!(recorded.len(), 3);
        assert_eq!(Some(&call), call::fold(&recorded).as_ref(), "round {round}");
        assert_eq!(call.state, CallState::Completed);
        assert_eq!(call.outcome, Outcome::Human);
        assert_eq!(call.event_count, 3);
    }
}

async fn an_unknown_call_is_none(backend: Backend) {
    let Some(db) = TestDb::new(backend, "an_unknown_call_is_none").await else {
        return;
    };
    let store = db.store().await;
    record(&store, Utc::now(), &answered("call-6")).await;

    assert_eq!(store.call("call-7").await.unwrap(), None);
    assert_eq!(store.delivery(1_000_000).await.unwrap(), None);
}

async fn timestamps_round_trip_exactly(backend: Backend) {
    let Some(db) = TestDb::new(backend, "timestamps_round_trip_exactly").await else {
        return;
    };
    let store = db.store().await;
    let received_at = at("1999-12-31T23:59:59.999999Z");
    let mut completed = completed("call-8");
    completed.event.connect_time = Some(at("1969-07-20T20:17:40.000001Z"));
    completed.event.disconnect_time = Some(at("2099-01-01T00:00:00.123456Z"));

    let Recorded::Accepted { delivery_id, .. } = record(&store, received_at, &completed).await
    else {
        panic!("expected an accepted event");
    };

    let (call, events) = store.call("call-8").await.unwrap().unwrap();
    assert_eq!(events[0].recorded.received_at, received_at);
    assert_eq!(events[0].recorded.event, completed.event);
    assert_eq!(call.connected_at, completed.event.connect_time);
    assert_eq!(call.ended_at, completed.event.disconnect_time);
    assert_eq!(
        (call.first_seen_at, call.last_seen_at),
        (received_at, received_at)
    );
    let delivery = store.delivery(delivery_id).await.unwrap().unwrap();
    assert_eq!(delivery.received_at, received_at);
}

#[tokio::test]
async fn an_unreachable_postgres_server_is_unavailable_not_an_error() {
    // Port 1 refuses connections; the store must give up within its acquire timeout.
    let store = Store::connect_lazy("postgres://calltrail@127.0.0.1:1/calltrail", 2).unwrap();
    let started = std::time::Instant::now();

    let ping = store.ping().await.unwrap_err();
    let migrate = store.migrate().await.unwrap_err();
    let recorded = store
        .record(
            NewDelivery {
                received_at: Utc::now(),
                source: calltrail::notification::Format::Kore,
                content_type: None,
                body: b"{}",
            },
            &Ok(answered("call-9")),
        )
        .await
        .unwrap_err();

    assert!(ping.is_unavailable(), "{ping:?}");
    assert!(migrate.is_unavailable(), "{migrate:?}");
    assert!(recorded.is_unavailable(), "{recorded:?}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------
// Notifications as the Kore parser would make them, built directly so that these tests
// depend on the store alone.

/// The normalized fields every notification of `conversation_id` shares.
fn event(conversation_id: &str, status: &str) -> Event {
    Event {
        conversation_id: conversation_id.to_owned(),
        source: calltrail::notification::Format::Kore,
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
    }
}

fn notification(payload: serde_json::Value, event: Event) -> Notification {
    Notification {
        content_hash: content_hash(&payload),
        payload,
        event,
    }
}

fn answered(conversation_id: &str) -> Notification {
    notification(
        json!({
            "conversationId": conversation_id,
            "status": "answered",
            "callconnecttime": "5/8/2023,11:32:49AM",
        }),
        Event {
            connect_time: Some(at("2023-05-08T11:32:49Z")),
            ..event(conversation_id, "answered")
        },
    )
}

fn completed(conversation_id: &str) -> Notification {
    notification(
        json!({
            "conversationId": conversation_id,
            "status": "completed",
            "reasonCode": "Caller-disconnected",
            "duration": "14",
            "callconnecttime": "5/8/2023,11:32:49AM",
            "callDisconnectTime": "5/8/2023,11:33:03AM",
        }),
        Event {
            reason_code: Some("caller-disconnected".to_owned()),
            reason_code_raw: Some("Caller-disconnected".to_owned()),
            duration_s: Some(14),
            connect_time: Some(at("2023-05-08T11:32:49Z")),
            disconnect_time: Some(at("2023-05-08T11:33:03Z")),
            ..event(conversation_id, "completed")
        },
    )
}

/// An answered notification that also carries the answering-machine-detection result.
fn amd_detected(conversation_id: &str) -> Notification {
    notification(
        json!({
            "conversationId": conversation_id,
            "status": "answered",
            "machinedetection": "AMD_HUMAN_DETECTED",
            "callconnecttime": "5/8/2023,11:32:49AM",
        }),
        Event {
            amd_result: Some(AmdResult::HumanDetected),
            connect_time: Some(at("2023-05-08T11:32:49Z")),
            ..event(conversation_id, "answered")
        },
    )
}

fn failed_busy(conversation_id: &str) -> Notification {
    notification(
        json!({
            "conversationId": conversation_id,
            "status": "failed",
            "reasonCode": "Busy Here",
            "reason": "486 Busy Here",
            "machinedetection": "detect",
        }),
        Event {
            reason_code: Some("busy-here".to_owned()),
            reason_code_raw: Some("Busy Here".to_owned()),
            reason: Some("486 Busy Here".to_owned()),
            sip_code: Some(486),
            sip_reason: Some("Busy Here".to_owned()),
            amd_mode: Some(AmdMode::Detect),
            warnings: vec!["no disconnect time".to_owned()],
            ..event(conversation_id, "failed")
        },
    )
}

fn field_error(field: &str, message: &str) -> FieldError {
    FieldError {
        field: field.to_owned(),
        message: message.to_owned(),
    }
}

fn body_of(notification: &Notification) -> Vec<u8> {
    serde_json::to_vec(&notification.payload).unwrap()
}

/// Records `notification` as if its payload had just arrived as a JSON body.
async fn record(
    store: &Store,
    received_at: DateTime<Utc>,
    notification: &Notification,
) -> Recorded {
    let body = body_of(notification);
    let delivery = NewDelivery {
        received_at,
        source: calltrail::notification::Format::Kore,
        content_type: Some("application/json"),
        body: &body,
    };
    store
        .record(delivery, &Ok(notification.clone()))
        .await
        .unwrap()
}

fn delivery_id(recorded: &Recorded) -> i64 {
    match *recorded {
        Recorded::Accepted { delivery_id, .. }
        | Recorded::Duplicate { delivery_id, .. }
        | Recorded::Rejected { delivery_id } => delivery_id,
    }
}

fn at(rfc3339: &str) -> DateTime<Utc> {
    rfc3339.parse().unwrap()
}

/// The store reads and writes every table by the column lists of `store::columns`; a
/// column added to a migration but not to its list (or the other way round) fails here, on
/// each store.
async fn the_schema_holds_exactly_the_columns_the_store_lists(backend: Backend) {
    use calltrail::store::columns;
    let Some(db) = TestDb::new(
        backend,
        "the_schema_holds_exactly_the_columns_the_store_lists",
    )
    .await
    else {
        return;
    };
    let store = db.store().await;
    store.close().await;
    let mut calls = columns::CALL_COLUMN_LIST.to_vec();
    calls.push(columns::CALL_BOOKKEEPING);
    for (table, listed) in [
        ("events", columns::EVENT_COLUMN_LIST.to_vec()),
        ("calls", calls),
        ("deliveries", columns::DELIVERY_COLUMN_LIST.to_vec()),
        ("dialouts", columns::DIALOUT_COLUMN_LIST.to_vec()),
    ] {
        let mut in_schema = table_columns(&db, table).await;
        let mut listed: Vec<String> = listed.iter().map(|c| c.to_string()).collect();
        in_schema.sort();
        listed.sort();
        assert_eq!(in_schema, listed, "{table} on {backend:?}");
    }
}

/// The columns of `table` as the database's catalog has them.
async fn table_columns(db: &TestDb, table: &str) -> Vec<String> {
    use sqlx::Connection;
    match db.backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            sqlx::query_scalar(&format!("select name from pragma_table_info('{table}')"))
                .fetch_all(&mut conn)
                .await
                .unwrap()
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
            sqlx::query_scalar(
                "select column_name::text from information_schema.columns
                 where table_schema = current_schema() and table_name = $1",
            )
            .bind(table)
            .fetch_all(&mut conn)
            .await
            .unwrap()
        }
    }
}
