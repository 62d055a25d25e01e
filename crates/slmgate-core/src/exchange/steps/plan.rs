//! The routing plan: the learned router's and the domain classifier's verdicts (when the
//! route has them), then `route::plan` over the request's facts. Counted and audited.

use super::super::{Exchange, GatewayError};
use crate::route::plan;

pub(super) async fn run(ex: &mut Exchange) -> Result<(), GatewayError> {
    let (verdict, domain) = match ex.st.loaded() {
        Some(l) => (
            l.classifiers
                .router_verdict(&ex.req.model, &ex.req, &ex.facts)
                .await,
            l.classifiers.domain_verdict(&ex.req.model, &ex.req).await,
        ),
        None => (None, None),
    };
    let p = plan(&ex.st.table, &ex.req.model, &ex.facts, verdict, domain)?;
    let m = &ex.st.metrics;
    m.route_decisions
        .with_label_values(&[
            p.route.as_str(),
            &p.tiers[0].name,
            p.rule.as_deref().unwrap_or("none"),
        ])
        .inc();
    if let Some(v) = p.router {
        m.router_score
            .with_label_values(&[&p.route])
            .observe(v.score as f64);
    }
    tracing::debug!(route = %p.route, first_tier = %p.tiers[0].name, reason = %p.reason_header(), "plan");
    ex.ticket.plan(&p);
    ex.plan = Some(p);
    Ok(())
}
