//! A `rag` route's groundedness check (`min_grounding`): a whole answer that its passages do
//! not support escalates to the next tier of the plan, like a low-confidence cascade answer,
//! with the reason `escalated A->B: ungrounded (score S)`. If the next tier fails, the first
//! answer stands.

use super::Exchange;
use crate::know::grounding;
use crate::route::{Escalation, Gateway, Plan, Served};
use crate::wire::openai::ChatResponse;

impl Exchange {
    /// The next tier's answer when this one is not grounded in the retrieved passages.
    pub(super) async fn ground(
        &mut self,
        gw: &Gateway,
        plan: &Plan,
        response: &ChatResponse,
        served: &Served,
    ) -> Option<(ChatResponse, Served)> {
        let min = self
            .st
            .config
            .routes
            .get(&self.req.model)?
            .rag
            .as_ref()?
            .min_grounding?;
        if self.citations.is_empty() {
            return None;
        }
        let answer = response.choices.first()?.message.content.as_deref()?;
        let rest = plan.after(&served.tier)?;
        let score = grounding::score(answer, &self.question, &self.passages);
        if score >= min {
            return None;
        }
        let (r, mut s) = match gw.complete(&rest, &self.req).await {
            Ok(x) => x,
            Err(f) => {
                tracing::warn!(error = ?f.error, "the tier after an ungrounded answer failed; the answer stands");
                return None;
            }
        };
        let judged = response.usage.map(|u| u.completion_tokens).unwrap_or(0) as usize;
        self.st
            .metrics
            .escalations
            .with_label_values(&[plan.route.as_str(), &served.tier, &s.tier, "ungrounded"])
            .inc();
        let mut escalations = served.escalations.clone();
        escalations.push(Escalation {
            from_tier: served.tier.to_string(),
            to_tier: s.tier.to_string(),
            cause: "ungrounded",
            deployment: Some(served.deployment.name.clone()),
            confidence: Some(score),
            judged_tokens: judged,
        });
        escalations.append(&mut s.escalations);
        s.escalations = escalations;
        let mut attempts = served.attempts.clone();
        attempts.append(&mut s.attempts);
        s.attempts = attempts;
        s.upstream += served.upstream;
        Some((r, s))
    }
}
