//! Checks of a request that every deployment would make, so the answer does not depend on
//! which one happens to serve it.

use super::anthropic::MessagesRequest;
pub use super::invalid::InvalidRequest;
use super::openai::ChatRequest;
use super::tools::check_tools;

impl ChatRequest {
    /// The checks of the OpenAI API itself: required fields, ranges, known roles.
    pub fn validate(&self) -> Result<(), InvalidRequest> {
        let req = self;
        if req.model.is_empty() {
            return Err(InvalidRequest::param("model", "`model` is required"));
        }
        if req.messages.is_empty() {
            return Err(InvalidRequest::param(
                "messages",
                "`messages` must contain at least one message",
            ));
        }
        if let Some(n) = req.n {
            if n != 1 {
                return Err(InvalidRequest::param(
                    "n",
                    format!("only n=1 is supported, got n={n}"),
                ));
            }
        }
        if let Some(t) = req.temperature {
            if !(0.0..=2.0).contains(&t) {
                return Err(InvalidRequest::param(
                    "temperature",
                    format!("temperature must be between 0 and 2, got {t}"),
                ));
            }
        }
        if let Some(p) = req.top_p {
            if !(p > 0.0 && p <= 1.0) {
                return Err(InvalidRequest::param(
                    "top_p",
                    format!("top_p must be in (0, 1], got {p}"),
                ));
            }
        }
        if let Some(k) = req.top_k {
            if k < 0 {
                return Err(InvalidRequest::param(
                    "top_k",
                    format!("top_k must be >= 0, got {k}"),
                ));
            }
        }
        for (name, v) in [
            ("frequency_penalty", req.frequency_penalty),
            ("presence_penalty", req.presence_penalty),
        ] {
            if let Some(v) = v {
                if !(-2.0..=2.0).contains(&v) {
                    return Err(InvalidRequest::param(
                        name,
                        format!("{name} must be between -2 and 2, got {v}"),
                    ));
                }
            }
        }
        if req.max_output_tokens() == Some(0) {
            return Err(InvalidRequest::param(
                "max_tokens",
                "max_tokens must be at least 1",
            ));
        }
        if let Some(k) = req.top_logprobs {
            if k > 20 {
                return Err(InvalidRequest::param(
                    "top_logprobs",
                    format!("top_logprobs must be between 0 and 20, got {k}"),
                ));
            }
            if k > 0 && !req.logprobs.unwrap_or(false) {
                return Err(InvalidRequest::param(
                    "top_logprobs",
                    "top_logprobs requires logprobs=true",
                ));
            }
        }
        let stops = req.stop_list();
        if stops.len() > 4 {
            return Err(InvalidRequest::param("stop", "at most 4 stop sequences"));
        }
        if stops.iter().any(|s| s.is_empty()) {
            return Err(InvalidRequest::param(
                "stop",
                "stop sequences must not be empty",
            ));
        }
        for (i, m) in req.messages.iter().enumerate() {
            if !matches!(
                m.role.as_str(),
                "system" | "developer" | "user" | "assistant" | "tool" | "function"
            ) {
                return Err(InvalidRequest::param(
                    &format!("messages[{i}].role"),
                    format!("unknown role `{}`", m.role),
                ));
            }
            if m.role == "tool" && m.tool_call_id.as_deref().is_none_or(str::is_empty) {
                return Err(InvalidRequest::param(
                    &format!("messages[{i}].tool_call_id"),
                    "a `tool` message needs the `tool_call_id` of the call it answers",
                ));
            }
        }
        check_tools(req.tools.as_deref(), req.tool_choice.as_ref())?;
        Ok(())
    }
}

impl MessagesRequest {
    /// Anthropic's roles: only `user` and `assistant` turns (the system prompt is apart).
    pub fn validate_roles(&self) -> Result<(), InvalidRequest> {
        for (i, m) in self.messages.iter().enumerate() {
            if m.role != "user" && m.role != "assistant" {
                return Err(InvalidRequest::param(
                    &format!("messages[{i}].role"),
                    "role must be `user` or `assistant`",
                ));
            }
        }
        Ok(())
    }
}
