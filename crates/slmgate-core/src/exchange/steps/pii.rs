//! PII: counts the types found in the messages (values never leave the detector), records
//! them in the audit entry and the metrics, and applies the route's policy: `block` refuses,
//! `force_local` keeps the request on premises, `redact` waits for the plan (see `redact`).

use super::super::{Exchange, GatewayError, Refused};
use crate::config::PiiPolicy;

pub(super) fn run(ex: &mut Exchange) -> Result<(), GatewayError> {
    let policy = ex.pii_policy;
    ex.pii = ex.st.governance.pii.scan(&ex.req);
    let report = &ex.pii;
    ex.ticket
        .pii(report, (!report.is_empty()).then_some(policy.as_str()));
    if report.is_empty() {
        return Ok(());
    }
    for t in report.types.keys() {
        ex.st
            .metrics
            .pii_findings
            .with_label_values(&[t, policy.as_str()])
            .inc();
    }
    let names = report.names();
    match policy {
        PiiPolicy::Block => return Err(Refused::Pii(names).into()),
        PiiPolicy::ForceLocal => {
            ex.facts.force_local = Some(format!("pii policy ({})", names.join(",")));
        }
        PiiPolicy::Redact | PiiPolicy::Allow => {}
    }
    ex.facts.pii = names;
    Ok(())
}
