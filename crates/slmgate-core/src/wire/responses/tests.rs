use super::*;
use crate::wire::openai::{ChatChunk, Delta};
use serde_json::json;

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
    let ch = ChatChunk::new("i", 0, "m").delta(Delta::content("Hel"), None, None);
    names.extend(w.chunk(&ch).iter().map(|e| e.0));
    let ch = ChatChunk::new("i", 0, "m").delta(Delta::content("lo"), None, Some("stop"));
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
