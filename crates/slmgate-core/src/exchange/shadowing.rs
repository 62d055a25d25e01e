//! Shadow mode's two touch points on the request path: whether this request is shadowed
//! (decided before the route's models run, while the redaction state is known), and the
//! hand-over once the client has its answer — a bounded queue's `try_send`, nothing awaited.

use super::Exchange;
use crate::config::PiiPolicy;
use crate::learn::shadow::{Job, Pick};
use crate::learn::store::Side;
use crate::route::{plan::may_see, Served};

impl Exchange {
    /// Samples the route's shadow share and keeps the shadow models this request may go to;
    /// those policy keeps out are counted as `skipped`.
    pub(super) fn pick_shadow(&self) -> Option<Pick> {
        let st = &self.st;
        let route = self.req.model.as_str();
        let table = &st.table;
        let unredacted_pii = self.pii_policy == PiiPolicy::Redact
            && !self.pii.is_empty()
            && self.redactions.is_none();
        let allowed =
            |id| (table.on_prem(id) || !unredacted_pii) && may_see(table, route, &self.facts, id);
        let pick = st.shadows.pick(route, allowed)?;
        for id in st.shadows.models(route) {
            if !pick.models.contains(id) {
                st.metrics
                    .shadow_requests
                    .with_label_values(&[route, &table.deployment(*id).name, "skipped"])
                    .inc();
            }
        }
        (!pick.models.is_empty()).then_some(pick)
    }

    /// Hands the answered request to the route's shadow queue (dropped and counted when full).
    pub(super) fn offer_shadow(&mut self, served: &Served, cost_usd: f64, answer: String) {
        let Some(pick) = self.shadow.take() else {
            return;
        };
        let route = self.req.model.clone();
        let job = Job {
            request_id: self.request_id.clone(),
            key_id: self.who.key().map(|k| k.id.clone()),
            user_id: super::subject(&self.req, &self.facts.tags).map(str::to_string),
            req: self.req.clone(),
            primary: Side {
                model: served.deployment.name.clone(),
                latency_ms: self.start.elapsed().as_millis() as u64,
                cost_usd,
            },
            primary_answer: answer,
            models: pick.models.clone(),
            route: route.clone(),
        };
        if !self.st.shadows.offer(job) {
            for id in &pick.models {
                self.st
                    .metrics
                    .shadow_requests
                    .with_label_values(&[&route, &self.st.table.deployment(*id).name, "dropped"])
                    .inc();
            }
        }
    }
}
