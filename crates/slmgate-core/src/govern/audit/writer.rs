//! The audit writer: a thread that owns its own SQLite connection and writes entries in
//! batches, so the response path only enqueues.
//!
//! Under `durability = "sync"` (the default) every entry carries a commit notice and the
//! request waits on it: the writer takes everything queued while its previous commit ran
//! and writes it in one transaction, fsynced (`synchronous = FULL`) — a group commit, one
//! fsync per batch however many requests are waiting. Should a write fail (a full disk, a
//! lock held too long) the waiting requests are told at once (their clients get 503
//! `audit_unavailable`; the entries say so), new requests are refused at admission until a
//! write succeeds again, and the entries are kept and retried: none is dropped while the
//! process lives (at shutdown, after 10 more failed tries, the writer gives up so the exit
//! does not hang; those clients were all told 503).
//!
//! Under `"interval"` a batch is written at most `flush_interval` after its first entry was
//! enqueued, and answers do not wait. On Linux the writer then runs as `SCHED_IDLE`: its
//! commits never delay a request on a busy core. Should a saturated CPU starve it, the next
//! request that finds an entry waiting longer than twice the interval lifts it back to
//! normal priority until the queue is empty.
//!
//! Shutdown drains the queue.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::oneshot;

use super::commit::{CommitNotice, CommitWait};
use super::entry::Record;
use super::store::{append, prune_content};
use crate::config::{AuditConfig, Durability};
use crate::govern::{db, GovernError};

/// Where the writer appends: the SQLite file, or the shared Postgres store (a connection of
/// its own, taken again from the pool after a failure).
pub enum Sink {
    Sqlite(rusqlite::Connection),
    Pg {
        pool: crate::db::Pg,
        conn: Option<Box<crate::db::Conn>>,
    },
}

impl Sink {
    fn append(&mut self, batch: &[Record]) -> Result<i64, GovernError> {
        match self {
            Sink::Sqlite(c) => append(c, batch),
            Sink::Pg { pool, conn } => {
                let c = match conn {
                    Some(c) => c,
                    None => conn.insert(Box::new(
                        pool.get().map_err(|e| GovernError::Store(e.to_string()))?,
                    )),
                };
                let r = super::pg::append(c, batch);
                if r.is_err() {
                    // A broken connection is not reused.
                    *conn = None;
                }
                r
            }
        }
    }

    fn prune(&mut self, days: u32, now_ms: i64) {
        let _ = match self {
            Sink::Sqlite(c) => prune_content(c, days, now_ms).map(|n| n as u64),
            Sink::Pg { pool, .. } => pool
                .get()
                .map_err(|e| GovernError::Store(e.to_string()))
                .and_then(|mut c| super::pg::prune_content(&mut c, days, now_ms)),
        };
    }
}

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
    /// The last write failed (and is being retried).
    failing: AtomicBool,
}

pub struct AuditWriter {
    tx: Mutex<Option<Sender<Record>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    shared: Arc<Shared>,
    interval_ms: i64,
    sync: bool,
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
    /// Opens the SQLite store (creating the tables) and starts the writer thread.
    pub fn start(path: PathBuf, cfg: &AuditConfig) -> Result<Self, GovernError> {
        let conn = db::open(&path)?;
        if cfg.durability == Durability::Sync {
            // A commit returns once the WAL is fsynced: an acknowledged entry survives a
            // power cut, not only a crash of the process.
            conn.pragma_update(None, "synchronous", "FULL")?;
        }
        Self::start_on(Sink::Sqlite(conn), cfg)
    }

    /// Starts the writer thread on the shared Postgres store (a Postgres commit is durable
    /// once it returns, with the server's default `synchronous_commit`).
    pub fn start_pg(pool: crate::db::Pg, cfg: &AuditConfig) -> Result<Self, GovernError> {
        Self::start_on(Sink::Pg { pool, conn: None }, cfg)
    }

    fn start_on(mut conn: Sink, cfg: &AuditConfig) -> Result<Self, GovernError> {
        let sync = cfg.durability == Durability::Sync;
        conn.prune(cfg.retention_days, db::now_ms());
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
                    if !sync {
                        set_policy(current_tid(), libc::SCHED_IDLE);
                    }
                }
                let mut last_prune = std::time::Instant::now();
                let mut backlog = false;
                while let Ok(first) = rx.recv() {
                    // Interval: sleep out the interval instead of waking for every entry
                    // (one wake-up per batch, not per request); behind by a full batch,
                    // write on at once. Sync: whatever queued during the last commit is
                    // this commit's group.
                    if !sync && !backlog {
                        std::thread::sleep(interval);
                    }
                    let mut batch = vec![first];
                    batch.extend(rx.try_iter().take(MAX_BATCH - 1));
                    backlog = batch.len() == MAX_BATCH;
                    if sync {
                        sh.commit_group(&mut conn, batch, &rx);
                    } else {
                        sh.write_batches(&mut conn, &batch);
                    }
                    if last_prune.elapsed() > Duration::from_secs(3600) {
                        last_prune = std::time::Instant::now();
                        conn.prune(retention, db::now_ms());
                    }
                }
            })
            .map_err(|e| GovernError::Store(format!("cannot start the audit writer: {e}")))?;
        Ok(Self {
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            shared,
            interval_ms: cfg.flush_interval_ms as i64,
            sync,
        })
    }

    /// Under `sync`, the notice for a new entry and what its request awaits; under
    /// `interval`, nothing to wait for.
    pub fn waiter(&self) -> (Option<CommitNotice>, CommitWait) {
        if !self.sync {
            return (None, CommitWait::default());
        }
        let (tx, rx) = oneshot::channel();
        (Some(tx), CommitWait::on(rx))
    }

    /// The last write failed and is being retried (a full disk, a lock): new requests
    /// are refused until it succeeds.
    pub fn is_failing(&self) -> bool {
        self.shared.failing.load(Ordering::Acquire)
    }

    /// Enqueues a record (never blocks on the disk).
    pub fn submit(&self, rec: Record) {
        if !self.sync {
            self.note_pending();
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

    /// Interval mode: counts the entry waiting, and lifts a writer starved at idle priority
    /// (sync mode's writer runs at normal priority, and its requests wait on it anyway).
    fn note_pending(&self) {
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

/// The entries whose requests are waiting could not be written: their clients are told
/// (and get 503), and the entries record that.
fn withhold(batch: &mut [Record]) {
    for r in batch {
        if let Some(n) = r.commit.take() {
            if r.entry.status < 400 {
                r.entry.status = 503;
                r.entry.error = Some("audit_unavailable".into());
            }
            let _ = n.send(false);
        }
    }
}

impl Shared {
    /// Interval mode: the batch in transactions of `CHUNK`, each retried until written.
    fn write_batches(&self, conn: &mut Sink, batch: &[Record]) {
        for chunk in batch.chunks(CHUNK) {
            let mut tries = 0u32;
            while let Err(e) = conn.append(chunk) {
                tries += 1;
                self.failing.store(true, Ordering::Release);
                tracing::error!(error = %e, entries = chunk.len(), tries, "audit write failed; retrying");
                std::thread::sleep(Duration::from_millis(200 * u64::from(tries.min(25))));
            }
            self.failing.store(false, Ordering::Release);
            self.committed(chunk.len());
            std::thread::yield_now();
        }
        #[cfg(target_os = "linux")]
        if self.pending.load(Ordering::Acquire) == 0 && self.boosted.swap(false, Ordering::AcqRel) {
            set_policy(current_tid(), libc::SCHED_IDLE);
        }
    }

    /// Sync mode: the group in one transaction, then every waiter told. On a failure the
    /// waiters are told at once and their entries say what their clients got (503
    /// `audit_unavailable`); the group, and whatever arrives meanwhile, is retried until
    /// it is written (or, shutting down, for 10 more tries).
    fn commit_group(&self, conn: &mut Sink, mut batch: Vec<Record>, rx: &Receiver<Record>) {
        let mut tries = 0u32;
        let mut stopping = false;
        loop {
            match conn.append(&batch) {
                Ok(_) => {
                    self.failing.store(false, Ordering::Release);
                    for r in &mut batch {
                        if let Some(n) = r.commit.take() {
                            let _ = n.send(true);
                        }
                    }
                    return;
                }
                Err(e) => {
                    tries += 1;
                    self.failing.store(true, Ordering::Release);
                    tracing::error!(error = %e, entries = batch.len(), tries, "audit write failed; answers withheld, retrying");
                    withhold(&mut batch);
                    if stopping && tries > 10 {
                        // Shutting down and the disk is still refusing: do not hang the exit.
                        // Every client of these entries was told 503.
                        tracing::error!(
                            entries = batch.len(),
                            "audit entries not written at shutdown"
                        );
                        return;
                    }
                    // Back off, failing whoever queues meanwhile at once.
                    let until = std::time::Instant::now()
                        + Duration::from_millis(100 * u64::from(tries.min(10)));
                    while let Some(left) = until.checked_duration_since(std::time::Instant::now()) {
                        match rx.recv_timeout(left) {
                            Ok(r) => {
                                batch.push(r);
                                withhold(&mut batch);
                            }
                            Err(RecvTimeoutError::Timeout) => break,
                            Err(RecvTimeoutError::Disconnected) => {
                                stopping = true;
                                std::thread::sleep(left);
                                break;
                            }
                        }
                    }
                }
            }
        }
    }

    fn committed(&self, n: usize) {
        let left = self.pending.fetch_sub(n, Ordering::AcqRel) - n;
        // Entries still queued arrived after the ones just written: "oldest" is at most now.
        self.oldest_ms
            .store(if left == 0 { 0 } else { db::now_ms() }, Ordering::Release);
    }
}
