//! Gemini `generateContent` types and their translation to and from the canonical shape.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use serde_json::json;

use super::openai::{self, ChatRequest, ChatResponse, ResponseFormat};
use super::tools::{FunctionCall, ToolCall, ToolChoice};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateRequest {
    pub contents: Vec<GContent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_instruction: Option<GContent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation_config: Option<GenerationConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_config: Option<Value>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct GContent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default)]
    pub parts: Vec<Part>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Part {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerationConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_sequences: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate_count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_mime_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_json_schema: Option<Value>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateResponse {
    #[serde(default)]
    pub candidates: Vec<Candidate>,
    #[serde(default)]
    pub usage_metadata: Option<UsageMetadata>,
    #[serde(default)]
    pub model_version: Option<String>,
    #[serde(default)]
    pub response_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    #[serde(default)]
    pub content: Option<GContent>,
    #[serde(default)]
    pub finish_reason: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageMetadata {
    #[serde(default)]
    pub prompt_token_count: u32,
    #[serde(default)]
    pub candidates_token_count: u32,
    #[serde(default)]
    pub total_token_count: u32,
}

fn text_part(t: String) -> Part {
    Part {
        text: Some(t),
        extra: Map::new(),
    }
}

fn part(key: &str, v: Value) -> Part {
    let mut extra = Map::new();
    extra.insert(key.into(), v);
    Part { text: None, extra }
}

/// `tools` → one `functionDeclarations` tool; `tool_choice` → `toolConfig`.
fn tools_of(req: &ChatRequest) -> (Option<Vec<Value>>, Option<Value>) {
    let tools = req.tool_list();
    if tools.is_empty() {
        return (None, None);
    }
    let decls: Vec<Value> = tools
        .iter()
        .map(|t| {
            let mut d = json!({"name": t.function.name, "parametersJsonSchema": t.function.parameters_schema()});
            if let Some(desc) = &t.function.description {
                d["description"] = json!(desc);
            }
            d
        })
        .collect();
    let config = req.tool_choice.as_ref().map(|c| match c {
        ToolChoice::Mode(m) if m == "required" => json!({"mode": "ANY"}),
        ToolChoice::Mode(m) if m == "none" => json!({"mode": "NONE"}),
        ToolChoice::Mode(_) => json!({"mode": "AUTO"}),
        ToolChoice::Named(n) => json!({"mode": "ANY", "allowedFunctionNames": [n.function.name]}),
    });
    (
        Some(vec![json!({"functionDeclarations": decls})]),
        config.map(|c| json!({"functionCallingConfig": c})),
    )
}

impl GenerateRequest {
    pub fn from_openai(req: &ChatRequest) -> Self {
        let mut system = Vec::new();
        let mut contents = Vec::new();
        // A function response names its function; the canonical wire names the call.
        let mut names = std::collections::HashMap::new();
        for m in &req.messages {
            let text = m
                .content
                .as_ref()
                .and_then(|c| c.as_text())
                .unwrap_or_default();
            match m.role.as_str() {
                "system" | "developer" => system.push(text),
                "assistant" => {
                    let mut parts = Vec::new();
                    if !text.is_empty() || m.tool_calls.is_none() {
                        parts.push(text_part(text));
                    }
                    for c in m.tool_calls.iter().flatten() {
                        names.insert(c.id.clone(), c.function.name.clone());
                        parts.push(part(
                            "functionCall",
                            json!({"name": c.function.name, "args": c.arguments_value()}),
                        ));
                    }
                    contents.push(GContent {
                        role: Some("model".into()),
                        parts,
                    });
                }
                "tool" | "function" => {
                    let id = m.tool_call_id.clone().unwrap_or_default();
                    let name = names.get(&id).cloned().unwrap_or(id);
                    contents.push(GContent {
                        role: Some("user".into()),
                        parts: vec![part(
                            "functionResponse",
                            json!({"name": name, "response": {"content": text}}),
                        )],
                    });
                }
                _ => contents.push(GContent {
                    role: Some("user".into()),
                    parts: vec![text_part(text)],
                }),
            }
        }
        let (tools, tool_config) = tools_of(req);
        let (mime, schema) = match &req.response_format {
            Some(ResponseFormat::JsonObject) => (Some("application/json".to_string()), None),
            Some(ResponseFormat::JsonSchema { json_schema }) => (
                Some("application/json".to_string()),
                json_schema.schema.clone(),
            ),
            _ => (None, None),
        };
        Self {
            contents,
            system_instruction: (!system.is_empty()).then(|| GContent {
                role: None,
                parts: vec![text_part(system.join("\n\n"))],
            }),
            generation_config: Some(GenerationConfig {
                temperature: req.temperature,
                top_p: req.top_p,
                top_k: req.top_k,
                max_output_tokens: req.max_output_tokens(),
                stop_sequences: (!req.stop_list().is_empty()).then(|| req.stop_list()),
                candidate_count: None,
                seed: req.seed,
                response_mime_type: mime,
                response_json_schema: schema,
            }),
            tools,
            tool_config,
        }
    }
}

/// Gemini finish reason → OpenAI's.
pub fn finish_reason(r: Option<&str>) -> Option<String> {
    r.map(|r| match r {
        "MAX_TOKENS" => "length".to_string(),
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" => {
            "content_filter".to_string()
        }
        _ => "stop".to_string(),
    })
}

impl GenerateResponse {
    pub fn text(&self) -> String {
        self.candidates
            .first()
            .and_then(|c| c.content.as_ref())
            .map(|c| c.parts.iter().filter_map(|p| p.text.clone()).collect())
            .unwrap_or_default()
    }

    /// The first candidate's `functionCall` parts as canonical calls.
    pub fn calls(&self) -> Vec<ToolCall> {
        self.candidates
            .first()
            .and_then(|c| c.content.as_ref())
            .map(|c| {
                c.parts
                    .iter()
                    .filter_map(|p| p.extra.get("functionCall"))
                    .map(|f| ToolCall {
                        id: super::tools::call_id(),
                        kind: "function".into(),
                        function: FunctionCall {
                            name: f["name"].as_str().unwrap_or_default().to_string(),
                            arguments: f.get("args").cloned().unwrap_or(json!({})).to_string(),
                        },
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn to_openai(&self, id: &str, model: &str) -> ChatResponse {
        let usage = self.usage_metadata.unwrap_or_default();
        let calls = self.calls();
        let mut message = openai::ResponseMessage::text(self.text());
        let finish = if calls.is_empty() {
            finish_reason(
                self.candidates
                    .first()
                    .and_then(|c| c.finish_reason.as_deref()),
            )
            .or(Some("stop".into()))
        } else {
            message.tool_calls = Some(calls);
            Some("tool_calls".into())
        };
        ChatResponse {
            id: id.to_string(),
            object: "chat.completion".into(),
            created: openai::now_secs(),
            model: self
                .model_version
                .clone()
                .unwrap_or_else(|| model.to_string()),
            choices: vec![openai::Choice {
                index: 0,
                message,
                logprobs: None,
                finish_reason: finish,
                extra: Map::new(),
            }],
            usage: Some(openai::Usage::new(
                usage.prompt_token_count,
                usage.candidates_token_count,
            )),
            extra: Map::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn openai_to_gemini() {
        let r: ChatRequest = serde_json::from_value(json!({"model": "m", "max_completion_tokens": 9, "top_p": 0.5,
            "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}},
            "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "u"},
                         {"role": "assistant", "content": "a"}]})).unwrap();
        let v = serde_json::to_value(GenerateRequest::from_openai(&r)).unwrap();
        assert_eq!(v["systemInstruction"]["parts"][0]["text"], "S");
        assert_eq!(
            v["contents"],
            json!([{"role": "user", "parts": [{"text": "u"}]}, {"role": "model", "parts": [{"text": "a"}]}])
        );
        assert_eq!(v["generationConfig"]["maxOutputTokens"], 9);
        assert_eq!(
            v["generationConfig"]["responseMimeType"],
            "application/json"
        );
        assert_eq!(
            v["generationConfig"]["responseJsonSchema"],
            json!({"type": "object"})
        );
    }

    #[test]
    fn gemini_response_to_openai() {
        let g: GenerateResponse = serde_json::from_value(json!({
            "candidates": [{"content": {"parts": [{"text": "a"}, {"text": "b"}]}, "finishReason": "MAX_TOKENS"}],
            "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2}})).unwrap();
        let o = g.to_openai("id", "gemini");
        assert_eq!(o.choices[0].message.content.as_deref(), Some("ab"));
        assert_eq!(o.choices[0].finish_reason.as_deref(), Some("length"));
        assert_eq!(o.usage.unwrap().prompt_tokens, 3);
        assert_eq!(
            finish_reason(Some("SAFETY")).as_deref(),
            Some("content_filter")
        );
    }
}
