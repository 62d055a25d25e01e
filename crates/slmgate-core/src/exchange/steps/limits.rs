//! The key's rate limits: one request against rpm, the estimated tokens (prompt estimate +
//! `max_tokens`) against tpm. The key's id, team and residency become request facts.

use super::super::{Exchange, GatewayError, Refused};
use crate::govern::limits::Refusal;

pub(super) async fn run(ex: &mut Exchange) -> Result<(), GatewayError> {
    ex.est_tokens = ex.facts.prompt_tokens + ex.req.max_output_tokens().unwrap_or(0);
    let Some(k) = ex.who.key() else {
        return Ok(());
    };
    ex.st
        .governance
        .admit(k, ex.est_tokens)
        .await
        .map_err(refused)?;
    ex.facts.key = Some(k.id.clone());
    ex.facts.team = k.spec.team.clone();
    ex.facts.residency = k.spec.residency.clone();
    Ok(())
}

/// A rate-limit or budget refusal as a gateway error (429 with a retry time).
pub fn refused(r: Refusal) -> GatewayError {
    Refused::Limit(r).into()
}
