//! Tool calling on a local model, in the generic format (Hermes-style tags, documented in
//! the README): the tools and their results are rendered into the prompt as text, the model
//! writes each call as
//!
//! ```text
//! <tool_call>
//! {"name": "get_weather", "arguments": {"city": "Paris"}}
//! </tool_call>
//! ```
//!
//! and a grammar built from the tools' JSON schemas makes every call parse and match its
//! schema: from the first token under `required` or a named function, and from the opening
//! tag on (a lazy grammar) under `auto`.

use serde_json::json;
use slmgate_engine::{grammar, ChatMessage};

use crate::wire::openai::Message;
use crate::wire::tools::{Tool, ToolMode};

pub const OPEN: &str = "<tool_call>";
pub const CLOSE: &str = "</tool_call>";

/// The tools' section of the system prompt.
pub fn system_section(tools: &[Tool], mode: &ToolMode) -> String {
    let mut s = String::from(
        "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n\
         You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n",
    );
    for t in tools {
        // Struct order (name, description, parameters), not serde_json's sorted keys.
        let f = serde_json::to_string(&t.function).unwrap_or_default();
        s.push_str(&format!("{{\"type\": \"function\", \"function\": {f}}}"));
        s.push('\n');
    }
    s.push_str(
        "</tools>\n\nFor each function call, return a json object with function name and \
         arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n\
         {\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call>",
    );
    match mode {
        ToolMode::Required => s.push_str("\n\nCall a function now."),
        ToolMode::Named(n) => s.push_str(&format!("\n\nCall the function `{n}` now.")),
        _ => {}
    }
    s
}

/// An assistant turn's calls, as the model would have written them.
pub fn render_calls(text: &str, m: &Message) -> String {
    let mut out = text.to_string();
    for c in m.tool_calls.iter().flatten() {
        if !out.is_empty() {
            out.push('\n');
        }
        // Name first, as the grammar makes the model write it.
        let name = json!(c.function.name);
        let args = c.arguments_value();
        out.push_str(&format!(
            "{OPEN}\n{{\"name\": {name}, \"arguments\": {args}}}\n{CLOSE}"
        ));
    }
    out
}

/// A tool result, as a user turn shows it.
pub fn render_result(text: &str) -> String {
    format!("<tool_response>\n{text}\n</tool_response>")
}

/// Puts the tools' section into the system message (the first one, or a new one).
pub fn add_section(messages: &mut Vec<ChatMessage>, section: String) {
    match messages.first_mut() {
        Some(m) if m.role == "system" => {
            m.content.push_str("\n\n");
            m.content.push_str(&section);
        }
        _ => messages.insert(0, ChatMessage::new("system", section)),
    }
}

/// The grammar of the model's calls, and the triggers that make it lazy (`auto`).
pub struct CallGrammar {
    pub gbnf: String,
    pub triggers: Vec<String>,
}

/// One call's JSON for every tool the model may call (one alternative per tool).
pub fn call_grammar(
    tools: &[Tool],
    mode: &ToolMode,
    parallel: bool,
) -> Result<CallGrammar, String> {
    let allowed: Vec<&Tool> = match mode {
        ToolMode::Named(n) => tools.iter().filter(|t| &t.function.name == n).collect(),
        _ => tools.iter().collect(),
    };
    // Written as text so that `name` comes before `arguments` (serde_json sorts keys): the
    // model picks the function, then fills in its arguments.
    let alternatives: Vec<String> = allowed
        .iter()
        .map(|t| {
            let mut params = t.function.parameters_schema();
            // Small models invent keys: hold them to the declared ones unless the schema
            // says otherwise (OpenAI's strict mode asks the same).
            if let Some(o) = params.as_object_mut() {
                o.entry("additionalProperties").or_insert(json!(false));
            }
            let name = json!({"const": t.function.name});
            format!(
                r#"{{"type": "object", "properties": {{"name": {name}, "arguments": {params}}}, "required": ["name", "arguments"], "additionalProperties": false}}"#
            )
        })
        .collect();
    let schema = match alternatives.len() {
        1 => alternatives[0].clone(),
        _ => format!(r#"{{"oneOf": [{}]}}"#, alternatives.join(", ")),
    };
    let call = grammar::json_schema_text_to_gbnf(&schema).map_err(|e| e.to_string())?;
    // The converter's start rule is `root`; ours wraps it in the tags.
    let call = call
        .lines()
        .map(|l| match l.strip_prefix("root ::=") {
            Some(rest) => format!("tool-call-json ::={rest}"),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let root = if parallel {
        "root ::= tool-call (\"\\n\" tool-call)*"
    } else {
        "root ::= tool-call"
    };
    // Whitespace around the JSON is free: under `auto` the grammar starts from the token
    // that completed the opening tag, whatever whitespace it carried.
    let gbnf = format!(
        "{root}\ntool-call ::= \"{OPEN}\" [ \\t\\n]* tool-call-json [ \\t\\n]* \"{CLOSE}\"\n{call}\n"
    );
    // The trigger fires only when the output so far *ends* with the tag (and whitespace): a
    // token that ran past the tag into other text would be replayed into the grammar, and a
    // piece the grammar rejects makes llama.cpp throw across the FFI (an abort of the whole
    // process). Such a call is left unconstrained instead, and checked like any other.
    let triggers = match mode {
        ToolMode::Auto => vec![format!(r"{}[ \t\n]*$", regex::escape(OPEN))],
        _ => Vec::new(),
    };
    Ok(CallGrammar { gbnf, triggers })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weather() -> Vec<Tool> {
        serde_json::from_value(json!([{"type": "function", "function": {"name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
            {"type": "function", "function": {"name": "get_time"}}]))
        .unwrap()
    }

    #[test]
    fn grammar_wraps_every_tool_in_tags() {
        let g = call_grammar(&weather(), &ToolMode::Required, true).unwrap();
        assert!(g
            .gbnf
            .starts_with("root ::= tool-call (\"\\n\" tool-call)*\n"));
        assert!(g.gbnf.contains("tool-call-json ::="));
        assert!(g.gbnf.contains("get_weather") && g.gbnf.contains("get_time"));
        assert_eq!(g.gbnf.matches("\nroot ::=").count(), 0);
        assert!(g.triggers.is_empty());
        let g = call_grammar(&weather(), &ToolMode::Auto, false).unwrap();
        assert_eq!(g.triggers, vec![r"<tool_call>[ \t\n]*$".to_string()]);
        let g = call_grammar(&weather(), &ToolMode::Named("get_time".into()), false).unwrap();
        assert!(!g.gbnf.contains("get_weather"));
    }

    #[test]
    fn section_and_history_render() {
        let mut msgs = vec![ChatMessage::new("user", "hi")];
        add_section(
            &mut msgs,
            system_section(&weather(), &ToolMode::Named("get_time".into())),
        );
        assert_eq!(msgs[0].role, "system");
        assert!(msgs[0]
            .content
            .contains("<tools>\n{\"type\": \"function\", \"function\": {\"name\":\"get_weather\""));
        assert!(msgs[0]
            .content
            .ends_with("Call the function `get_time` now."));
        let m: Message = serde_json::from_value(json!({"role": "assistant", "content": null,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]}))
        .unwrap();
        assert_eq!(
            render_calls("", &m),
            "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>"
        );
    }
}
