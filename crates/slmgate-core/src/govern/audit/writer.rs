//! The audit writer: a thread that owns its own SQLite connection and writes entries in
//! batches, so the response path only enqueues. A batch is written at most
//! `flush_interval` after its first entry was enqueued; shutdown drains the queue.
//!
//! On Linux the writer runs as `SCHED_IDLE`: its commits never delay a request on a busy
//! core. Should a saturated CPU starve it, the next request that finds an entry waiting longer
//! than twice the interval lifts it back to normal priority until the queue is empty — the
//! durability promise (every request answered before the last interval is on disk) holds
//! under load too.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::entry::Record;
use super::store::{append, prune_content};
use crate::config::AuditConfig;
use crate::govern::{db, GovernError};

/// Most entries taken from the queue at once.
const MAX_BATCH: usize = 2048;
/// Most entries per transaction: one commit (WAL frames, maybe a checkpoint) per 256
/// entries; the writer yields between transactions.
const CHUNK: usize = 256;

/// What the request path and the writer share.
#[derive(Default)]
struct Shared {
    /// Entries enqueued and not yet committed.
    pending: AtomicUsize,
    /// Enqueue time (Unix ms) of the oldest uncommitted entry; 0 when none.
    oldest_ms: AtomicI64,
    /// The writer thread's Linux thread id.
    tid: AtomicI32,
    boosted: AtomicBool,
}

pub struct AuditWriter {
    tx: Mutex<Option<Sender<Record>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    shared: Arc<Shared>,
    interval_ms: i64,
}

#[cfg(target_os = "linux")]
fn set_policy(tid: i32, policy: libc::c_int) {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: sched_setscheduler on a thread of this process with a valid param struct only
    // changes that thread's scheduling policy; failure (not permitted) is harmless.
    unsafe {
        libc::sched_setscheduler(tid, policy, &param);
    }
}

#[cfg(target_os = "linux")]
fn current_tid() -> i32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}

impl AuditWriter {
    /// Opens the store (creating the tables) and starts the writer thread.
    pub fn start(path: PathBuf, cfg: &AuditConfig) -> Result<Self, GovernError> {
        let mut conn = db::open(&path)?;
        let _ = prune_content(&conn, cfg.retention_days, db::now_ms());
        let (tx, rx) = channel::<Record>();
        let interval = Duration::from_millis(cfg.flush_interval_ms);
        let retention = cfg.retention_days;
        let shared = Arc::new(Shared::default());
        let sh = shared.clone();
        let thread = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || {
                #[cfg(target_os = "linux")]
                {
                    sh.tid.store(current_tid(), Ordering::Release);
                    set_policy(current_tid(), libc::SCHED_IDLE);
                }
                let mut last_prune = std::time::Instant::now();
                let mut backlog = false;
                while let Ok(first) = rx.recv() {
                    // Sleep out the interval instead of waking for every entry: senders never
                    // wake this thread while it sleeps (one wake-up per batch, not per
                    // request). Behind by a full batch, write on at once.
                    if !backlog {
                        std::thread::sleep(interval);
                    }
                    let mut batch = vec![first];
                    batch.extend(rx.try_iter().take(MAX_BATCH - 1));
                    backlog = batch.len() == MAX_BATCH;
                    for chunk in batch.chunks(CHUNK) {
                        // A failed write (disk full, lock timeout) is retried: entries are
                        // never dropped while the process lives.
                        let mut tries = 0u32;
                        while let Err(e) = append(&mut conn, chunk) {
                            tries += 1;
                            tracing::error!(error = %e, entries = chunk.len(), tries, "audit write failed; retrying");
                            std::thread::sleep(Duration::from_millis(200 * u64::from(tries.min(25))));
                        }
                        sh.committed(chunk.len());
                        std::thread::yield_now();
                    }
                    #[cfg(target_os = "linux")]
                    if sh.pending.load(Ordering::Acquire) == 0 && sh.boosted.swap(false, Ordering::AcqRel) {
                        set_policy(current_tid(), libc::SCHED_IDLE);
                    }
                    if last_prune.elapsed() > Duration::from_secs(3600) {
                        last_prune = std::time::Instant::now();
                        let _ = prune_content(&conn, retention, db::now_ms());
                    }
                }
            })
            .map_err(|e| GovernError::Store(format!("cannot start the audit writer: {e}")))?;
        Ok(Self {
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            shared,
            interval_ms: cfg.flush_interval_ms as i64,
        })
    }

    /// Enqueues a record (never blocks on the disk).
    pub fn submit(&self, rec: Record) {
        let now = db::now_ms();
        let sh = &self.shared;
        if sh.pending.fetch_add(1, Ordering::AcqRel) == 0 {
            sh.oldest_ms.store(now, Ordering::Release);
        }
        let oldest = sh.oldest_ms.load(Ordering::Acquire);
        if oldest > 0
            && now - oldest > 2 * self.interval_ms
            && !sh.boosted.swap(true, Ordering::AcqRel)
        {
            // The writer is starved: lift it until it has caught up.
            #[cfg(target_os = "linux")]
            set_policy(sh.tid.load(Ordering::Acquire), libc::SCHED_OTHER);
        }
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
        #[cfg(target_os = "linux")]
        set_policy(self.shared.tid.load(Ordering::Acquire), libc::SCHED_OTHER);
        self.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = t.join();
        }
    }
}

impl Shared {
    fn committed(&self, n: usize) {
        let left = self.pending.fetch_sub(n, Ordering::AcqRel) - n;
        // Entries still queued arrived after the ones just written: "oldest" is at most now.
        self.oldest_ms
            .store(if left == 0 { 0 } else { db::now_ms() }, Ordering::Release);
    }
}
