//! The key's budget: the plan's worst case (every tier at its dearest model, the prompt's
//! token bound, all of `max_tokens`) is reserved before any call, so concurrent requests
//! can never spend more than the budget together; the exchange reconciles it with the real
//! cost at the end.

use super::super::{Exchange, GatewayError};
use super::limits::refused;
use crate::govern::cost;
use crate::route::DEFAULT_MAX_TOKENS_FOR_COST;

pub(super) async fn run(ex: &mut Exchange) -> Result<(), GatewayError> {
    let Some((k, budget)) = ex.who.key().and_then(|k| k.spec.budget.map(|b| (k, b))) else {
        return Ok(());
    };
    let Some(plan) = ex.plan.as_ref() else {
        return Ok(());
    };
    if ex.req.max_output_tokens().is_none() {
        // The reservation must bound what the call can cost.
        ex.req.max_tokens = Some(DEFAULT_MAX_TOKENS_FOR_COST);
    }
    let worst = cost::worst_case(
        &ex.st.table,
        plan,
        cost::prompt_token_bound(&ex.req),
        ex.req.max_output_tokens(),
    );
    let r = ex
        .st
        .governance
        .reserve(k, budget, worst, ex.est_tokens)
        .await
        .map_err(refused)?;
    ex.reservation = Some(r);
    Ok(())
}
