//! Retrieval (a route's `rag = { collection, top_k, max_context_tokens }`): the question
//! is embedded, the collection searched (BM25 + dense, fused, floored), and the passages
//! that fit the budget go before the question. The audit entry records the collection and
//! each chunk with its scores; the answer cites them. Runs before the plan, so routing and
//! the budget see the prompt the models will get, and before redaction, so an
//! off-premises tier gets the passages redacted too.

use super::super::{Exchange, GatewayError};
use crate::govern::audit::{RetrievalSummary, RetrievedChunk};
use crate::know::{augment, KnowError};
use crate::ml::{embed_one, Representation};

fn failed(e: KnowError) -> GatewayError {
    GatewayError::Retrieval {
        status: e.status(),
        message: e.to_string(),
    }
}

pub(super) async fn run(ex: &mut Exchange) -> Result<(), GatewayError> {
    let Some(rag) = ex
        .st
        .config
        .routes
        .get(&ex.req.model)
        .and_then(|r| r.rag.clone())
    else {
        return Ok(());
    };
    let Some(question) = ex.req.last_user_text().filter(|q| !q.trim().is_empty()) else {
        return Ok(());
    };
    let st = ex.st.clone();
    let embedder = st
        .loaded()
        .and_then(|l| l.classifiers.embedder.as_ref())
        .ok_or(GatewayError::NotReady)?;
    let knowledge = st.knowledge.clone();
    let collection = knowledge
        .resolve(&rag.collection, None)
        .map_err(|e| match e {
            KnowError::NotFound(_) => failed(KnowError::NotFound(format!(
                "route `{}` retrieves from collection `{}`, which does not exist: create it with `slmgate rag ingest --collection {} PATH...` or POST /v1/vector_stores",
                ex.req.model, rag.collection, rag.collection
            ))),
            e => failed(e),
        })?;
    let floor = rag
        .min_similarity
        .unwrap_or(knowledge.config().min_similarity);
    let (c, q, top_k) = (collection.clone(), question.clone(), rag.top_k);
    let hits = embedder
        .run("retrieval failed", move |m| {
            let v = embed_one(m, Representation::Contextual, &q)
                .map_err(|e| KnowError::Embed(e.to_string()))?;
            knowledge.search(&c, &q, &v, top_k, None, floor)
        })
        .await
        .ok_or_else(|| {
            failed(KnowError::Embed(
                "retrieval failed (the gateway log has the cause); the request is not answered without its documents".into(),
            ))
        })?;
    let before = ex.req.last_user_text().map(|t| t.len()).unwrap_or(0);
    let cited = augment(&mut ex.req, &hits, rag.max_context_tokens);
    let after = ex.req.last_user_text().map(|t| t.len()).unwrap_or(0);
    ex.facts.prompt_tokens += (after.saturating_sub(before) / 4) as u32;
    let m = &ex.st.metrics;
    m.retrievals
        .with_label_values(&[
            ex.req.model.as_str(),
            if cited.is_empty() { "none" } else { "hit" },
        ])
        .inc();
    ex.ticket.retrieval(RetrievalSummary {
        collection: collection.id.clone(),
        chunks: cited
            .iter()
            .map(|c| RetrievedChunk {
                id: c.chunk_id.clone(),
                file_id: c.file_id.clone(),
                score: c.score,
                similarity: c.similarity,
            })
            .collect(),
    });
    tracing::debug!(collection = %collection.id, retrieved = hits.len(), cited = cited.len(), "retrieval");
    ex.passages = hits
        .iter()
        .filter(|h| cited.iter().any(|c| c.chunk_id == h.chunk_id))
        .map(|h| format!("{}\n{}\n", h.heading, h.text))
        .collect();
    ex.question = question;
    ex.citations = cited;
    Ok(())
}
