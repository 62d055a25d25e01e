//! Function tools on the canonical (OpenAI) wire: definitions, the choice of tool, the calls a
//! model makes, and the checks every deployment would make of them (a definition whose
//! parameters are not a JSON schema is a 400 naming the field, wherever it would run).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::invalid::InvalidRequest;

/// `tools[i]`: `{"type": "function", "function": {name, description?, parameters?, strict?}}`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct Tool {
    #[serde(rename = "type", default = "function_type")]
    pub kind: String,
    pub function: FunctionDef,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct FunctionDef {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A JSON schema of the arguments object; absent means "no arguments".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

impl FunctionDef {
    /// The arguments' schema, `{"type": "object"}` when none was given.
    pub fn parameters_schema(&self) -> Value {
        self.parameters
            .clone()
            .unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}}))
    }
}

pub fn function_type() -> String {
    "function".into()
}

/// `tool_choice`: `"none" | "auto" | "required"` or `{"type": "function", "function": {"name"}}`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
pub enum ToolChoice {
    Mode(String),
    Named(NamedChoice),
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct NamedChoice {
    #[serde(rename = "type", default = "function_type")]
    pub kind: String,
    pub function: NamedFunction,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct NamedFunction {
    pub name: String,
}

/// What the model must do with the tools, once the choice is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolMode {
    /// No tools, or `tool_choice: "none"`: answer in text.
    None,
    /// Answer or call, as the model decides.
    Auto,
    /// Call at least one of the tools.
    Required,
    /// Call this one.
    Named(String),
}

impl ToolChoice {
    pub fn named(name: &str) -> Self {
        ToolChoice::Named(NamedChoice {
            kind: function_type(),
            function: NamedFunction { name: name.into() },
        })
    }
}

/// One call in an assistant message: `{"id", "type": "function", "function": {name, arguments}}`
/// with `arguments` a JSON text (as OpenAI sends it).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct ToolCall {
    #[serde(default)]
    pub id: String,
    #[serde(rename = "type", default = "function_type")]
    pub kind: String,
    pub function: FunctionCall,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct FunctionCall {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub arguments: String,
}

impl ToolCall {
    pub fn new(name: &str, arguments: &Value) -> Self {
        Self {
            id: call_id(),
            kind: function_type(),
            function: FunctionCall {
                name: name.into(),
                arguments: arguments.to_string(),
            },
        }
    }

    /// The arguments as JSON (`{}` when empty or not JSON).
    pub fn arguments_value(&self) -> Value {
        if self.function.arguments.trim().is_empty() {
            return Value::Object(Map::new());
        }
        serde_json::from_str(&self.function.arguments).unwrap_or(Value::Object(Map::new()))
    }
}

/// A streamed fragment of a call: `delta.tool_calls[i]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct ToolCallDelta {
    #[serde(default)]
    pub index: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<FunctionCallDelta>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct FunctionCallDelta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<String>,
}

impl ToolCallDelta {
    /// A whole call as one fragment.
    pub fn whole(index: u32, call: &ToolCall) -> Self {
        Self {
            index,
            id: Some(call.id.clone()),
            kind: Some(function_type()),
            function: Some(FunctionCallDelta {
                name: Some(call.function.name.clone()),
                arguments: Some(call.function.arguments.clone()),
            }),
        }
    }
}

/// Folds streamed fragments into whole calls (by index, arguments appended).
#[derive(Debug, Default)]
pub struct ToolCallFold {
    calls: Vec<(u32, ToolCall)>,
}

impl ToolCallFold {
    pub fn push(&mut self, d: &ToolCallDelta) {
        let pos = match self.calls.iter().position(|(i, _)| *i == d.index) {
            Some(p) => p,
            None => {
                self.calls.push((
                    d.index,
                    ToolCall {
                        id: String::new(),
                        kind: function_type(),
                        function: FunctionCall {
                            name: String::new(),
                            arguments: String::new(),
                        },
                    },
                ));
                self.calls.len() - 1
            }
        };
        let call = &mut self.calls[pos].1;
        if let Some(id) = &d.id {
            call.id.clone_from(id);
        }
        if let Some(f) = &d.function {
            if let Some(n) = &f.name {
                call.function.name.push_str(n);
            }
            if let Some(a) = &f.arguments {
                call.function.arguments.push_str(a);
            }
        }
    }

    pub fn finish(mut self) -> Option<Vec<ToolCall>> {
        if self.calls.is_empty() {
            return None;
        }
        self.calls.sort_by_key(|(i, _)| *i);
        Some(self.calls.into_iter().map(|(_, c)| c).collect())
    }
}

/// `call_` plus 24 random hex characters.
pub fn call_id() -> String {
    format!("call_{}", &uuid::Uuid::new_v4().simple().to_string()[..24])
}

/// Function names OpenAI accepts: `^[a-zA-Z0-9_-]{1,64}$`.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Checks tool definitions and the choice among them; returns what the model must do.
pub fn check_tools(
    tools: Option<&[Tool]>,
    choice: Option<&ToolChoice>,
) -> Result<ToolMode, InvalidRequest> {
    check_definitions(tools.unwrap_or(&[]))?;
    tool_mode(tools, choice)
}

fn check_definitions(tools: &[Tool]) -> Result<(), InvalidRequest> {
    let mut seen = std::collections::HashSet::new();
    for (i, t) in tools.iter().enumerate() {
        if t.kind != "function" {
            return Err(InvalidRequest::param(
                &format!("tools[{i}].type"),
                format!("only `function` tools are supported, got `{}`", t.kind),
            ));
        }
        let f = &t.function;
        if !valid_name(&f.name) {
            return Err(InvalidRequest::param(
                &format!("tools[{i}].function.name"),
                format!(
                    "function names must match ^[a-zA-Z0-9_-]{{1,64}}$, got {:?}",
                    f.name
                ),
            ));
        }
        if !seen.insert(f.name.as_str()) {
            return Err(InvalidRequest::param(
                &format!("tools[{i}].function.name"),
                format!("function `{}` is defined twice", f.name),
            ));
        }
        if let Some(p) = &f.parameters {
            check_parameters_schema(p).map_err(|m| {
                InvalidRequest::param(&format!("tools[{i}].function.parameters"), m)
            })?;
        }
    }
    Ok(())
}

/// What the choice asks of the model (the definitions are not checked here).
pub fn tool_mode(
    tools: Option<&[Tool]>,
    choice: Option<&ToolChoice>,
) -> Result<ToolMode, InvalidRequest> {
    let tools = tools.unwrap_or(&[]);
    let mode = match choice {
        None if tools.is_empty() => ToolMode::None,
        None => ToolMode::Auto,
        Some(ToolChoice::Mode(m)) => match m.as_str() {
            "none" => ToolMode::None,
            "auto" if tools.is_empty() => ToolMode::None,
            "auto" => ToolMode::Auto,
            "required" => ToolMode::Required,
            other => {
                return Err(InvalidRequest::param(
                    "tool_choice",
                    format!(
                    "tool_choice must be none, auto, required or a named function, got {other:?}"
                ),
                ))
            }
        },
        Some(ToolChoice::Named(n)) => ToolMode::Named(n.function.name.clone()),
    };
    match &mode {
        ToolMode::Required if tools.is_empty() => Err(InvalidRequest::param(
            "tool_choice",
            "tool_choice `required` needs at least one tool in `tools`",
        )),
        ToolMode::Named(name) if !tools.iter().any(|t| &t.function.name == name) => {
            Err(InvalidRequest::param(
                "tool_choice",
                format!("tool_choice names `{name}`, which is not in `tools`"),
            ))
        }
        _ => Ok(mode),
    }
}

/// A function's `parameters` must be a JSON schema (checked against the JSON Schema
/// meta-schema) describing an object.
fn check_parameters_schema(p: &Value) -> Result<(), String> {
    let Some(obj) = p.as_object() else {
        return Err("parameters must be a JSON schema object".into());
    };
    if let Some(t) = obj.get("type") {
        if t != "object" {
            return Err(format!(
                "parameters must describe an object (`\"type\": \"object\"`), got type {t}"
            ));
        }
    }
    jsonschema::meta::validate(p).map_err(|e| format!("not a valid JSON schema: {e}"))?;
    jsonschema::validator_for(p)
        .map(|_| ())
        .map_err(|e| format!("not a valid JSON schema: {e}"))
}

/// Whether a call's arguments parse and satisfy its function's schema; the reason if not.
pub fn check_call(tools: &[Tool], call: &ToolCall) -> Result<(), String> {
    let Some(t) = tools.iter().find(|t| t.function.name == call.function.name) else {
        return Err(format!("no tool named `{}`", call.function.name));
    };
    let args: Value = serde_json::from_str(&call.function.arguments)
        .map_err(|e| format!("arguments are not JSON: {e}"))?;
    let schema = t.function.parameters_schema();
    let v = jsonschema::validator_for(&schema).map_err(|e| e.to_string())?;
    v.validate(&args).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tools(v: Value) -> Vec<Tool> {
        serde_json::from_value(v).unwrap()
    }

    fn weather() -> Vec<Tool> {
        tools(
            json!([{"type": "function", "function": {"name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]),
        )
    }

    #[test]
    fn modes_follow_the_choice() {
        let t = weather();
        assert_eq!(check_tools(Some(&t), None).unwrap(), ToolMode::Auto);
        assert_eq!(check_tools(None, None).unwrap(), ToolMode::None);
        let req = ToolChoice::Mode("required".into());
        assert_eq!(
            check_tools(Some(&t), Some(&req)).unwrap(),
            ToolMode::Required
        );
        let none = ToolChoice::Mode("none".into());
        assert_eq!(check_tools(Some(&t), Some(&none)).unwrap(), ToolMode::None);
        let named = ToolChoice::named("get_weather");
        assert_eq!(
            check_tools(Some(&t), Some(&named)).unwrap(),
            ToolMode::Named("get_weather".into())
        );
    }

    #[test]
    fn bad_definitions_name_the_field() {
        let bad = tools(json!([{"type": "function", "function": {"name": "ok"}},
            {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"x": {"type": "strin"}}}}}]));
        let e = check_tools(Some(&bad), None).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("tools[1].function.parameters"));
        let bad = tools(json!([{"type": "function", "function": {"name": "has space"}}]));
        let e = check_tools(Some(&bad), None).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("tools[0].function.name"));
        let bad = tools(
            json!([{"type": "function", "function": {"name": "f", "parameters": {"type": "array"}}}]),
        );
        let e = check_tools(Some(&bad), None).unwrap_err();
        assert!(e.message.contains("object"), "{}", e.message);
        let e = check_tools(Some(&weather()), Some(&ToolChoice::named("nope"))).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("tool_choice"));
        let e = check_tools(None, Some(&ToolChoice::Mode("required".into()))).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("tool_choice"));
    }

    #[test]
    fn calls_are_checked_against_the_schema() {
        let t = weather();
        assert!(check_call(&t, &ToolCall::new("get_weather", &json!({"city": "Paris"}))).is_ok());
        assert!(check_call(&t, &ToolCall::new("get_weather", &json!({"town": 1}))).is_err());
        assert!(check_call(&t, &ToolCall::new("other", &json!({}))).is_err());
        let mut c = ToolCall::new("get_weather", &json!({}));
        c.function.arguments = "{not json".into();
        assert!(check_call(&t, &c).unwrap_err().contains("not JSON"));
    }

    #[test]
    fn fragments_fold_into_calls() {
        let mut f = ToolCallFold::default();
        f.push(&ToolCallDelta {
            index: 0,
            id: Some("call_1".into()),
            kind: Some("function".into()),
            function: Some(FunctionCallDelta {
                name: Some("get_weather".into()),
                arguments: Some("{\"ci".into()),
            }),
        });
        f.push(&ToolCallDelta {
            index: 0,
            function: Some(FunctionCallDelta {
                name: None,
                arguments: Some("ty\": \"Oslo\"}".into()),
            }),
            ..Default::default()
        });
        let calls = f.finish().unwrap();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].id, "call_1");
        assert_eq!(calls[0].arguments_value(), json!({"city": "Oslo"}));
    }
}
