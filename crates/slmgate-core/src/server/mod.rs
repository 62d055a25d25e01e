//! Bind, load models, serve, and shut down gracefully on SIGINT/SIGTERM.

mod listen;

use std::time::Duration;

use thiserror::Error;

pub use listen::ConnLimits;

use crate::api;
use crate::config::Config;
use crate::state::AppState;

#[derive(Debug, Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("loading models failed: {0}")]
    Load(String),
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Govern(#[from] crate::govern::GovernError),
}

/// Serves until SIGINT/SIGTERM. The port is bound before models load: `/health` answers at
/// once, `/ready` and the model endpoints once loading is done.
pub async fn serve(config: Config) -> Result<(), ServeError> {
    let addr = config.server.listen.clone();
    let grace = Duration::from_secs(config.server.shutdown_grace_secs);
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|source| ServeError::Bind {
            addr: addr.clone(),
            source,
        })?;
    // Opening the stores blocks (a Postgres connection, migrations).
    let state = crate::db::blocking(|| AppState::new(config))?;
    if !state.config.auth.enabled {
        tracing::warn!("auth is off: every request is served without an API key (set [auth] enabled = true for shared deployments)");
    }
    let storage = match &state.governance.pg {
        Some(_) => "postgres".to_string(),
        None => state.governance.path.display().to_string(),
    };
    tracing::info!(
        %addr,
        %storage,
        redis = state.governance.shared.is_some(),
        "listening; loading models"
    );

    let loader = {
        let st = state.clone();
        tokio::task::spawn_blocking(move || st.load_models())
    };
    let app = api::router(state.clone());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let limits = ConnLimits::of(&state.config.server);
    let server = tokio::spawn(async move {
        let open = listen::accept_loop(listener, app, limits, async {
            let _ = rx.await;
        })
        .await;
        open.shutdown().await;
    });

    let loaded = loader.await.map_err(|e| ServeError::Load(e.to_string()))?;
    if let Err(e) = loaded {
        let _ = tx.send(());
        state.governance.audit.shutdown();
        return Err(ServeError::Load(e));
    }
    tracing::info!(%addr, "ready");
    crate::exchange::shadow_worker::start(&state);
    for (route, tiers) in state.table.live_tiers() {
        tracing::info!(route = %route, tiers = %tiers, "serving");
    }
    {
        // Learned-router and LoRA adapter files are re-read when they change (hot swap, no
        // restart).
        let st = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
            let mut ticks = 0u64;
            loop {
                tick.tick().await;
                ticks += 1;
                if ticks.is_multiple_of(30) {
                    // The shared response cache: expired and least recently used entries.
                    if let Some(c) = st.shared_cache.clone() {
                        let _ = tokio::task::spawn_blocking(move || c.prune()).await;
                    }
                }
                // LoRA adapter files that changed are loaded anew (in the engine's thread).
                st.reload_adapters().await;
                // Redis' health for /ready and slmgate_redis_up, traffic or not.
                if let Some(s) = &st.governance.shared {
                    s.ping().await;
                }
                let st = st.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    st.reload_routers();
                    // Rollout shares set by the CLI; rollbacks by review verdicts.
                    st.refresh_rollouts();
                    // Keys created or revoked by another process (the CLI).
                    if let Err(e) = st.governance.keys.refresh() {
                        tracing::warn!(error = %e, "cannot re-read API keys");
                    }
                })
                .await;
            }
        });
    }

    shutdown_signal().await;
    tracing::info!(
        grace_secs = grace.as_secs(),
        "shutting down: draining in-flight requests"
    );
    let _ = tx.send(());
    match tokio::time::timeout(grace, server).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "server task failed"),
        Err(_) => tracing::warn!("grace period over; closing remaining connections"),
    }
    // Every answered request's entry is on disk before the process exits.
    let st = state.clone();
    let _ = tokio::task::spawn_blocking(move || st.governance.audit.shutdown()).await;
    tracing::info!("audit log flushed");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
