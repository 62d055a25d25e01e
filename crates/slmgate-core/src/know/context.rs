//! Retrieved chunks into the prompt: numbered `[1] (file > heading)` passages, as many as fit
//! the route's token budget (estimated as characters / 4, the same estimate routing uses),
//! put into the last user message before the instruction and the question, where the small
//! models we serve read them most reliably. What went in becomes the answer's citations.

use serde::{Deserialize, Serialize};

use super::service::Hit;
use crate::wire::openai::{ChatRequest, Content};

/// A passage the answer was given, as the response cites it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Citation {
    /// The `[n]` label it had in the prompt.
    pub index: usize,
    pub chunk_id: String,
    pub file_id: String,
    pub filename: String,
    pub heading: String,
    pub score: f32,
    pub similarity: f32,
}

/// Context first, then the instruction next to the question: the order a 135M model follows
/// best (one passage, six reference questions: 5 right so, 4 with a "say you do not know"
/// clause added; with the instruction first it got the one question tried wrong).
const INSTRUCTION: &str = "Answer the question from the context above.";

/// Puts the hits that fit `max_tokens` into the request's last user message; returns the
/// ones that went in.
pub fn augment(req: &mut ChatRequest, hits: &[Hit], max_tokens: usize) -> Vec<Citation> {
    let budget = max_tokens.saturating_mul(4);
    let mut context = String::new();
    let mut cited = Vec::new();
    for h in hits {
        let label = if h.heading.is_empty() {
            h.filename.clone()
        } else {
            format!("{} > {}", h.filename, h.heading)
        };
        let passage = format!("[{}] ({label})\n{}\n\n", cited.len() + 1, h.text);
        if context.len() + passage.len() > budget {
            continue;
        }
        context.push_str(&passage);
        cited.push(Citation {
            index: cited.len() + 1,
            chunk_id: h.chunk_id.clone(),
            file_id: h.file_id.clone(),
            filename: h.filename.clone(),
            heading: h.heading.clone(),
            score: h.score,
            similarity: h.similarity,
        });
    }
    if cited.is_empty() {
        return cited;
    }
    let Some(m) = req.messages.iter_mut().rev().find(|m| m.role == "user") else {
        return Vec::new();
    };
    let question = m
        .content
        .as_ref()
        .and_then(|c| c.as_text())
        .unwrap_or_default();
    m.content = Some(Content::Text(format!(
        "Context:\n{context}{INSTRUCTION}\nQuestion: {question}"
    )));
    cited
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::openai::Message;

    fn hit(id: &str, text: &str) -> Hit {
        Hit {
            chunk_id: id.into(),
            file_id: "f".into(),
            filename: "guide.md".into(),
            heading: "Setup".into(),
            text: text.into(),
            score: 0.03,
            similarity: 0.5,
            attributes: serde_json::Value::Null,
        }
    }

    #[test]
    fn passages_fit_the_budget_and_precede_the_question() {
        let mut req: ChatRequest = serde_json::from_value(serde_json::json!({
            "model": "m", "messages": [{"role": "user", "content": "Where is the file?"}]
        }))
        .unwrap();
        let long = "word ".repeat(400);
        let hits = [
            hit("a", "It is in /etc/x."),
            hit("b", &long),
            hit("c", "Also /opt."),
        ];
        let cited = augment(&mut req, &hits, 100);
        assert_eq!(
            cited
                .iter()
                .map(|c| c.chunk_id.as_str())
                .collect::<Vec<_>>(),
            ["a", "c"]
        );
        assert_eq!(cited[1].index, 2);
        let text = req.messages[0].content.as_ref().unwrap().as_text().unwrap();
        assert!(
            text.contains("[1] (guide.md > Setup)\nIt is in /etc/x."),
            "{text}"
        );
        assert!(text.contains("[2] (guide.md > Setup)\nAlso /opt."));
        assert!(text.starts_with("Context:\n[1]"));
        assert!(text.ends_with("above.\nQuestion: Where is the file?"));
        let mut untouched = ChatRequest {
            messages: vec![Message::text("user", "q")],
            ..req.clone()
        };
        assert!(augment(&mut untouched, &[], 100).is_empty());
        assert_eq!(
            untouched.messages[0]
                .content
                .as_ref()
                .unwrap()
                .as_text()
                .unwrap(),
            "q"
        );
    }
}
