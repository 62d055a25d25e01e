//! Under `pii = "redact"`, PII values become placeholders (`[EMAIL_1]`) before any
//! off-premises model of the plan can see them; the answer gets them back (`restore`).
//! A plan of on-premises models only sees the request as sent.

use super::super::{Exchange, GatewayError};
use crate::config::PiiPolicy;

pub(super) fn run(ex: &mut Exchange) -> Result<(), GatewayError> {
    if ex.pii_policy != PiiPolicy::Redact || ex.pii.is_empty() {
        return Ok(());
    }
    let table = &ex.st.table;
    let off_prem = ex
        .plan
        .as_ref()
        .is_some_and(|p| p.deployments().any(|m| !table.on_prem(m)));
    if off_prem {
        let (redacted, r) = ex.st.governance.pii.redact(&ex.req);
        ex.req = redacted;
        ex.redactions = Some(r);
    }
    Ok(())
}
