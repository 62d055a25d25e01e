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
