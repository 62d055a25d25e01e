//! The OpenAI objects: `file`, `vector_store`, `vector_store.file`, search results, lists.

use serde_json::{json, Value};

use crate::know::{Collection, DocFile, Hit, Upload};

pub fn file(u: &Upload) -> Value {
    json!({
        "id": u.id,
        "object": "file",
        "bytes": u.bytes,
        "created_at": u.created_s,
        "filename": u.filename,
        "purpose": u.purpose,
        "status": "processed",
        "status_details": null,
    })
}

pub fn vector_store(c: &Collection, files: &[DocFile]) -> Value {
    let bytes: usize = files.iter().map(|f| f.bytes).sum();
    json!({
        "id": c.id,
        "object": "vector_store",
        "created_at": c.created_s,
        "name": c.name,
        "usage_bytes": bytes,
        "file_counts": {
            "in_progress": 0, "completed": files.len(), "failed": 0, "cancelled": 0,
            "total": files.len()
        },
        "status": "completed",
        "expires_after": null,
        "expires_at": null,
        "last_active_at": c.created_s,
        "metadata": if c.metadata.is_object() { c.metadata.clone() } else { json!({}) },
    })
}

pub fn vector_store_file(c: &Collection, f: &DocFile, words: usize, overlap: usize) -> Value {
    json!({
        "id": f.file_id,
        "object": "vector_store.file",
        "usage_bytes": f.bytes,
        "created_at": f.created_s,
        "vector_store_id": c.id,
        "status": "completed",
        "last_error": null,
        "attributes": if f.attributes.is_object() { f.attributes.clone() } else { json!({}) },
        "chunking_strategy": {
            "type": "static",
            "static": {
                "max_chunk_size_tokens": words * 4 / 3,
                "chunk_overlap_tokens": overlap * 4 / 3
            }
        },
        // slmgate's own: how the file was cut.
        "filename": f.filename,
        "chunks": f.chunks,
    })
}

pub fn search_result(h: &Hit) -> Value {
    json!({
        "file_id": h.file_id,
        "filename": h.filename,
        "score": h.score,
        "attributes": if h.attributes.is_object() { h.attributes.clone() } else { json!({}) },
        "content": [{"type": "text", "text": h.text}],
        // slmgate's own: the chunk and its place.
        "chunk_id": h.chunk_id,
        "heading": h.heading,
        "similarity": h.similarity,
    })
}

/// A list page holding everything (`has_more` false).
pub fn list(data: Vec<Value>) -> Value {
    let first = data.first().and_then(|v| v.get("id")).cloned();
    let last = data.last().and_then(|v| v.get("id")).cloned();
    json!({
        "object": "list",
        "data": data,
        "first_id": first,
        "last_id": last,
        "has_more": false,
    })
}

pub fn deleted(id: &str, object: &str) -> Value {
    json!({"id": id, "object": object, "deleted": true})
}
