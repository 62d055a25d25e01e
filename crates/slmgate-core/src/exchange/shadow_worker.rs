//! Shadow mode's workers: each route's queue is drained by `concurrency` tasks that call the
//! shadow models, score the agreement and store a row. Off every request's path: nothing here
//! is awaited by a client. Rows go to the shared Postgres store when there is one (one report
//! for every replica), else to the SQLite file.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::config::AuditContent;
use crate::govern::{cost, db};
use crate::learn::agreement::{agreement, cosine};
use crate::learn::shadow::{answer_text, Job};
use crate::learn::store::{self, ShadowRow, Side};
use crate::state::AppState;

/// Starts every route's workers (once the models are loaded).
pub fn start(st: &Arc<AppState>) {
    let queues = st.shadows.take_receivers();
    if queues.is_empty() {
        return;
    }
    let conn = match &st.governance.pg {
        Some(pg) => Arc::new(Sink::Pg(pg.clone())),
        None => match db::open(&st.governance.path) {
            Ok(c) => Arc::new(Sink::Sqlite(Mutex::new(c))),
            Err(e) => {
                tracing::error!(error = %e, "shadow mode off: cannot open the store");
                return;
            }
        },
    };
    for (route, workers, rx) in queues {
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        for _ in 0..workers {
            let (st, rx, conn) = (st.clone(), rx.clone(), conn.clone());
            tokio::spawn(async move {
                loop {
                    let job = rx.lock().await.recv().await;
                    let Some(job) = job else { break };
                    run(&st, &conn, job).await;
                }
            });
        }
        tracing::info!(route = %route, sample = st.shadows.sample(&route), "shadow mode on");
    }
}

/// Where shadow rows are written.
enum Sink {
    Sqlite(Mutex<rusqlite::Connection>),
    Pg(crate::db::Pg),
}

impl Sink {
    fn insert(&self, row: &ShadowRow) -> Result<(), String> {
        match self {
            Sink::Sqlite(c) => {
                let c = c.lock().unwrap_or_else(|p| p.into_inner());
                store::insert(&c, row).map_err(|e| e.to_string())
            }
            Sink::Pg(pg) => crate::learn::store_pg::insert(pg, row).map_err(|e| e.to_string()),
        }
    }
}

/// Calls each shadow model of a job and stores what it found.
async fn run(st: &Arc<AppState>, conn: &Arc<Sink>, job: Job) {
    let Some(loaded) = st.loaded() else { return };
    let gw = &loaded.gateway;
    let mut req = job.req.clone();
    req.stream = None;
    req.stream_options = None;
    for id in &job.models {
        let Some(d) = gw.deployment(*id) else {
            continue;
        };
        let name = d.name.clone();
        let t0 = Instant::now();
        let result = gw.complete_chain(&job.route, &[*id], &req).await;
        let latency_ms = t0.elapsed().as_millis() as u64;
        let mut row = ShadowRow {
            ts_ms: db::now_ms(),
            request_id: job.request_id.clone(),
            route: job.route.clone(),
            key_id: job.key_id.clone(),
            user_id: job.user_id.clone(),
            sample: st.shadows.sample(&job.route),
            primary: job.primary.clone(),
            shadow: Side {
                model: name.clone(),
                latency_ms,
                cost_usd: 0.0,
            },
            error: None,
            exact: None,
            normalised: None,
            similarity: None,
            json_fields: None,
            agreement: None,
            prompt: None,
            primary_answer: None,
            shadow_answer: None,
        };
        let m = &st.metrics;
        match result {
            Err(f) => {
                row.error = Some(match f.error {
                    crate::route::ExecError::Provider { error, .. } => error.to_string(),
                    crate::route::ExecError::NoDeployment => "no deployment".into(),
                });
                m.shadow_requests
                    .with_label_values(&[&job.route, &name, "error"])
                    .inc();
            }
            Ok((resp, _)) => {
                let text = answer_text(&resp);
                let usage = resp.usage.unwrap_or_default();
                row.shadow.cost_usd = cost::request_cost(&st.table, *id, &[], &usage).actual;
                let sim = similarity(st, &job.primary_answer, &text).await;
                let a = agreement(&job.primary_answer, &text, sim);
                row.exact = Some(a.exact);
                row.normalised = Some(a.normalised);
                row.similarity = a.similarity;
                row.json_fields = a.json_fields;
                row.agreement = Some(a.score);
                keep_content(st, &mut row, &job, &text);
                m.shadow_requests
                    .with_label_values(&[&job.route, &name, "ok"])
                    .inc();
                m.shadow_agreement
                    .with_label_values(&[&job.route, &name])
                    .observe(a.score as f64);
            }
        }
        let conn = conn.clone();
        let stored = tokio::task::spawn_blocking(move || conn.insert(&row)).await;
        if !matches!(stored, Ok(Ok(()))) {
            tracing::warn!(route = %job.route, shadow = %name, "cannot store a shadow answer");
        }
    }
}

/// The two answers' embedding cosine, when an embedding model is loaded.
async fn similarity(st: &AppState, a: &str, b: &str) -> Option<f32> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let e = st.loaded()?.classifiers.embedder.as_ref()?;
    let texts = vec![a.to_string(), b.to_string()];
    let (v, _) = e
        .run("shadow agreement embedding failed", move |m| {
            m.embed_truncated(&texts)
        })
        .await?;
    Some(cosine(v.first()?, v.get(1)?))
}

/// The prompt and both answers, as `[audit] content` allows.
fn keep_content(st: &AppState, row: &mut ShadowRow, job: &Job, shadow: &str) {
    let keep = |t: &str| match st.config.audit.content {
        AuditContent::None => None,
        AuditContent::Redacted => Some(st.governance.pii.mask(t)),
        AuditContent::Full => Some(t.to_string()),
    };
    row.prompt = keep(&job.req.last_user_text().unwrap_or_default());
    row.primary_answer = keep(&job.primary_answer);
    row.shadow_answer = keep(shadow);
}
