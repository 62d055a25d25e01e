//! `JsonBody<T>`: a JSON request body whose failures are OpenAI-shaped errors — 413 over the
//! body limit, 400 naming the offending field for malformed or mistyped JSON.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use super::error::ApiError;

pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rej| {
            if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "request_too_large",
                    "The request body is larger than this server accepts (server.max_body_bytes).",
                )
            } else if is_timeout(&rej) {
                ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "request_timeout",
                    "The request body did not arrive in time (server.body_read_timeout_secs).",
                )
            } else {
                ApiError::bad_request(
                    "invalid_body",
                    format!("Could not read the request body: {rej}"),
                )
            }
        })?;
        parse(&bytes).map(JsonBody)
    }
}

/// The body stopped arriving (`server.body_read_timeout_secs`, tower-http's body timeout).
fn is_timeout(rej: &axum::extract::rejection::BytesRejection) -> bool {
    let mut e: Option<&(dyn std::error::Error + 'static)> = Some(rej);
    while let Some(err) = e {
        if err.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        e = err.source();
    }
    false
}

/// Parses JSON, naming the path of a field with the wrong type. Valid bodies take the plain
/// parser; only a body that fails is parsed again to find the path.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_json",
            "The request body is empty; send a JSON object.",
        ));
    }
    if let Ok(v) = serde_json::from_slice(bytes) {
        return Ok(v);
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let msg = if inner.is_syntax() || inner.is_eof() {
            format!("The request body is not valid JSON: {inner}")
        } else if path == "." {
            format!("Invalid request body: {inner}")
        } else {
            format!("Invalid value for `{path}`: {inner}")
        };
        let mut err = ApiError::bad_request("invalid_json", msg);
        if path != "." {
            err.param = Some(path);
        }
        err
    })
}
