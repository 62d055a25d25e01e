//! Tampering is caught: edit, delete, reorder, truncate; erasure is not a break.

use rusqlite::Connection;

use super::store::append;
use super::*;
use crate::govern::db;

fn log_with(n: usize) -> (Connection, std::path::PathBuf) {
    let path = std::env::temp_dir().join(format!("slmgate-audit-{}.db", uuid::Uuid::new_v4()));
    let mut conn = db::open(&path).unwrap();
    let recs: Vec<Record> = (0..n)
        .map(|i| Record {
            entry: Entry {
                kind: "request",
                id: format!("req-{i}"),
                ts_ms: 1_700_000_000_000 + i as i64,
                key_id: Some(if i % 2 == 0 { "key_a" } else { "key_b" }.into()),
                model: "auto".into(),
                status: 200,
                cost_usd: 0.001,
                ..Default::default()
            },
            content: Some(StoredContent {
                messages: serde_json::json!([{"role": "user", "content": format!("q{i}")}]),
                answer: format!("a{i}"),
            }),
            review: None,
            commit: None,
        })
        .collect();
    // Two batches: the chain continues across transactions.
    append(&mut conn, &recs[..n / 2]).unwrap();
    append(&mut conn, &recs[n / 2..]).unwrap();
    (conn, path)
}

fn problems(conn: &Connection) -> Vec<String> {
    verify(conn).unwrap().problems
}

#[test]
fn intact_log_verifies() {
    let (conn, _) = log_with(10);
    let v = verify(&conn).unwrap();
    assert!(v.ok(), "{:?}", v.problems);
    assert_eq!(v.entries, 10);
    assert_eq!(v.head.unwrap().0, 10);
}

#[test]
fn edit_is_caught_at_its_entry() {
    let (conn, _) = log_with(10);
    conn.execute(
        "UPDATE audit SET entry = replace(entry, '0.001', '0.000') WHERE seq = 4",
        [],
    )
    .unwrap();
    let p = problems(&conn);
    assert!(p.iter().any(|p| p.starts_with("entry 4: edited")), "{p:?}");
}

#[test]
fn edited_indexed_column_is_caught() {
    let (conn, _) = log_with(6);
    conn.execute("UPDATE audit SET key_id = 'key_z' WHERE seq = 2", [])
        .unwrap();
    let p = problems(&conn);
    assert!(p.iter().any(|p| p.starts_with("entry 2: indexed")), "{p:?}");
}

#[test]
fn deletion_is_caught_with_its_place() {
    let (conn, _) = log_with(10);
    conn.execute("DELETE FROM audit WHERE seq = 5", []).unwrap();
    let p = problems(&conn);
    assert!(
        p.iter().any(|p| p.contains("entries 5..5 are missing")),
        "{p:?}"
    );
    assert!(
        p.iter().any(|p| p.starts_with("entry 6: does not follow")),
        "{p:?}"
    );
}

#[test]
fn reordering_is_caught() {
    let (conn, _) = log_with(10);
    conn.execute_batch(
        "UPDATE audit SET seq = -3 WHERE seq = 3;
         UPDATE audit SET seq = 3 WHERE seq = 4;
         UPDATE audit SET seq = 4 WHERE seq = -3;",
    )
    .unwrap();
    let p = problems(&conn);
    assert!(p.iter().any(|p| p.starts_with("entry 3:")), "{p:?}");
}

#[test]
fn truncation_is_caught() {
    let (conn, _) = log_with(10);
    conn.execute("DELETE FROM audit WHERE seq > 7", []).unwrap();
    let p = problems(&conn);
    assert!(
        p.iter()
            .any(|p| p.contains("ends at entry 7 but its head records entry 10")),
        "{p:?}"
    );
}

#[test]
fn edited_content_is_caught_but_erasure_is_not_a_break() {
    let (mut conn, _) = log_with(10);
    conn.execute(
        "UPDATE audit_content SET content = replace(content, 'a2', 'zz') WHERE seq = 3",
        [],
    )
    .unwrap();
    assert!(problems(&conn)
        .iter()
        .any(|p| p.starts_with("entry 3: stored content edited")));
    conn.execute(
        "UPDATE audit_content SET content = replace(content, 'zz', 'a2') WHERE seq = 3",
        [],
    )
    .unwrap();
    let n = forget(&mut conn, "key_a").unwrap();
    assert_eq!(n, 5);
    let v = verify(&conn).unwrap();
    assert!(v.ok(), "{:?}", v.problems);
    assert_eq!(v.erased, 5);
    assert_eq!(v.entries, 11, "the erasure itself is an entry");
}

fn request(i: usize) -> Record {
    Record {
        entry: Entry {
            kind: "request",
            id: format!("req-{i}"),
            ts_ms: db::now_ms(),
            model: "auto".into(),
            status: 200,
            ..Default::default()
        },
        content: None,
        review: None,
        commit: None,
    }
}

fn writer(
    durability: crate::config::Durability,
) -> (std::sync::Arc<super::AuditWriter>, std::path::PathBuf) {
    let path = std::env::temp_dir().join(format!("slmgate-audit-{}.db", uuid::Uuid::new_v4()));
    let cfg = crate::config::AuditConfig {
        durability,
        ..Default::default()
    };
    (
        std::sync::Arc::new(super::AuditWriter::start(path.clone(), &cfg).unwrap()),
        path,
    )
}

fn status_of(path: &std::path::Path, id: &str) -> Option<(u16, Option<String>)> {
    let conn = db::open(path).unwrap();
    conn.query_row(
        "SELECT json_extract(entry, '$.status'), json_extract(entry, '$.error') FROM audit WHERE id = ?1",
        [id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .ok()
}

#[test]
fn sync_commit_is_told_only_once_the_entry_is_on_disk() {
    let (w, path) = writer(crate::config::Durability::Sync);
    // 64 concurrent requests: each, once told, finds its own entry committed (read through
    // another connection), and the chain verifies.
    let threads: Vec<_> = (0..64)
        .map(|i| {
            let (w, path) = (w.clone(), path.clone());
            std::thread::spawn(move || {
                let (notice, wait) = w.waiter();
                let mut rec = request(i);
                rec.commit = notice;
                w.submit(rec);
                assert!(futures::executor::block_on(wait.committed()));
                assert_eq!(status_of(&path, &format!("req-{i}")), Some((200, None)));
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let conn = db::open(&path).unwrap();
    let v = verify(&conn).unwrap();
    assert!(v.ok(), "{:?}", v.problems);
    assert_eq!(v.entries, 64);
    w.shutdown();
}

#[test]
fn interval_durability_never_waits() {
    let (w, _) = writer(crate::config::Durability::Interval);
    let (notice, wait) = w.waiter();
    assert!(notice.is_none());
    assert!(futures::executor::block_on(wait.committed()));
    w.shutdown();
}

#[test]
fn a_locked_database_withholds_the_answer_and_the_entry_lands_later() {
    let (w, path) = writer(crate::config::Durability::Sync);
    // Another process holds the write lock past the writer's busy timeout (5 s).
    let blocker = db::open(&path).unwrap();
    blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let (notice, wait) = w.waiter();
    let mut rec = request(1);
    rec.commit = notice;
    w.submit(rec);
    assert!(
        !futures::executor::block_on(wait.committed()),
        "told the write failed"
    );
    assert!(w.is_failing(), "new requests are refused while it fails");
    blocker.execute_batch("COMMIT").unwrap();
    drop(blocker);
    // The retry writes it, saying what the client got.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while (status_of(&path, "req-1").is_none() || w.is_failing())
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(
        status_of(&path, "req-1"),
        Some((503, Some("audit_unavailable".into())))
    );
    assert!(!w.is_failing());
    w.shutdown();
}
