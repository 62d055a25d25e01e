//! Splits a local model's output into text and tool calls as it streams: text is released
//! as soon as it cannot be the start of an opening tag; a call is released whole when its
//! closing tag arrives.

use serde_json::Value;

use super::tools::{CLOSE, OPEN};
use crate::wire::tools::ToolCall;

#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    Text(String),
    Call(ToolCall),
}

/// A call that is not `{"name": string, "arguments": object}`.
#[derive(Debug, Clone, PartialEq)]
pub struct BadCall(pub String);

#[derive(Debug, Default)]
pub struct ToolOutput {
    buf: String,
    in_call: bool,
    /// Calls released so far (text after a call that is only whitespace is dropped).
    calls: usize,
}

impl ToolOutput {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds generated text; returns what can be released now.
    pub fn push(&mut self, text: &str) -> Result<Vec<Piece>, BadCall> {
        self.buf.push_str(text);
        let mut out = Vec::new();
        loop {
            if self.in_call {
                let Some(end) = self.buf.find(CLOSE) else {
                    return Ok(out);
                };
                let body: String = self.buf[..end].to_string();
                self.buf.drain(..end + CLOSE.len());
                self.in_call = false;
                self.calls += 1;
                out.push(Piece::Call(parse_call(&body)?));
            } else if let Some(start) = self.buf.find(OPEN) {
                let before: String = self.buf[..start].to_string();
                self.buf.drain(..start + OPEN.len());
                self.in_call = true;
                self.text(&mut out, before);
            } else {
                // Keep back a tail that could still grow into the opening tag.
                let keep = partial_prefix(&self.buf, OPEN);
                let cut = self.buf.len() - keep;
                let released: String = self.buf[..cut].to_string();
                self.buf.drain(..cut);
                self.text(&mut out, released);
                return Ok(out);
            }
        }
    }

    /// The end of the output: held text is released. An unclosed call is an error, unless
    /// calls were made before it (a cut-off extra call is dropped: the answer is the calls).
    pub fn finish(&mut self) -> Result<Vec<Piece>, BadCall> {
        if self.in_call && self.calls > 0 {
            tracing::debug!(held = self.buf.len(), "dropping a cut-off extra tool call");
            self.buf.clear();
            self.in_call = false;
        }
        if self.in_call {
            return Err(BadCall(format!(
                "the output ended inside a tool call: {OPEN}{}",
                self.buf
            )));
        }
        let mut out = Vec::new();
        let rest = std::mem::take(&mut self.buf);
        self.text(&mut out, rest);
        Ok(out)
    }

    fn text(&self, out: &mut Vec<Piece>, t: String) {
        if t.is_empty() || (self.calls > 0 && t.trim().is_empty()) {
            return;
        }
        out.push(Piece::Text(t));
    }
}

/// The length of the longest suffix of `s` that is a proper prefix of `tag`.
fn partial_prefix(s: &str, tag: &str) -> usize {
    (1..tag.len().min(s.len() + 1))
        .rev()
        .find(|&n| s.is_char_boundary(s.len() - n) && tag.starts_with(&s[s.len() - n..]))
        .unwrap_or(0)
}

fn parse_call(body: &str) -> Result<ToolCall, BadCall> {
    let v: Value = serde_json::from_str(body.trim())
        .map_err(|e| BadCall(format!("a tool call is not JSON ({e}): {}", body.trim())))?;
    let name = v
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| BadCall(format!("a tool call has no name: {v}")))?;
    let args = v
        .get("arguments")
        .filter(|a| a.is_object())
        .ok_or_else(|| BadCall(format!("a tool call's arguments are not an object: {v}")))?;
    Ok(ToolCall::new(name, args))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(pieces: &[&str]) -> Vec<Piece> {
        let mut p = ToolOutput::new();
        let mut out = Vec::new();
        for s in pieces {
            out.extend(p.push(s).unwrap());
        }
        out.extend(p.finish().unwrap());
        out
    }

    #[test]
    fn text_then_calls_split_over_tokens() {
        let out = run(&[
            "Let me check.\n<tool",
            "_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Pa",
            "ris\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_",
            "call>",
        ]);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0], Piece::Text("Let me check.\n".into()));
        let Piece::Call(c) = &out[1] else { panic!() };
        assert_eq!(c.function.name, "get_weather");
        assert_eq!(c.arguments_value(), json!({"city": "Paris"}));
        assert!(c.id.starts_with("call_"));
        let Piece::Call(c) = &out[2] else { panic!() };
        assert_eq!(c.function.name, "get_time");
    }

    #[test]
    fn text_is_released_unless_it_may_open_a_tag() {
        let mut p = ToolOutput::new();
        assert_eq!(p.push("a <").unwrap(), vec![Piece::Text("a ".into())]);
        assert_eq!(p.push("b").unwrap(), vec![Piece::Text("<b".into())]);
        assert_eq!(p.push("é<tool").unwrap(), vec![Piece::Text("é".into())]);
        assert_eq!(p.finish().unwrap(), vec![Piece::Text("<tool".into())]);
    }

    #[test]
    fn broken_calls_are_errors() {
        let mut p = ToolOutput::new();
        assert!(p.push("<tool_call>{\"name\": \"f\"}</tool_call>").is_err());
        let mut p = ToolOutput::new();
        p.push("<tool_call>{\"name\": \"f\", \"argu").unwrap();
        assert!(p.finish().is_err());
    }

    #[test]
    fn a_cut_off_extra_call_is_dropped() {
        let mut p = ToolOutput::new();
        let out = p
            .push("<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call>\n<tool_call>{\"na")
            .unwrap();
        assert!(matches!(&out[..], [Piece::Call(_)]));
        assert_eq!(p.finish().unwrap(), vec![]);
    }
}
