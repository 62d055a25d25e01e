//! The injection guard on what the user wrote. With `flag`, only the rules run here and the
//! classifier (when the embedding model is loaded) scores beside the model call, its verdict
//! landing in the audit entry; `block` and `force_local` wait for the full score.

use super::super::{Exchange, GatewayError, Refused};
use crate::config::GuardAction;
use crate::govern::guard::GuardVerdict;

pub(super) fn run(ex: &mut Exchange) -> Result<(), GatewayError> {
    let action = ex.guard_action;
    if action == GuardAction::Off {
        return Ok(());
    }
    let threshold = ex.st.config.guard.threshold;
    let guard = ex.st.governance.guard();
    let user_text = ex.req.texts(&["user"]);
    let embedder = ex
        .st
        .loaded()
        .and_then(|l| l.classifiers.embedder.as_ref())
        .map(|e| e.model.clone());
    if action == GuardAction::Flag {
        let rules = guard.score(&user_text, None);
        record(ex, &rules, threshold, action);
        if rules.score < threshold && guard.uses_embeddings() {
            let (ticket, metrics) = (ex.ticket.clone(), ex.st.metrics.clone());
            tokio::task::spawn_blocking(move || {
                let v = guard.score(&user_text, embedder.as_deref());
                let hit = v.score >= threshold;
                if hit {
                    metrics
                        .guard_hits
                        .with_label_values(&[action.as_str()])
                        .inc();
                }
                ticket.guard(&v, if hit { "flag" } else { "pass" });
            });
        }
        return Ok(());
    }
    let v = guard.score(&user_text, embedder.as_deref());
    if !record(ex, &v, threshold, action) {
        return Ok(());
    }
    if action == GuardAction::Block {
        return Err(Refused::Injection(v.score).into());
    }
    if ex.facts.force_local.is_none() {
        ex.facts.force_local = Some(format!("guard (score {:.2})", v.score));
    }
    Ok(())
}

/// Records the verdict in the audit entry (and a hit in the metrics); true for an attack.
fn record(ex: &Exchange, v: &GuardVerdict, threshold: f32, action: GuardAction) -> bool {
    let hit = v.score >= threshold;
    ex.ticket
        .guard(v, if hit { action.as_str() } else { "pass" });
    if hit {
        ex.st
            .metrics
            .guard_hits
            .with_label_values(&[action.as_str()])
            .inc();
    }
    hit
}
