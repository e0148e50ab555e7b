//! The spool's file: what it keeps, in which order, and what it does when it cannot.

use bytes::Bytes;
use chrono::{DateTime, Duration, Utc};

use super::{NewRecord, Spool, SpoolError};
use crate::notification::Format;

fn record(n: i64, at: DateTime<Utc>) -> NewRecord {
    NewRecord {
        received_at: at,
        source: Format::Kore,
        content_type: Some("application/json".into()),
        body: Bytes::from(format!(
            r#"{{"conversationId":"c-{n}","status":"answered"}}"#
        )),
    }
}

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000 + seconds, 123_456_000).unwrap()
}

#[tokio::test]
async fn records_come_back_oldest_first_and_leave_once_removed() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(&dir.path().join("spool.db"), 1 << 20).unwrap();
    let late = spool.append(record(1, at(10))).await.unwrap();
    let early = spool.append(record(2, at(5))).await.unwrap();

    let records = spool.oldest(10).await.unwrap();
    assert_eq!(
        records.iter().map(|r| r.id).collect::<Vec<_>>(),
        [early, late]
    );
    assert_eq!(records[0].received_at, at(5));
    assert_eq!(records[0].body, record(2, at(5)).body.to_vec());
    assert_eq!(records[0].content_type.as_deref(), Some("application/json"));
    let depth = spool.depth();
    assert_eq!((depth.records, depth.oldest), (2, Some(at(5))));

    spool.remove(vec![early]).await.unwrap();
    let depth = spool.depth();
    assert_eq!((depth.records, depth.oldest), (1, Some(at(10))));
    spool.remove(vec![late]).await.unwrap();
    assert_eq!(spool.depth().records, 0);
    assert_eq!(spool.depth().bytes, 0);
    assert!(spool.oldest(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn what_was_spooled_is_there_after_a_restart_and_ids_are_never_reused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spool.db");
    let spool = Spool::open(&path, 1 << 20).unwrap();
    let first = spool.append(record(1, at(1))).await.unwrap();
    let second = spool.append(record(2, at(2))).await.unwrap();
    spool.remove(vec![second]).await.unwrap();
    drop(spool);
    // The thread closes the file once every handle is gone.
    let spool = reopen(&path).await;

    assert_eq!(spool.depth().records, 1);
    assert_eq!(spool.oldest(10).await.unwrap()[0].id, first);
    let third = spool.append(record(3, at(3))).await.unwrap();
    assert!(third > second, "{third} reuses an id");
}

/// Opens `path` once the previous handle's thread has let go of it.
async fn reopen(path: &std::path::Path) -> Spool {
    for _ in 0..100 {
        let spool = Spool::open(path, 1 << 20).unwrap();
        if spool.accepts() {
            return spool;
        }
        drop(spool);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the spool stayed locked");
}

#[tokio::test]
async fn a_full_spool_refuses_and_keeps_what_it_has() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(&dir.path().join("spool.db"), 200).unwrap();
    spool.append(record(1, at(1))).await.unwrap();
    let refused = spool.append(record(2, at(2))).await.unwrap_err();

    assert!(matches!(refused, SpoolError::Full { .. }), "{refused}");
    assert_eq!(spool.depth().records, 1);
}

#[tokio::test]
async fn a_spool_that_cannot_be_written_refuses_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_directory = dir.path().join("file");
    std::fs::write(&not_a_directory, b"").unwrap();
    let spool = Spool::open(&not_a_directory.join("spool.db"), 1 << 20).unwrap();

    assert!(!spool.accepts());
    let refused = spool.append(record(1, at(1))).await.unwrap_err();
    assert!(matches!(refused, SpoolError::Unusable { .. }), "{refused}");
}

#[tokio::test]
async fn a_second_process_cannot_take_a_spool_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spool.db");
    let spool = Spool::open(&path, 1 << 20).unwrap();
    spool.append(record(1, at(1))).await.unwrap();

    let other = Spool::open(&path, 1 << 20).unwrap();
    assert!(!other.accepts());
    assert!(other.append(record(2, at(2))).await.is_err());
    assert_eq!(spool.oldest(10).await.unwrap().len(), 1);
}

/// A crash in the middle of a commit leaves its last frames half-written: the files are
/// copied as a crash would leave them (the spool still open, nothing checkpointed), the
/// log cut short inside its last commit, and opened again.
#[tokio::test]
async fn a_torn_last_record_is_dropped_and_the_earlier_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spool.db");
    let spool = Spool::open(&path, 1 << 20).unwrap();
    for n in 0..3 {
        spool.append(record(n, at(n))).await.unwrap();
    }
    let log_before_last = std::fs::metadata(wal(&path)).unwrap().len();
    let mut last = record(3, at(3));
    last.body = Bytes::from(vec![b'x'; 20_000]);
    spool.append(last).await.unwrap();
    let crashed = dir.path().join("crashed.db");
    std::fs::copy(&path, &crashed).unwrap();
    std::fs::copy(wal(&path), wal(&crashed)).unwrap();
    let log = std::fs::OpenOptions::new()
        .write(true)
        .open(wal(&crashed))
        .unwrap();
    let torn =
        log_before_last + (std::fs::metadata(wal(&path)).unwrap().len() - log_before_last) / 2;
    log.set_len(torn).unwrap();
    drop(log);

    let reopened = Spool::open(&crashed, 1 << 20).unwrap();
    let records = reopened.oldest(10).await.unwrap();
    assert_eq!(
        records.len(),
        3,
        "the three whole records, not the torn one"
    );
    assert_eq!(
        records.iter().map(|r| r.received_at).collect::<Vec<_>>(),
        [at(0), at(1), at(2)]
    );
    assert!(reopened.accepts());
    reopened
        .append(record(9, at(9) + Duration::seconds(1)))
        .await
        .unwrap();
}

fn wal(path: &std::path::Path) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-wal");
    name.into()
}
