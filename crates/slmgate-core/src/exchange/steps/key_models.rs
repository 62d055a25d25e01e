//! May this API key use the requested model? (Keys may name the models they are for.)

use super::super::{Exchange, GatewayError, Refused};
use crate::govern::Principal;

pub(super) fn run(ex: &mut Exchange) -> Result<(), GatewayError> {
    check_model_allowed(&ex.who, ex.requested())
}

/// The key's model list allows `model` (also used by `/v1/embeddings`).
pub fn check_model_allowed(who: &Principal, model: &str) -> Result<(), GatewayError> {
    match who.key() {
        Some(k) if !k.may_use(model) => Err(Refused::ModelNotAllowed(model.to_string()).into()),
        _ => Ok(()),
    }
}
