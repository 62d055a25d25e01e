//! OpenAI Responses API (`POST /v1/responses`): the request as canonical messages, the
//! answer as a `response` object with `message` and `function_call` output items, and the
//! stream as the official typed events (`response.created` … `response.completed`).

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::invalid::InvalidRequest;
use super::openai::{
    ChatChunk, ChatRequest, ChatResponse, Content, JsonSchemaFormat, Message, ResponseFormat,
};
use super::tools::{FunctionCall, FunctionDef, Tool, ToolCall, ToolChoice};

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

/// `resp_` plus 32 hex characters.
pub fn response_id() -> String {
    format!("resp_{}", uuid::Uuid::new_v4().simple())
}

fn item_id(prefix: &str) -> String {
    format!(
        "{prefix}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..24]
    )
}

/// What the response object echoes of its request.
pub struct Echo {
    pub id: String,
    pub created_at: u64,
    pub model: String,
    pub instructions: Option<String>,
    pub tools: Value,
    pub tool_choice: Value,
    pub parallel_tool_calls: bool,
    pub previous_response_id: Option<String>,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub max_output_tokens: Option<u32>,
    pub metadata: Value,
    pub store: bool,
    pub text: Value,
}

impl Echo {
    pub fn of(req: &ResponsesRequest, id: String, created_at: u64) -> Self {
        Self {
            id,
            created_at,
            model: req.model.clone(),
            instructions: req.instructions.clone(),
            tools: json!(req.tools.clone().unwrap_or_default()),
            tool_choice: req.tool_choice.clone().unwrap_or(json!("auto")),
            parallel_tool_calls: req.parallel_tool_calls.unwrap_or(true),
            previous_response_id: req.previous_response_id.clone(),
            temperature: req.temperature,
            top_p: req.top_p,
            max_output_tokens: req.max_output_tokens,
            metadata: req.metadata.clone().unwrap_or(json!({})),
            store: req.stores(),
            text: req
                .text
                .clone()
                .unwrap_or(json!({"format": {"type": "text"}})),
        }
    }

    /// The response object with these output items, status and usage.
    pub fn response(
        &self,
        status: &str,
        output: Vec<Value>,
        usage: Option<Value>,
        incomplete: Option<&str>,
    ) -> Value {
        json!({
            "id": self.id, "object": "response", "created_at": self.created_at,
            "status": status, "error": null,
            "incomplete_details": incomplete.map(|r| json!({"reason": r})),
            "instructions": self.instructions, "max_output_tokens": self.max_output_tokens,
            "model": self.model, "output": output, "parallel_tool_calls": self.parallel_tool_calls,
            "previous_response_id": self.previous_response_id, "reasoning": {"effort": null, "summary": null},
            "store": self.store, "temperature": self.temperature, "text": self.text,
            "tool_choice": self.tool_choice, "tools": self.tools, "top_p": self.top_p,
            "truncation": "disabled", "usage": usage, "user": null, "metadata": self.metadata,
        })
    }
}

fn usage_of(u: &super::openai::Usage) -> Value {
    json!({"input_tokens": u.prompt_tokens, "input_tokens_details": {"cached_tokens": u.cached_tokens()},
           "output_tokens": u.completion_tokens, "output_tokens_details": {"reasoning_tokens": 0},
           "total_tokens": u.prompt_tokens + u.completion_tokens})
}

fn message_item(id: &str, text: &str, status: &str) -> Value {
    json!({"type": "message", "id": id, "status": status, "role": "assistant",
           "content": [{"type": "output_text", "text": text, "annotations": []}]})
}

fn call_item(id: &str, call: &ToolCall, status: &str) -> Value {
    json!({"type": "function_call", "id": id, "call_id": call.id, "name": call.function.name,
           "arguments": call.function.arguments, "status": status})
}

/// A whole canonical answer as a response object.
pub fn from_chat(echo: &Echo, resp: &ChatResponse) -> Value {
    let choice = resp.choices.first();
    let text = choice
        .and_then(|c| c.message.content.as_deref())
        .unwrap_or("");
    let calls = choice
        .and_then(|c| c.message.tool_calls.as_deref())
        .unwrap_or(&[]);
    let truncated = choice.and_then(|c| c.finish_reason.as_deref()) == Some("length");
    let mut output = Vec::new();
    if !text.is_empty() || calls.is_empty() {
        output.push(message_item(
            &item_id("msg"),
            text,
            if truncated { "incomplete" } else { "completed" },
        ));
    }
    output.extend(
        calls
            .iter()
            .map(|c| call_item(&item_id("fc"), c, "completed")),
    );
    let (status, incomplete) = if truncated {
        ("incomplete", Some("max_output_tokens"))
    } else {
        ("completed", None)
    };
    echo.response(
        status,
        output,
        resp.usage.as_ref().map(usage_of),
        incomplete,
    )
}

/// The assistant turn a response adds to its conversation (what a later
/// `previous_response_id` continues from).
pub fn assistant_turn(resp: &Value) -> Option<Message> {
    let mut text = String::new();
    let mut calls = Vec::new();
    for item in resp["output"].as_array()? {
        match item["type"].as_str() {
            Some("message") => {
                for p in item["content"].as_array().into_iter().flatten() {
                    text.push_str(p["text"].as_str().unwrap_or(""));
                }
            }
            Some("function_call") => calls.push(ToolCall {
                id: item["call_id"].as_str().unwrap_or_default().into(),
                kind: "function".into(),
                function: FunctionCall {
                    name: item["name"].as_str().unwrap_or_default().into(),
                    arguments: item["arguments"].as_str().unwrap_or("{}").into(),
                },
            }),
            _ => {}
        }
    }
    let mut m = Message::text("assistant", text);
    if !calls.is_empty() {
        if m.content
            .as_ref()
            .and_then(Content::as_text)
            .is_some_and(|t| t.is_empty())
        {
            m.content = None;
        }
        m.tool_calls = Some(calls);
    }
    Some(m)
}

/// The typed events of a streamed response, built from canonical chunks. Every event carries
/// its `sequence_number`; the last is `response.completed` (or `response.incomplete`) with
/// the whole response object.
pub struct StreamWriter {
    echo: Echo,
    seq: u64,
    output: Vec<Value>,
    open: Option<Open>,
    finish: Option<String>,
    usage: Option<Value>,
}

enum Open {
    Text {
        id: String,
        text: String,
    },
    Call {
        id: String,
        index: u32,
        call: ToolCall,
    },
}

impl StreamWriter {
    pub fn new(echo: Echo) -> Self {
        Self {
            echo,
            seq: 0,
            output: Vec::new(),
            open: None,
            finish: None,
            usage: None,
        }
    }

    fn event(&mut self, kind: &'static str, mut body: Value) -> (&'static str, Value) {
        body["type"] = json!(kind);
        body["sequence_number"] = json!(self.seq);
        self.seq += 1;
        (kind, body)
    }

    pub fn start(&mut self) -> Vec<(&'static str, Value)> {
        let r = self.echo.response("in_progress", Vec::new(), None, None);
        vec![
            self.event("response.created", json!({"response": r.clone()})),
            self.event("response.in_progress", json!({"response": r})),
        ]
    }

    pub fn chunk(&mut self, chunk: &ChatChunk) -> Vec<(&'static str, Value)> {
        let mut out = Vec::new();
        if let Some(u) = &chunk.usage {
            self.usage = Some(usage_of(u));
        }
        for c in &chunk.choices {
            if let Some(t) = c.delta.content.as_deref().filter(|t| !t.is_empty()) {
                if !matches!(self.open, Some(Open::Text { .. })) {
                    self.close(&mut out);
                    let id = item_id("msg");
                    let oi = self.output.len();
                    let e = self.event("response.output_item.added", json!({"output_index": oi,
                        "item": {"type": "message", "id": id, "status": "in_progress", "role": "assistant", "content": []}}));
                    out.push(e);
                    let e = self.event("response.content_part.added", json!({"item_id": id, "output_index": oi,
                        "content_index": 0, "part": {"type": "output_text", "text": "", "annotations": []}}));
                    out.push(e);
                    self.open = Some(Open::Text {
                        id,
                        text: String::new(),
                    });
                }
                let oi = self.output.len();
                if let Some(Open::Text { id, text }) = &mut self.open {
                    text.push_str(t);
                    let body = json!({"item_id": id, "output_index": oi, "content_index": 0, "delta": t, "logprobs": []});
                    out.push(self.event("response.output_text.delta", body));
                }
            }
            for d in c.delta.tool_calls.iter().flatten() {
                let same =
                    matches!(&self.open, Some(Open::Call { index, .. }) if *index == d.index);
                if !same {
                    self.close(&mut out);
                    let f = d.function.as_ref();
                    let call = ToolCall {
                        id: d.id.clone().unwrap_or_default(),
                        kind: "function".into(),
                        function: FunctionCall {
                            name: f.and_then(|f| f.name.clone()).unwrap_or_default(),
                            arguments: String::new(),
                        },
                    };
                    let id = item_id("fc");
                    let oi = self.output.len();
                    let e = self.event(
                        "response.output_item.added",
                        json!({"output_index": oi, "item": call_item(&id, &call, "in_progress")}),
                    );
                    out.push(e);
                    self.open = Some(Open::Call {
                        id,
                        index: d.index,
                        call,
                    });
                }
                let oi = self.output.len();
                let args = d
                    .function
                    .as_ref()
                    .and_then(|f| f.arguments.as_deref())
                    .unwrap_or("");
                if let Some(Open::Call { id, call, .. }) = &mut self.open {
                    if !args.is_empty() {
                        call.function.arguments.push_str(args);
                        let body = json!({"item_id": id, "output_index": oi, "delta": args});
                        out.push(self.event("response.function_call_arguments.delta", body));
                    }
                }
            }
            if c.finish_reason.is_some() {
                self.finish = c.finish_reason.clone();
            }
        }
        out
    }

    fn close(&mut self, out: &mut Vec<(&'static str, Value)>) {
        let oi = self.output.len();
        match self.open.take() {
            None => {}
            Some(Open::Text { id, text }) => {
                let part = json!({"type": "output_text", "text": text, "annotations": []});
                let e = self.event("response.output_text.done",
                    json!({"item_id": id, "output_index": oi, "content_index": 0, "text": text, "logprobs": []}));
                out.push(e);
                let e = self.event(
                    "response.content_part.done",
                    json!({"item_id": id, "output_index": oi, "content_index": 0, "part": part}),
                );
                out.push(e);
                let item = message_item(&id, &text, "completed");
                out.push(self.event(
                    "response.output_item.done",
                    json!({"output_index": oi, "item": item.clone()}),
                ));
                self.output.push(item);
            }
            Some(Open::Call { id, call, .. }) => {
                let e = self.event("response.function_call_arguments.done",
                    json!({"item_id": id, "output_index": oi, "name": call.function.name, "arguments": call.function.arguments}));
                out.push(e);
                let item = call_item(&id, &call, "completed");
                out.push(self.event(
                    "response.output_item.done",
                    json!({"output_index": oi, "item": item.clone()}),
                ));
                self.output.push(item);
            }
        }
    }

    /// The closing events; returns them with the final response object (to store).
    pub fn end(&mut self) -> (Vec<(&'static str, Value)>, Value) {
        let mut out = Vec::new();
        self.close(&mut out);
        let truncated = self.finish.as_deref() == Some("length");
        let (status, incomplete, kind) = if truncated {
            (
                "incomplete",
                Some("max_output_tokens"),
                "response.incomplete",
            )
        } else {
            ("completed", None, "response.completed")
        };
        let r = self.echo.response(
            status,
            std::mem::take(&mut self.output),
            self.usage.clone(),
            incomplete,
        );
        out.push(self.event(kind, json!({"response": r.clone()})));
        (out, r)
    }

    /// A failure after the stream started: `response.failed` with the error.
    pub fn failed(&mut self, code: &str, message: &str) -> (&'static str, Value) {
        let mut r = self.echo.response(
            "failed",
            std::mem::take(&mut self.output),
            self.usage.clone(),
            None,
        );
        r["error"] = json!({"code": code, "message": message});
        self.event("response.failed", json!({"response": r}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(v: Value) -> ResponsesRequest {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn input_items_become_messages() {
        let r = req(json!({"model": "m", "instructions": "Be brief.", "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "weather?"}]},
            {"type": "function_call", "call_id": "c1", "name": "w", "arguments": "{\"city\":\"Oslo\"}"},
            {"type": "function_call", "call_id": "c2", "name": "w", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "sunny"}],
            "tools": [{"type": "function", "name": "w", "parameters": {"type": "object"}}],
            "tool_choice": {"type": "function", "name": "w"}, "max_output_tokens": 9}));
        let input = r.input_messages().unwrap();
        let c = r.to_chat(Vec::new(), input).unwrap();
        assert_eq!(c.messages.len(), 4);
        assert_eq!(c.messages[0].role, "system");
        assert_eq!(c.messages[2].tool_calls.as_ref().unwrap().len(), 2);
        assert_eq!(c.messages[3].tool_call_id.as_deref(), Some("c1"));
        assert_eq!(c.tool_list()[0].function.name, "w");
        assert_eq!(c.tool_choice, Some(ToolChoice::named("w")));
        assert_eq!(c.max_output_tokens(), Some(9));
    }

    #[test]
    fn bad_items_name_their_index() {
        let r = req(
            json!({"model": "m", "input": [{"role": "user", "content": "a"}, {"type": "web_search_call"}]}),
        );
        assert_eq!(
            r.input_messages().unwrap_err().param.as_deref(),
            Some("input[1]")
        );
        let r = req(json!({"model": "m"}));
        assert_eq!(
            r.input_messages().unwrap_err().param.as_deref(),
            Some("input")
        );
    }

    #[test]
    fn stream_events_in_order() {
        let echo = Echo::of(
            &req(json!({"model": "auto", "input": "hi"})),
            "resp_1".into(),
            1,
        );
        let mut w = StreamWriter::new(echo);
        let mut names: Vec<&str> = w.start().iter().map(|e| e.0).collect();
        let ch = ChatChunk::new("i", 0, "m").delta(
            super::super::openai::Delta::content("Hel"),
            None,
            None,
        );
        names.extend(w.chunk(&ch).iter().map(|e| e.0));
        let ch = ChatChunk::new("i", 0, "m").delta(
            super::super::openai::Delta::content("lo"),
            None,
            Some("stop"),
        );
        names.extend(w.chunk(&ch).iter().map(|e| e.0));
        let (end, r) = w.end();
        names.extend(end.iter().map(|e| e.0));
        assert_eq!(
            names,
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.completed"
            ]
        );
        assert_eq!(r["output"][0]["content"][0]["text"], "Hello");
        assert_eq!(end.last().unwrap().1["sequence_number"], 9);
        assert_eq!(
            assistant_turn(&r)
                .unwrap()
                .content
                .unwrap()
                .as_text()
                .unwrap(),
            "Hello"
        );
    }
}
