//! What the gateway keeps for clients beyond the audit log: stored Responses API responses
//! (`previous_response_id`, `GET`/`DELETE /v1/responses/{id}`).

pub mod responses;

pub use responses::{ResponseStore, StoreError, Stored};
