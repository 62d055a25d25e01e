//! The Responses API: `POST /v1/responses` runs through the same exchange as chat
//! completions (governance, routing, cost), with `previous_response_id` continued from the
//! response store; `GET` and `DELETE /v1/responses/{id}` read and remove a stored response.

use std::sync::Arc;

use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;
use serde_json::{json, Value};

use super::error::ApiError;
use super::extract::JsonBody;
use super::middleware::RequestId;
use super::respond::{cache_off, header_tags, served_headers, sse, sse_event};
use crate::exchange::{Endpoint, Exchange, GatewayError, Inbound, Outcome};
use crate::govern::Principal;
use crate::state::AppState;
use crate::store::{ResponseStore, StoreError};
use crate::wire::openai::{now_secs, ChatRequest, Message};
use crate::wire::responses::{
    assistant_turn, from_chat, response_id, Echo, ResponsesRequest, StreamWriter,
};

/// Whose stored responses a request may see: its key's (or everyone's with auth off).
fn owner(who: &Principal) -> String {
    match who {
        Principal::Key(k) => format!("key:{}", k.id),
        Principal::Admin => "admin".into(),
        Principal::Anonymous => "anonymous".into(),
    }
}

pub async fn create(
    State(st): State<Arc<AppState>>,
    Extension(rid): Extension<RequestId>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    JsonBody(rreq): JsonBody<ResponsesRequest>,
) -> Result<Response, ApiError> {
    let owner = owner(&who);
    let inbound = Inbound {
        request_id: rid.0,
        endpoint: Endpoint::Responses,
        who,
        header_tags: header_tags(&headers),
        cache_off: cache_off(&headers),
    };
    let history = match &rreq.previous_response_id {
        None => Ok(Vec::new()),
        Some(id) => match load(&st.responses, &owner, id).await {
            Ok(Some(conv)) => Ok(conv),
            Ok(None) => Err(GatewayError::NotFound {
                param: "previous_response_id",
                message: format!("Previous response with id '{id}' not found."),
            }),
            Err(e) => Err(e),
        },
    };
    let built = history.and_then(|h| {
        let input = rreq.input_messages()?;
        let req = rreq.to_chat(h.clone(), input.clone())?;
        Ok((req, h, input))
    });
    let (req, mut conversation, input) = match built {
        Ok(x) => x,
        Err(e) => {
            // Opened first, so a refused request is audited like any other.
            let ex = Exchange::open(
                &st,
                inbound,
                ChatRequest::new(rreq.model.clone(), Vec::new()),
            );
            return Err(ex.reject(e).await.into());
        }
    };
    conversation.extend(input);
    let echo = Echo::of(&rreq, response_id(), now_secs());
    let store = rreq.stores().then(|| (st.responses.clone(), owner));
    match Exchange::open(&st, inbound, req).run().await? {
        Outcome::Answer(a) => {
            let body = from_chat(&echo, &a.response);
            if let Some((s, owner)) = store {
                keep(s, owner, body.clone(), conversation).await;
            }
            let mut resp = Json(body).into_response();
            served_headers(&mut resp, &a.meta, Some(&a.cost));
            Ok(resp)
        }
        Outcome::Stream(mut s) => {
            let meta = s.meta.clone();
            let body = async_stream::stream! {
                let mut w = StreamWriter::new(echo);
                for (name, ev) in w.start() {
                    yield Ok(sse_event(name, &ev));
                }
                while let Some(item) = s.next().await {
                    match item {
                        Ok(chunk) => {
                            for (name, ev) in w.chunk(&chunk) {
                                yield Ok(sse_event(name, &ev));
                            }
                        }
                        Err(e) => {
                            let err = ApiError::from(e);
                            let (name, ev) = w.failed(err.code, &err.message);
                            yield Ok(sse_event(name, &ev));
                            return;
                        }
                    }
                }
                let (events, response) = w.end();
                if let Some((s, owner)) = store {
                    keep(s, owner, response, conversation).await;
                }
                for (name, ev) in events {
                    yield Ok(sse_event(name, &ev));
                }
            };
            let mut resp = sse(body);
            served_headers(&mut resp, &meta, None);
            Ok(resp)
        }
    }
}

/// Runs a store operation on the blocking pool (SQLite off the async workers).
async fn blocking<T: Send + 'static>(
    store: &Arc<ResponseStore>,
    op: impl FnOnce(&ResponseStore) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, GatewayError> {
    let s = store.clone();
    tokio::task::spawn_blocking(move || op(&s))
        .await
        .map_err(|e| internal(e.to_string()))?
        .map_err(|e| internal(e.to_string()))
}

async fn load(
    store: &Arc<ResponseStore>,
    owner: &str,
    id: &str,
) -> Result<Option<Vec<Message>>, GatewayError> {
    let (owner, id) = (owner.to_string(), id.to_string());
    let found = blocking(store, move |s| s.get(&owner, &id)).await?;
    Ok(found.map(|s| s.conversation))
}

/// Stores the response with its conversation. A failure is logged, not the client's
/// problem: the answer was given (a later `previous_response_id` gets a 404).
async fn keep(
    s: Arc<ResponseStore>,
    owner: String,
    response: Value,
    mut conversation: Vec<Message>,
) {
    if let Some(turn) = assistant_turn(&response) {
        conversation.push(turn);
    }
    if let Err(e) = blocking(&s, move |s| s.put(&owner, &response, &conversation)).await {
        tracing::warn!(error = ?e, "could not store the response");
    }
}

fn internal(message: String) -> GatewayError {
    GatewayError::Internal {
        code: "store_error",
        message,
    }
}

fn not_found(id: &str) -> ApiError {
    let mut e = ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("Response with id '{id}' not found."),
    );
    e.param = Some("response_id".into());
    e
}

pub async fn get(
    State(st): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (owner, key) = (owner(&who), id.clone());
    let found = blocking(&st.responses, move |s| s.get(&owner, &key)).await?;
    match found {
        Some(s) => Ok(Json(s.response).into_response()),
        None => Err(not_found(&id)),
    }
}

pub async fn delete(
    State(st): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (owner, key) = (owner(&who), id.clone());
    let deleted = blocking(&st.responses, move |s| s.delete(&owner, &key)).await?;
    if !deleted {
        return Err(not_found(&id));
    }
    Ok(Json(json!({"id": id, "object": "response", "deleted": true})).into_response())
}
