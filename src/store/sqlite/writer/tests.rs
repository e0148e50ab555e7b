use super::record::READ_CALL;
use super::*;
use crate::notification::{Format, NormalizeSettings};
use crate::store::Recorded;
use crate::store::sqlite::SqliteStore;

/// Every body of a round: distinct calls, answered and completed.
fn bodies(round: usize) -> Vec<String> {
    (0..20)
        .map(|i| {
            let status = if i % 2 == 0 { "answered" } else { "completed" };
            format!(
                r#"{{"conversationId":"call-{round}-{}","status":"{status}","reason":"{}"}}"#,
                i / 2,
                "x".repeat(400)
            )
        })
        .collect()
}

/// Records `bodies` as one batch and waits until it is on disk.
async fn commit(writer: &Writer, bodies: &[String]) -> Result<Vec<Recorded>> {
    let parsed: Vec<_> = bodies
        .iter()
        .map(|body| Format::Kore.parse(body.as_bytes(), &NormalizeSettings::default()))
        .collect();
    let pending: Vec<_> = bodies
        .iter()
        .zip(&parsed)
        .map(|(body, parsed)| Pending {
            delivery: NewDelivery {
                received_at: Utc::now(),
                source: crate::notification::Format::Kore,
                content_type: None,
                body: body.as_bytes(),
            },
            parsed,
        })
        .collect();
    writer.commit_batch(&pending).await?.durable().await
}

async fn count_events(store: &SqliteStore) -> i64 {
    sqlx::query_scalar("select count(*) from events")
        .fetch_one(&store.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_database_reached_through_a_symbolic_link_is_recorded_and_synced() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data").join("calltrail.db");
    std::fs::create_dir(file.parent().unwrap()).unwrap();
    let link = dir.path().join("link.db");
    std::os::unix::fs::symlink(&file, &link).unwrap();
    let store = SqliteStore::connect_lazy(&format!("sqlite://{}", link.display()), 2).unwrap();
    store.migrate().await.unwrap();

    let recorded = commit(&store.writer, &bodies(0)).await.unwrap();

    assert_eq!(recorded.len(), 20);
    assert!(matches!(recorded[0], Recorded::Accepted { .. }));
    assert_eq!(count_events(&store).await, 20);
    // SQLite keeps the log beside the file the link names, and that is the one synced.
    assert!(dir.path().join("data").join("calltrail.db-wal").exists());
    assert!(!dir.path().join("link.db-wal").exists());
    store.close().await;
}

#[tokio::test]
async fn closing_the_store_leaves_every_commit_in_the_database_file_and_no_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calltrail.db");
    let url = format!("sqlite://{}", path.display());
    let store = SqliteStore::connect_lazy(&url, 2).unwrap();
    store.migrate().await.unwrap();
    for round in 0..5 {
        commit(&store.writer, &bodies(round)).await.unwrap();
    }

    store.close().await;

    // The last connection to close (the pool's, after the writer's and the
    // checkpointer's) copies the log into the file and removes it.
    assert!(!dir.path().join("calltrail.db-wal").exists());
    let reopened = SqliteStore::connect_lazy(&url, 1).unwrap();
    assert_eq!(count_events(&reopened).await, 100);
    reopened.close().await;
}

#[tokio::test]
async fn the_writer_opens_the_file_with_the_vfs_of_the_url() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("calltrail.db").display());
    let store = SqliteStore::connect_lazy(&url, 1).unwrap();
    store.migrate().await.unwrap();
    store.close().await;
    let unknown = SqliteStore::connect_lazy(&format!("{url}?vfs=no-such-vfs"), 1).unwrap();
    let unix = SqliteStore::connect_lazy(&format!("{url}?vfs=unix"), 1).unwrap();

    let refused = commit(&unknown.writer, &bodies(0)).await;
    let recorded = commit(&unix.writer, &bodies(1)).await;

    let err = refused.unwrap_err();
    assert!(err.to_string().contains("database error"), "{err}");
    assert!(format!("{err:?}").contains("no such vfs"), "{err:?}");
    assert_eq!(recorded.unwrap().len(), 20);
    unix.close().await;
}

#[tokio::test]
async fn the_log_starts_over_once_it_has_grown_and_every_answered_body_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calltrail.db");
    let store = SqliteStore::connect_lazy(&format!("sqlite://{}", path.display()), 2).unwrap();
    store.migrate().await.unwrap();
    let database = Database {
        path: path.clone(),
        vfs: None,
    };
    let writer = Writer::start_with(database, 256).unwrap();
    let wal = dir.path().join("calltrail.db-wal");
    let (rounds, mut largest_log) = (300, 0);
    for round in 0..rounds {
        let recorded = commit(&writer, &bodies(round)).await.unwrap();
        assert!(
            recorded
                .iter()
                .all(|r| matches!(r, Recorded::Accepted { .. }))
        );
        largest_log = largest_log.max(std::fs::metadata(&wal).unwrap().len());
    }
    writer.close().await;
    assert_eq!(count_events(&store).await, rounds as i64 * 20);
    let database = std::fs::metadata(&path).unwrap().len();
    // Without starting over, the log would hold every page written: more than the whole
    // database. Started over, it stays near the threshold's 1 MiB.
    assert!(
        largest_log < database / 2,
        "log grew to {largest_log} bytes; database {database} bytes"
    );
    store.close().await;
}

#[test]
fn the_call_read_has_the_columns_in_the_order_it_is_read_by() {
    let db = Connection::open_in_memory().unwrap();
    db.execute_batch(
        "create table events (id, conversation_id, content_hash, status, reason_code,
             reason_code_raw, reason, sip_code, sip_reason, amd_mode, amd_result,
             duration_s, connect_time, disconnect_time, warnings, payload, received_at, source,
             ring_ms, connect_ms);
         create table calls (conversation_id, state, status, outcome, reason_code, reason,
             sip_code, sip_reason, duration_s, connected_at, ended_at, amd_mode, amd_result,
             occurred_at, first_seen_at, last_seen_at, event_count, updated_at, source, ring_ms,
             connect_ms);",
    )
    .unwrap();
    let statement = db.prepare(&READ_CALL).unwrap();
    let expected = [
        "id",
        "conversation_id",
        "content_hash",
        "status",
        "reason_code",
        "reason_code_raw",
        "reason",
        "sip_code",
        "sip_reason",
        "amd_mode",
        "amd_result",
        "duration_s",
        "connect_time",
        "disconnect_time",
        "warnings",
        "received_at",
        "call_state",
        "call_status",
        "call_outcome",
        "call_reason_code",
        "call_reason",
        "call_sip_code",
        "call_sip_reason",
        "call_duration_s",
        "call_connected_at",
        "call_ended_at",
        "call_amd_mode",
        "call_amd_result",
        "call_occurred_at",
        "call_first_seen_at",
        "call_last_seen_at",
        "call_event_count",
        "call_updated_at",
        "source",
        "ring_ms",
        "connect_ms",
        "call_source",
        "call_ring_ms",
        "call_connect_ms",
    ];
    assert_eq!(statement.column_names(), expected);
}
