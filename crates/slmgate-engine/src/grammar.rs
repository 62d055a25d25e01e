//! Structured output: OpenAI `response_format` → a GBNF grammar for the sampler.
//!
//! `json_object` uses a generic JSON grammar whose root is an object; `json_schema` is
//! converted by llama.cpp's own `json_schema_to_grammar` (the converter llama-server uses).

use crate::EngineError;

/// Any JSON object (root), values of any JSON type. Whitespace is bounded so a small model
/// cannot loop on newlines forever.
pub const JSON_OBJECT_GBNF: &str = r#"root   ::= object
value  ::= object | array | string | number | ("true" | "false" | "null") ws
object ::= "{" ws ( string ":" ws value ("," ws string ":" ws value)* )? "}" ws
array  ::= "[" ws ( value ("," ws value)* )? "]" ws
string ::= "\"" ( [^"\\\x7F\x00-\x1F] | "\\" (["\\bfnrt/] | "u" [0-9a-fA-F]{4}) )* "\"" ws
number ::= ("-"? ([0-9] | [1-9] [0-9]{0,15})) ("." [0-9]+)? ([eE] [-+]? [0-9] [1-9]{0,15})? ws
ws     ::= | " " | "\n" [ \t]{0,20}
"#;

/// Converts a JSON schema (as JSON text) to GBNF.
pub fn json_schema_to_gbnf(schema: &serde_json::Value) -> Result<String, EngineError> {
    if !schema.is_object() && !schema.is_boolean() {
        return Err(EngineError::Grammar(
            "json_schema.schema must be a JSON object".into(),
        ));
    }
    let text = serde_json::to_string(schema).map_err(|e| EngineError::Grammar(e.to_string()))?;
    json_schema_text_to_gbnf(&text)
}

/// Converts a JSON schema given as text; its properties keep their order in the text (the
/// order the model writes them in).
pub fn json_schema_text_to_gbnf(text: &str) -> Result<String, EngineError> {
    // llama.cpp's converter reports failures as C++ exceptions caught in the shim.
    llama_cpp_2::json_schema_to_grammar(text)
        .map_err(|e| EngineError::Grammar(format!("cannot convert the JSON schema: {e}")))
}
