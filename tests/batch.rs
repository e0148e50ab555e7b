//! Group commit at the store: a batch records exactly what recording its bodies one after
//! the other would, on SQLite and on PostgreSQL, also with copies and reordered events of
//! one call inside one batch, and with two instances writing overlapping batches at once.

mod support;

use std::collections::{BTreeMap, HashMap};

use calltrail::call;
use calltrail::notification::{Format, NormalizeSettings, Notification, Rejection};
use calltrail::store::{NewDelivery, Pending, Recorded, Store};
use chrono::{DateTime, TimeDelta, Utc};
use support::{Backend, TestDb, both_stores};

both_stores!(
    a_batch_records_what_sequential_recording_does,
    overlapping_batches_of_two_instances_store_each_event_once,
    an_empty_batch_records_nothing,
    a_record_is_the_fold_of_its_events_as_stored_to_the_microsecond,
    a_failed_batch_leaves_nothing_and_the_next_batch_is_recorded,
);

/// Bodies as the gateway sends them, in arrival order.
const BODIES: &[&str] = &[
    // Stored before the batch; its copy in the batch is a duplicate of a stored event.
    r#"{"conversationId":"call-c","status":"answered","callconnecttime":"5/8/2023,11:40:00AM"}"#,
    // An out-of-order pair: the completed overtakes its answered, in one batch.
    r#"{"conversationId":"call-a","status":"completed","reasonCode":"caller-disconnected","reason":"200 OK","duration":14,"machinedetection":"amd_human_detected","callconnecttime":"5/8/2023,11:32:49AM","callDisconnectTime":"5/8/2023,11:33:03AM"}"#,
    r#"{"conversationId":"call-a","status":"answered","callconnecttime":"5/8/2023,11:32:49AM"}"#,
    // A duplicate pair in one batch: same content, other key order and spacing.
    r#"{"conversationId":"call-b","status":"failed","reason":"486 Busy Here","reasonCode":"Busy Here","machinedetection":"disconnect"}"#,
    "{ \"machinedetection\": \"disconnect\", \"reasonCode\": \"Busy Here\",\n \"reason\": \"486 Busy Here\", \"status\": \"failed\", \"conversationId\": \"call-b\" }",
    // Rejected bodies are kept too.
    "not json",
    r#"{"conversationId":"call-d","duration":"soon"}"#,
    // The copy of the first body.
    r#"{"status":"answered","conversationId":"call-c","callconnecttime":"5/8/2023,11:40:00AM"}"#,
];

fn parse(body: &str) -> Result<Notification, Rejection> {
    Format::Kore.parse(body.as_bytes(), &NormalizeSettings::default())
}

fn at(index: usize) -> DateTime<Utc> {
    let start: DateTime<Utc> = "2023-05-08T12:00:00Z".parse().unwrap();
    start + TimeDelta::milliseconds(10 * index as i64)
}

fn pending<'a>(
    index: usize,
    body: &'a str,
    parsed: &'a Result<Notification, Rejection>,
) -> Pending<'a> {
    Pending {
        delivery: NewDelivery {
            received_at: at(index),
            source: calltrail::notification::Format::Kore,
            content_type: Some("application/json"),
            body: body.as_bytes(),
        },
        parsed,
    }
}

/// What a store holds, with ids replaced by what they point at, so that two stores that
/// numbered their rows differently compare equal when they hold the same things.
#[derive(Debug, PartialEq)]
struct Held {
    /// Per delivery, in arrival order.
    deliveries: Vec<HeldDelivery>,
    /// Per call: the record and its events.
    calls: BTreeMap<String, (call::Call, Vec<HeldEvent>)>,
}

/// (result, body, received_at, content hash of its event)
type HeldDelivery = (&'static str, Vec<u8>, DateTime<Utc>, Option<String>);
/// (content hash, received_at)
type HeldEvent = (String, DateTime<Utc>);

async fn held(store: &Store, recorded: &[Recorded]) -> Held {
    let mut calls = BTreeMap::new();
    let mut hash_of_event = HashMap::new();
    for id in ["call-a", "call-b", "call-c", "call-d"] {
        let Some((call, events)) = store.call(id).await.unwrap() else {
            continue;
        };
        let records: Vec<_> = events.iter().map(|e| e.recorded.clone()).collect();
        assert_eq!(
            Some(&call),
            call::fold(&records).as_ref(),
            "{id} is its fold"
        );
        for event in &events {
            hash_of_event.insert(event.recorded.id, event.recorded.content_hash.clone());
        }
        let events = events
            .into_iter()
            .map(|e| (e.recorded.content_hash, e.recorded.received_at))
            .collect();
        calls.insert(id.to_owned(), (call, events));
    }
    let mut deliveries = Vec::new();
    for recorded in recorded {
        let (result, delivery_id, event_id) = match *recorded {
            Recorded::Accepted {
                delivery_id,
                event_id,
            } => ("accepted", delivery_id, Some(event_id)),
            Recorded::Duplicate {
                delivery_id,
                event_id,
            } => ("duplicate", delivery_id, Some(event_id)),
            Recorded::Rejected { delivery_id } => ("rejected", delivery_id, None),
        };
        let delivery = store.delivery(delivery_id).await.unwrap().unwrap();
        assert_eq!(delivery.result.as_str(), result);
        assert_eq!(delivery.event_id, event_id);
        let hash = event_id.map(|id| hash_of_event[&id].clone());
        deliveries.push((result, delivery.body, delivery.received_at, hash));
    }
    Held { deliveries, calls }
}

async fn a_batch_records_what_sequential_recording_does(backend: Backend) {
    let name = "a_batch_records_what_sequential_recording_does";
    let (Some(one_by_one), Some(batched)) = (
        TestDb::new(backend, name).await,
        TestDb::new(backend, name).await,
    ) else {
        return;
    };
    let (sequential, grouped) = (one_by_one.store().await, batched.store().await);
    let parsed: Vec<_> = BODIES.iter().map(|body| parse(body)).collect();
    let items: Vec<_> = BODIES
        .iter()
        .zip(&parsed)
        .enumerate()
        .map(|(i, (body, parsed))| pending(i, body, parsed))
        .collect();

    let mut expected = Vec::new();
    for item in &items {
        expected.push(sequential.record(item.delivery, item.parsed).await.unwrap());
    }
    let mut got = grouped.record_batch(&items[..1]).await.unwrap();
    got.extend(grouped.record_batch(&items[1..]).await.unwrap());

    let kinds = |recorded: &[Recorded]| -> Vec<&'static str> {
        recorded
            .iter()
            .map(|r| match r {
                Recorded::Accepted { .. } => "accepted",
                Recorded::Duplicate { .. } => "duplicate",
                Recorded::Rejected { .. } => "rejected",
            })
            .collect()
    };
    assert_eq!(
        kinds(&got),
        [
            "accepted",
            "accepted",
            "accepted",
            "accepted",
            "duplicate",
            "rejected",
            "rejected",
            "duplicate"
        ]
    );
    assert_eq!(kinds(&got), kinds(&expected));
    let (
        Recorded::Accepted {
            event_id: first, ..
        },
        Recorded::Duplicate { event_id: copy, .. },
    ) = (got[3], got[4])
    else {
        unreachable!()
    };
    assert_eq!(
        first, copy,
        "the copy in the batch points at the first copy's event"
    );
    let batch_held = held(&grouped, &got).await;
    assert_eq!(batch_held, held(&sequential, &expected).await);
    let (call_a, events_a) = &batch_held.calls["call-a"];
    assert_eq!(call_a.state.as_str(), "completed");
    assert_eq!(call_a.outcome.as_str(), "human");
    assert_eq!(events_a.len(), 2);
    assert_eq!(batch_held.calls["call-b"].0.event_count, 1);
    assert_eq!(batch_held.calls["call-c"].1.len(), 1);
    assert!(!batch_held.calls.contains_key("call-d"));
    sequential.close().await;
    grouped.close().await;
}

async fn overlapping_batches_of_two_instances_store_each_event_once(backend: Backend) {
    let name = "overlapping_batches_of_two_instances_store_each_event_once";
    let Some(db) = TestDb::new(backend, name).await else {
        return;
    };
    // Two pools, like two calltrail instances; each writes batches that share calls with
    // the other's, listed in opposite orders, which would deadlock without ordered locks.
    let stores = [db.store().await, db.store().await];
    let calls: Vec<String> = (0..12).map(|i| format!("overlap-{i}")).collect();
    let bodies: Vec<String> = calls
        .iter()
        .flat_map(|id| {
            [
                format!(r#"{{"conversationId":"{id}","status":"answered","callconnecttime":"5/8/2023,11:32:49AM"}}"#),
                format!(r#"{{"conversationId":"{id}","status":"completed","duration":3,"callconnecttime":"5/8/2023,11:32:49AM","callDisconnectTime":"5/8/2023,11:32:52AM"}}"#),
            ]
        })
        .collect();
    let parsed: Vec<_> = bodies.iter().map(|b| parse(b)).collect();

    let mut tasks = tokio::task::JoinSet::new();
    for round in 0..8 {
        let store = stores[round % 2].clone();
        let mut order: Vec<usize> = (0..bodies.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        order.rotate_left(round * 3 % bodies.len());
        let bodies = bodies.clone();
        let parsed = parsed.clone();
        tasks.spawn(async move {
            let items: Vec<_> = order
                .iter()
                .map(|&i| pending(i, &bodies[i], &parsed[i]))
                .collect();
            let recorded = store.record_batch(&items).await.unwrap();
            order.into_iter().zip(recorded).collect::<Vec<_>>()
        });
    }
    let results: Vec<(usize, Recorded)> = tasks.join_all().await.into_iter().flatten().collect();

    let mut event_of_body: HashMap<usize, i64> = HashMap::new();
    let mut accepted = vec![0; bodies.len()];
    for (body, recorded) in &results {
        let event_id = match *recorded {
            Recorded::Accepted { event_id, .. } => {
                accepted[*body] += 1;
                event_id
            }
            Recorded::Duplicate { event_id, .. } => event_id,
            Recorded::Rejected { .. } => panic!("body {body} rejected"),
        };
        let first = *event_of_body.entry(*body).or_insert(event_id);
        assert_eq!(first, event_id, "every copy of body {body} names one event");
    }
    assert!(accepted.iter().all(|&n| n == 1), "{accepted:?}");
    for id in &calls {
        let (call, events) = stores[0].call(id).await.unwrap().unwrap();
        let records: Vec<_> = events.into_iter().map(|e| e.recorded).collect();
        assert_eq!(records.len(), 2);
        assert_eq!(Some(&call), call::fold(&records).as_ref());
        assert_eq!(call.state.as_str(), "completed");
    }
}

async fn an_empty_batch_records_nothing(backend: Backend) {
    let Some(db) = TestDb::new(backend, "an_empty_batch_records_nothing").await else {
        return;
    };
    let store = db.store().await;
    assert_eq!(store.record_batch(&[]).await.unwrap(), vec![]);
    store.close().await;
}

/// A batch whose transaction fails half-way (here: a trigger refuses one of its
/// deliveries, after its events were inserted) stores none of its bodies, and the writer
/// records the next batch as if the failed one had never been: nothing is left open on
/// its connection.
async fn a_failed_batch_leaves_nothing_and_the_next_batch_is_recorded(backend: Backend) {
    let name = "a_failed_batch_leaves_nothing_and_the_next_batch_is_recorded";
    let Some(db) = TestDb::new(backend, name).await else {
        return;
    };
    let store = db.store().await;
    execute(
        &db,
        match backend {
            Backend::Sqlite => &["create trigger poison before insert on deliveries
                 when new.conversation_id = 'poisoned'
                 begin select raise(abort, 'poisoned body'); end"][..],
            Backend::Postgres => &[
                "create function poison() returns trigger language plpgsql as $$
                 begin
                     if new.conversation_id = 'poisoned' then
                         raise exception 'poisoned body';
                     end if;
                     return new;
                 end $$",
                "create trigger poison before insert on deliveries
                 for each row execute function poison()",
            ][..],
        },
    )
    .await;
    let good = r#"{"conversationId":"call-ok","status":"answered","callconnecttime":"5/8/2023,11:32:49AM"}"#;
    let poisoned = r#"{"conversationId":"poisoned","status":"answered"}"#;
    let (good_parsed, poisoned_parsed) = (parse(good), parse(poisoned));
    let batch = [
        pending(0, good, &good_parsed),
        pending(1, poisoned, &poisoned_parsed),
    ];
    let err = store.record_batch(&batch).await.unwrap_err();
    assert!(format!("{err:?}").contains("poisoned body"), "{err:?}");
    assert!(store.call("call-ok").await.unwrap().is_none());
    assert_eq!(
        count_deliveries(&db).await,
        0,
        "nothing of the failed batch"
    );

    for round in 0..2 {
        let recorded = store
            .record_batch(&[pending(2 + round, good, &good_parsed)])
            .await
            .unwrap();
        let expected = if round == 0 { "Accepted" } else { "Duplicate" };
        assert!(
            format!("{recorded:?}").starts_with(&format!("[{expected}")),
            "{recorded:?}"
        );
    }
    let (call, events) = store.call("call-ok").await.unwrap().unwrap();
    assert_eq!((call.event_count, events.len()), (1, 1));
    assert_eq!(count_deliveries(&db).await, 2);
    store.close().await;
}

/// Runs statements on the test's database, around the store.
async fn execute(db: &TestDb, statements: &[&str]) {
    use sqlx::Connection;
    match db.backend {
        Backend::Sqlite => {
            let mut connection = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            for statement in statements {
                sqlx::query(statement)
                    .execute(&mut connection)
                    .await
                    .unwrap();
            }
        }
        Backend::Postgres => {
            let mut connection = sqlx::PgConnection::connect(&db.url).await.unwrap();
            for statement in statements {
                sqlx::query(statement)
                    .execute(&mut connection)
                    .await
                    .unwrap();
            }
        }
    }
}

async fn count_deliveries(db: &TestDb) -> i64 {
    use sqlx::Connection;
    let sql = "select count(*) from deliveries";
    match db.backend {
        Backend::Sqlite => {
            let mut connection = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            sqlx::query_scalar(sql)
                .fetch_one(&mut connection)
                .await
                .unwrap()
        }
        Backend::Postgres => {
            let mut connection = sqlx::PgConnection::connect(&db.url).await.unwrap();
            sqlx::query_scalar(sql)
                .fetch_one(&mut connection)
                .await
                .unwrap()
        }
    }
}

/// PostgreSQL keeps times to the microsecond. Where two events differ only below that,
/// the stored events tie and the content hash decides; the record written from a batch
/// must be the fold of the events as they read back, not as they arrived.
async fn a_record_is_the_fold_of_its_events_as_stored_to_the_microsecond(backend: Backend) {
    let name = "a_record_is_the_fold_of_its_events_as_stored_to_the_microsecond";
    let Some(db) = TestDb::new(backend, name).await else {
        return;
    };
    let store = db.store().await;
    let body = |id: &str, reason_code: &str, fraction: &str| {
        format!(
            r#"{{"conversationId":"{id}","status":"completed","reasonCode":"{reason_code}","callconnecttime":"2023-05-08T11:32:49Z","callDisconnectTime":"2023-05-08T11:33:03.{fraction}Z"}}"#
        )
    };
    let calls: Vec<String> = (0..6).map(|i| format!("precise-{i}")).collect();
    for (i, id) in calls.iter().enumerate() {
        let (early, late) = if i % 2 == 0 {
            ("0000001", "0000004")
        } else {
            ("0000004", "0000001")
        };
        let bodies = [body(id, "first", early), body(id, "second", late)];
        let parsed: Vec<_> = bodies.iter().map(|b| parse(b)).collect();
        let items: Vec<_> = bodies
            .iter()
            .zip(&parsed)
            .enumerate()
            .map(|(n, (b, p))| pending(n, b, p))
            .collect();
        // Half the calls get both events in one batch, half one after the other (the
        // second folded with the first as stored).
        let recorded = if i < 3 {
            store.record_batch(&items).await.unwrap()
        } else {
            let mut recorded = store.record_batch(&items[..1]).await.unwrap();
            recorded.extend(store.record_batch(&items[1..]).await.unwrap());
            recorded
        };
        assert!(
            recorded
                .iter()
                .all(|r| matches!(r, Recorded::Accepted { .. })),
            "{recorded:?}"
        );
        let (call, events) = store.call(id).await.unwrap().unwrap();
        let records: Vec<_> = events.into_iter().map(|e| e.recorded).collect();
        assert_eq!(records.len(), 2);
        assert_eq!(Some(&call), call::fold(&records).as_ref(), "{id}");
    }
    store.close().await;
}

/// The PostgreSQL writer reads a batch's calls, then writes them in one statement that
/// checks they did not change in between. Here four batches read their call while a
/// lock held elsewhere keeps them from writing, then write at once: for each call one
/// wins, the other finds the record changed (a new call already inserted, an existing
/// one updated), and must record its event again under the call's lock, folding in the
/// winner's event rather than overwriting it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_call_changed_between_read_and_write_is_recorded_again_under_its_lock() {
    use sqlx::Connection;

    let name = "a_call_changed_between_read_and_write_is_recorded_again_under_its_lock";
    let Some(db) = TestDb::new(Backend::Postgres, name).await else {
        return;
    };
    let store = db.store().await;
    let answered = |id: &str, time: &str| {
        format!(r#"{{"conversationId":"{id}","status":"answered","callconnecttime":"{time}"}}"#)
    };
    let completed = |id: &str| {
        format!(
            r#"{{"conversationId":"{id}","status":"completed","duration":3,"callconnecttime":"5/8/2023,11:32:49AM","callDisconnectTime":"5/8/2023,11:32:52AM"}}"#
        )
    };
    let first = answered("existing", "5/8/2023,11:30:00AM");
    let parsed = parse(&first);
    store
        .record_batch(&[pending(0, &first, &parsed)])
        .await
        .unwrap();

    let mut holder = sqlx::PgConnection::connect(&db.url).await.unwrap();
    for id in ["existing", "new"] {
        sqlx::query("select pg_advisory_lock(hashtextextended($1, 0))")
            .bind(id)
            .execute(&mut holder)
            .await
            .unwrap();
    }
    let bodies = [
        answered("existing", "5/8/2023,11:32:49AM"),
        completed("existing"),
        answered("new", "5/8/2023,11:32:49AM"),
        completed("new"),
    ];
    let mut tasks = tokio::task::JoinSet::new();
    for (i, body) in bodies.iter().enumerate() {
        let (store, body) = (store.clone(), body.clone());
        tasks.spawn(async move {
            let parsed = parse(&body);
            store
                .record_batch(&[pending(i + 1, &body, &parsed)])
                .await
                .unwrap()
        });
    }
    // Every batch has read its call and waits for the lock.
    let waiting = || async {
        let mut db = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::query_scalar::<_, i64>(
            "select count(*) from pg_locks
             where locktype = 'advisory' and not granted
               and database = (select oid from pg_database where datname = current_database())",
        )
        .fetch_one(&mut db)
        .await
        .unwrap()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while waiting().await < 4 {
        assert!(
            std::time::Instant::now() < deadline,
            "the batches never waited for the calls' locks"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    sqlx::query("select pg_advisory_unlock_all()")
        .execute(&mut holder)
        .await
        .unwrap();
    for recorded in tasks.join_all().await {
        assert!(
            matches!(recorded[..], [Recorded::Accepted { .. }]),
            "{recorded:?}"
        );
    }

    for (id, events) in [("existing", 3), ("new", 2)] {
        let (call, stored) = store.call(id).await.unwrap().unwrap();
        let records: Vec<_> = stored.into_iter().map(|e| e.recorded).collect();
        assert_eq!(records.len(), events, "{id}");
        assert_eq!(call.event_count, events as i64, "{id}");
        assert_eq!(Some(&call), call::fold(&records).as_ref(), "{id}");
        assert_eq!(call.state.as_str(), "completed");
    }
    // The statistics tables count each call once, as its record stands.
    let differences: i64 = sqlx::query_scalar(
        "select count(*) from (
             (select floor(extract(epoch from occurred_at) / 900)::bigint, state, outcome,
                     coalesce(amd_result, ''), coalesce(reason_code, ''),
                     (connected_at is not null)::integer, source, count(*)
              from calls group by 1, 2, 3, 4, 5, 6, 7
              except
              select slot, state, outcome, amd_result, reason_code, answered, source, calls
              from call_slot_counts where calls <> 0)
             union all
             (select slot, state, outcome, amd_result, reason_code, answered, source, calls
              from call_slot_counts where calls <> 0
              except
              select floor(extract(epoch from occurred_at) / 900)::bigint, state, outcome,
                     coalesce(amd_result, ''), coalesce(reason_code, ''),
                     (connected_at is not null)::integer, source, count(*)
              from calls group by 1, 2, 3, 4, 5, 6, 7)
         ) as d",
    )
    .fetch_one(&mut holder)
    .await
    .unwrap();
    assert_eq!(differences, 0, "call_slot_counts differs from calls");
    store.close().await;
}
