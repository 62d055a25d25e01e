//! The audit writer: a thread that owns its own SQLite connection and writes entries in
//! batches, so the response path only enqueues. A batch is written at most
//! `flush_interval` after its first entry was enqueued; shutdown drains the queue.

use std::path::PathBuf;
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::entry::Record;
use super::store::{append, prune_content};
use crate::config::AuditConfig;
use crate::govern::{db, GovernError};

/// Most entries per transaction.
const MAX_BATCH: usize = 2048;

pub struct AuditWriter {
    tx: Mutex<Option<Sender<Record>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl AuditWriter {
    /// Opens the store (creating the tables) and starts the writer thread.
    pub fn start(path: PathBuf, cfg: &AuditConfig) -> Result<Self, GovernError> {
        let mut conn = db::open(&path)?;
        let _ = prune_content(&conn, cfg.retention_days, db::now_ms());
        let (tx, rx) = channel::<Record>();
        let interval = Duration::from_millis(cfg.flush_interval_ms);
        let retention = cfg.retention_days;
        let thread = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || {
                let mut last_prune = Instant::now();
                while let Ok(first) = rx.recv() {
                    let deadline = Instant::now() + interval;
                    let mut batch = vec![first];
                    while batch.len() < MAX_BATCH {
                        let left = deadline.saturating_duration_since(Instant::now());
                        match rx.recv_timeout(left) {
                            Ok(r) => batch.push(r),
                            Err(RecvTimeoutError::Timeout) => break,
                            Err(RecvTimeoutError::Disconnected) => break,
                        }
                    }
                    // A failed write (disk full, lock timeout) is retried: entries are never
                    // dropped while the process lives.
                    let mut tries = 0u32;
                    while let Err(e) = append(&mut conn, &batch) {
                        tries += 1;
                        tracing::error!(error = %e, entries = batch.len(), tries, "audit write failed; retrying");
                        std::thread::sleep(Duration::from_millis(200 * u64::from(tries.min(25))));
                    }
                    if last_prune.elapsed() > Duration::from_secs(3600) {
                        last_prune = Instant::now();
                        let _ = prune_content(&conn, retention, db::now_ms());
                    }
                }
            })
            .map_err(|e| GovernError::Store(format!("cannot start the audit writer: {e}")))?;
        Ok(Self {
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Enqueues a record (never blocks on the disk).
    pub fn submit(&self, rec: Record) {
        let guard = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        match guard.as_ref() {
            Some(tx) => {
                if tx.send(rec).is_err() {
                    tracing::error!("audit writer is gone; entry lost");
                }
            }
            None => tracing::error!("audit entry after shutdown; entry lost"),
        }
    }

    /// Writes everything enqueued, then stops the thread.
    pub fn shutdown(&self) {
        self.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = t.join();
        }
    }
}
