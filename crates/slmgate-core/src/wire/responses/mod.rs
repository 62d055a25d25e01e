//! OpenAI Responses API (`POST /v1/responses`): the request as canonical messages, the
//! answer as a `response` object with `message` and `function_call` output items, and the
//! stream as the official typed events (`response.created` … `response.completed`).

mod output;
mod stream;

pub use output::{assistant_turn, from_chat, response_id, Echo};
pub use stream::StreamWriter;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::wire::invalid::InvalidRequest;
use crate::wire::openai::{ChatRequest, JsonSchemaFormat, Message, ResponseFormat};
use crate::wire::tools::{FunctionCall, FunctionDef, Tool, ToolCall, ToolChoice};

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ResponsesRequest {
    pub model: String,
    #[serde(default)]
    pub input: Option<Input>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<RTool>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Keep the response for `previous_response_id` and `GET` (default true, as OpenAI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_response_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Input {
    Text(String),
    Items(Vec<Value>),
}

/// A Responses function tool: flat, `{type, name, description?, parameters?, strict?}`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct RTool {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

impl ResponsesRequest {
    pub fn is_stream(&self) -> bool {
        self.stream.unwrap_or(false)
    }

    pub fn stores(&self) -> bool {
        self.store.unwrap_or(true)
    }

    /// This request's own turns (its `input`), as canonical messages.
    pub fn input_messages(&self) -> Result<Vec<Message>, InvalidRequest> {
        match &self.input {
            None => Err(InvalidRequest::param("input", "`input` is required")),
            Some(Input::Text(t)) => Ok(vec![Message::text("user", t.clone())]),
            Some(Input::Items(items)) => {
                let mut out: Vec<Message> = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    item_to_message(item, &mut out)
                        .map_err(|m| InvalidRequest::param(&format!("input[{i}]"), m))?;
                }
                Ok(out)
            }
        }
    }

    /// The canonical request: `instructions` (this request's only: they are not carried
    /// over from a previous response), the stored conversation, then this input.
    pub fn to_chat(
        &self,
        history: Vec<Message>,
        input: Vec<Message>,
    ) -> Result<ChatRequest, InvalidRequest> {
        let mut messages = Vec::with_capacity(history.len() + input.len() + 1);
        if let Some(i) = self.instructions.as_deref().filter(|i| !i.is_empty()) {
            messages.push(Message::text("system", i));
        }
        messages.extend(history);
        messages.extend(input);
        let mut req = ChatRequest::new(self.model.clone(), messages);
        req.stream = self.stream;
        req.max_completion_tokens = self.max_output_tokens;
        req.temperature = self.temperature;
        req.top_p = self.top_p;
        req.parallel_tool_calls = self.parallel_tool_calls;
        if let Some(tools) = &self.tools {
            let mut out = Vec::with_capacity(tools.len());
            for (i, t) in tools.iter().enumerate() {
                if t.kind != "function" {
                    return Err(InvalidRequest::param(
                        &format!("tools[{i}].type"),
                        format!("only `function` tools are supported here, got `{}`", t.kind),
                    ));
                }
                out.push(Tool {
                    kind: "function".into(),
                    function: FunctionDef {
                        name: t.name.clone(),
                        description: t.description.clone(),
                        parameters: t.parameters.clone(),
                        strict: t.strict,
                    },
                });
            }
            req.tools = Some(out);
        }
        req.tool_choice = match &self.tool_choice {
            None => None,
            Some(Value::String(m)) => Some(ToolChoice::Mode(m.clone())),
            Some(Value::Object(o)) if o.get("type").and_then(Value::as_str) == Some("function") => {
                let name = o.get("name").and_then(Value::as_str).unwrap_or_default();
                Some(ToolChoice::named(name))
            }
            Some(_) => return Err(InvalidRequest::param(
                "tool_choice",
                "tool_choice must be none, auto, required or {\"type\": \"function\", \"name\"}",
            )),
        };
        req.response_format = self.text_format()?;
        if let Some(m) = &self.metadata {
            req.extra.insert("metadata".into(), m.clone());
        }
        if let Some(u) = &self.user {
            req.extra.insert("user".into(), json!(u));
        }
        Ok(req)
    }

    /// `text.format` → `response_format`.
    fn text_format(&self) -> Result<Option<ResponseFormat>, InvalidRequest> {
        let Some(f) = self.text.as_ref().and_then(|t| t.get("format")) else {
            return Ok(None);
        };
        Ok(match f.get("type").and_then(Value::as_str) {
            None | Some("text") => None,
            Some("json_object") => Some(ResponseFormat::JsonObject),
            Some("json_schema") => Some(ResponseFormat::JsonSchema {
                json_schema: JsonSchemaFormat {
                    name: f
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("output")
                        .into(),
                    schema: f.get("schema").cloned(),
                    strict: f.get("strict").and_then(Value::as_bool),
                    description: None,
                },
            }),
            Some(other) => {
                return Err(InvalidRequest::param(
                    "text.format.type",
                    format!("unknown text format `{other}`"),
                ))
            }
        })
    }
}

/// One input item: a message (`{role, content}`), a `function_call` the model made, or a
/// `function_call_output` the client sends back.
fn item_to_message(item: &Value, out: &mut Vec<Message>) -> Result<(), String> {
    let kind = item
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("message");
    match kind {
        "message" => {
            let role = item
                .get("role")
                .and_then(Value::as_str)
                .ok_or("a message needs a `role`")?;
            if !matches!(role, "user" | "assistant" | "system" | "developer") {
                return Err(format!("unknown role `{role}`"));
            }
            let text = match item.get("content") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Array(parts)) => {
                    let mut t = String::new();
                    for p in parts {
                        match p.get("type").and_then(Value::as_str) {
                            Some("input_text" | "output_text" | "text") => {
                                t.push_str(p.get("text").and_then(Value::as_str).unwrap_or(""))
                            }
                            Some(other) => {
                                return Err(format!(
                                    "content parts of type `{other}` are not supported"
                                ))
                            }
                            None => return Err("a content part needs a `type`".into()),
                        }
                    }
                    t
                }
                _ => return Err("a message needs `content`".into()),
            };
            out.push(Message::text(role, text));
        }
        "function_call" => {
            let call = ToolCall {
                id: str_of(item, "call_id")?,
                kind: "function".into(),
                function: FunctionCall {
                    name: str_of(item, "name")?,
                    arguments: item
                        .get("arguments")
                        .and_then(Value::as_str)
                        .unwrap_or("{}")
                        .to_string(),
                },
            };
            // Calls of one turn share one assistant message.
            match out.last_mut() {
                Some(m) if m.role == "assistant" && m.tool_calls.is_some() => {
                    m.tool_calls.get_or_insert_with(Vec::new).push(call)
                }
                _ => {
                    let mut m = Message::text("assistant", "");
                    m.content = None;
                    m.tool_calls = Some(vec![call]);
                    out.push(m);
                }
            }
        }
        "function_call_output" => {
            let output = match item.get("output") {
                Some(Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
                None => return Err("a function_call_output needs `output`".into()),
            };
            let mut m = Message::text("tool", output);
            m.tool_call_id = Some(str_of(item, "call_id")?);
            out.push(m);
        }
        other => return Err(format!("input items of type `{other}` are not supported")),
    }
    Ok(())
}

fn str_of(item: &Value, k: &str) -> Result<String, String> {
    item.get(k)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| {
            format!(
                "a `{}` item needs `{k}`",
                item["type"].as_str().unwrap_or("?")
            )
        })
}

#[cfg(test)]
mod tests;
