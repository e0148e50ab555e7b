//! Group commit as a gateway sees it: notifications that share one transaction get the
//! answers and records of one-at-a-time posting, and a full queue is refused at once.

use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::Connection;

use crate::helpers::{
    assert_counts_match_calls, assert_problem, fresh_db, spawn_ready, test_settings,
};
use crate::support::{Backend, TestDb, both_stores};

/// Two calls' notifications: call "batch-a" answered and completed, posted completed first;
/// call "batch-b" failed, posted twice (a duplicate pair).
const BODIES: [&str; 4] = [
    r#"{"conversationId":"batch-a","status":"completed","reasonCode":"caller-disconnected","reason":"200 OK","duration":14,"machinedetection":"amd_machine_detected","callconnecttime":"5/8/2023,11:32:49AM","callDisconnectTime":"5/8/2023,11:33:03AM"}"#,
    r#"{"conversationId":"batch-a","status":"answered","callconnecttime":"5/8/2023,11:32:49AM"}"#,
    r#"{"conversationId":"batch-b","status":"failed","reason":"480 Temporarily Unavailable","reasonCode":"Temporarily Unavailable","machinedetection":"disconnect"}"#,
    r#"{"reasonCode":"Temporarily Unavailable","conversationId":"batch-b","machinedetection":"disconnect","status":"failed","reason":"480 Temporarily Unavailable"}"#,
];

/// A call record without what depends on when it arrived or how rows were numbered
/// (`occurred_at` is the arrival time of a call without connect or disconnect times).
fn comparable(mut call: Value) -> Value {
    let object = call.as_object_mut().unwrap();
    for key in ["first_seen_at", "last_seen_at", "occurred_at"] {
        object.remove(key);
    }
    if let Some(Value::Array(events)) = object.get_mut("events") {
        for event in events.iter_mut() {
            let event = event.as_object_mut().unwrap();
            event.remove("id");
            event.remove("received_at");
        }
        events.sort_by_key(|e| e["status"].as_str().unwrap_or_default().to_owned());
    }
    call
}

async fn one_batch_answers_and_records_like_posting_one_at_a_time(backend: Backend) {
    let name = "one_batch_answers_and_records_like_posting_one_at_a_time";
    let (Some(batched_db), Some(sequential_db)) =
        (fresh_db(backend, name).await, fresh_db(backend, name).await)
    else {
        return;
    };
    // A long wait and a batch of exactly four: the four posts share one transaction.
    let mut settings = test_settings(&batched_db.url);
    settings.notify.batch_max = BODIES.len();
    settings.notify.batch_wait_ms = 1_000;
    let batched = spawn_ready(settings).await;
    let sequential = spawn_ready(test_settings(&sequential_db.url)).await;

    let mut posts = tokio::task::JoinSet::new();
    for (index, body) in BODIES.iter().enumerate() {
        let request = batched.client.post(batched.url("/notify")).body(*body);
        posts.spawn(async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200);
            (index, response.json::<Value>().await.unwrap())
        });
    }
    let mut receipts = posts.join_all().await;
    receipts.sort_by_key(|(index, _)| *index);
    let mut expected = Vec::new();
    for body in BODIES {
        let response = sequential.notify(body).await;
        assert_eq!(response.status(), 200);
        expected.push(response.json::<Value>().await.unwrap());
    }

    let results = |receipts: &[Value]| -> Vec<String> {
        receipts
            .iter()
            .map(|r| r["result"].as_str().unwrap().to_owned())
            .collect()
    };
    let receipts: Vec<Value> = receipts.into_iter().map(|(_, r)| r).collect();
    let all_results = results(&receipts);
    let batch_b: Vec<&str> = all_results[2..].iter().map(String::as_str).collect();
    assert_eq!(results(&receipts)[..2], ["accepted", "accepted"]);
    assert!(
        batch_b == ["accepted", "duplicate"] || batch_b == ["duplicate", "accepted"],
        "one copy of the pair is the event, the other its duplicate: {batch_b:?}"
    );
    assert_eq!(receipts[2]["event_id"], receipts[3]["event_id"]);
    assert_ne!(receipts[2]["delivery_id"], receipts[3]["delivery_id"]);
    assert_eq!(
        results(&expected),
        ["accepted", "accepted", "accepted", "duplicate"]
    );
    for id in ["batch-a", "batch-b"] {
        assert_eq!(
            comparable(batched.call_json(id).await),
            comparable(sequential.call_json(id).await),
            "call {id}"
        );
    }
    let call_a = batched.call_json("batch-a").await;
    assert_eq!(call_a["state"], "completed");
    assert_eq!(call_a["outcome"], "machine");
    assert_eq!(call_a["event_count"], 2);
    assert_eq!(call_a["occurred_at"], "2023-05-08T11:32:49Z");
    assert_counts_match_calls(&batched_db, &batched).await;
    batched.stop().await;
    sequential.stop().await;
}

both_stores!(one_batch_answers_and_records_like_posting_one_at_a_time);

/// Keeps the writer from committing until dropped or released: on SQLite by holding the
/// database's write lock, on PostgreSQL by holding the advisory lock of the call posted.
enum Blocker {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl Blocker {
    async fn hold(db: &TestDb, conversation_id: &str) -> Blocker {
        match db.backend {
            Backend::Sqlite => {
                let mut connection = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
                sqlx::query("begin immediate")
                    .execute(&mut connection)
                    .await
                    .unwrap();
                Blocker::Sqlite(connection)
            }
            Backend::Postgres => {
                let mut connection = sqlx::PgConnection::connect(&db.url).await.unwrap();
                sqlx::query("select pg_advisory_lock(hashtextextended($1, 0))")
                    .bind(conversation_id)
                    .execute(&mut connection)
                    .await
                    .unwrap();
                Blocker::Postgres(connection)
            }
        }
    }

    async fn release(self) {
        match self {
            Blocker::Sqlite(mut connection) => {
                sqlx::query("rollback")
                    .execute(&mut connection)
                    .await
                    .unwrap();
                connection.close().await.unwrap();
            }
            Blocker::Postgres(connection) => connection.close().await.unwrap(),
        }
    }
}

async fn a_full_queue_is_refused_at_once_with_retry_after(backend: Backend) {
    let name = "a_full_queue_is_refused_at_once_with_retry_after";
    let Some(db) = fresh_db(backend, name).await else {
        return;
    };
    let mut settings = test_settings(&db.url);
    settings.notify.queue_capacity = 1;
    settings.notify.batch_max = 1;
    settings.notify.writers = Some(1);
    let app = spawn_ready(settings).await;
    let blocker = Blocker::hold(&db, "queued").await;

    // The writer takes the first body and waits for the lock; the second fills the queue;
    // from then on (the third at the latest) bodies are refused.
    let mut posts = Vec::new();
    let mut refused = None;
    for seq in 0..6 {
        let request = app.client.post(app.url("/notify")).body(format!(
            r#"{{"conversationId":"queued","status":"answered","seq":{seq}}}"#
        ));
        let post = tokio::spawn(async move {
            let sent = Instant::now();
            let response = request.send().await.unwrap();
            (response, sent.elapsed())
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        if post.is_finished() {
            refused = Some(post.await.unwrap());
            break;
        }
        posts.push(post);
    }

    let (response, waited) = refused.expect("a post is answered while the writer is blocked");
    assert!(
        waited < Duration::from_secs(1),
        "refused at once: {waited:?}"
    );
    assert_eq!(response.headers()["retry-after"], "1");
    let problem = assert_problem(response, 503).await;
    assert_eq!(problem["type"], "urn:calltrail:problem:overloaded");
    assert!(problem.get("delivery_id").is_none());
    assert!(
        (1..=2).contains(&posts.len()),
        "{} posts queued",
        posts.len()
    );
    blocker.release().await;
    let posts_queued = posts.len();
    for post in posts {
        let (response, _) = post.await.unwrap();
        assert_eq!(
            response.status(),
            200,
            "queued posts are stored once unblocked"
        );
    }
    let (_, events) = app.store.call("queued").await.unwrap().unwrap();
    let mut stored: Vec<u64> = events
        .iter()
        .map(|e| e.payload["seq"].as_u64().unwrap())
        .collect();
    stored.sort_unstable();
    let queued: Vec<u64> = (0..posts_queued as u64).collect();
    assert_eq!(
        stored, queued,
        "the queued bodies are stored, the refused one is not"
    );
    app.stop().await;
}

both_stores!(a_full_queue_is_refused_at_once_with_retry_after);

async fn one_body_the_database_refuses_does_not_fail_its_batch(backend: Backend) {
    let name = "one_body_the_database_refuses_does_not_fail_its_batch";
    let Some(db) = fresh_db(backend, name).await else {
        return;
    };
    let mut settings = test_settings(&db.url);
    settings.notify.batch_max = 3;
    settings.notify.batch_wait_ms = 1_000;
    let app = spawn_ready(settings).await;
    // U+0000 cannot be stored in PostgreSQL's `jsonb`; calltrail refuses it on both stores
    // as an invalid field, so the body becomes a rejected delivery inside the batch.
    let poison = r#"{"conversationId":"poison-1","status":"answered","note":"\u0000"}"#;
    let bodies = [
        r#"{"conversationId":"poison-2","status":"answered"}"#,
        poison,
        r#"{"conversationId":"poison-3","status":"failed","reason":"486 Busy Here"}"#,
    ];

    let mut posts = tokio::task::JoinSet::new();
    for (index, body) in bodies.into_iter().enumerate() {
        let request = app.client.post(app.url("/notify")).body(body);
        posts.spawn(async move { (index, request.send().await.unwrap().status().as_u16()) });
    }
    let mut statuses = posts.join_all().await;
    statuses.sort_unstable();

    let poison_status = statuses[1].1;
    assert_eq!(
        (statuses[0].1, statuses[2].1),
        (200, 200),
        "the other bodies are stored: {statuses:?}"
    );
    assert_eq!(
        poison_status, 422,
        "refused, and kept as a rejected delivery"
    );
    for id in ["poison-2", "poison-3"] {
        assert_eq!(app.call_json(id).await["event_count"], 1, "{id}");
    }
    app.stop().await;
}

both_stores!(one_body_the_database_refuses_does_not_fail_its_batch);
