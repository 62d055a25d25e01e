//! What one sampled token becomes: its log-probability, the text it releases to the
//! client, and the next draft length when speculating.

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;

use crate::detok::Pushed;
use crate::logprobs::{log_sum_exp, top_k, TokenLogprob, TopLogprob};
use crate::request::{FinishReason, GenerationEvent};
use crate::slot::Active;

/// How many tokens to draft next after `accepted` of `drafted` were kept: twice as many when
/// all were (up to the request's own limit), one more than were kept otherwise. On a CPU a
/// verify step costs about a prompt token per extra row, so drafts that keep failing are cut
/// back to one.
pub(super) fn next_draft_len(drafted: usize, accepted: usize) -> usize {
    if accepted == drafted {
        drafted.saturating_mul(2)
    } else {
        accepted + 1
    }
}

/// Streams the text `tok` releases; returns why the sequence ends, if it does.
pub(super) fn emit(
    model: &LlamaModel,
    a: &mut Active,
    tok: LlamaToken,
    lp: Option<TokenLogprob>,
    kv_len: usize,
    slot_ctx: usize,
) -> Option<FinishReason> {
    let vocab = model.vocab();
    let send = |a: &Active, text: String, logprob: Option<TokenLogprob>| {
        let _ = a.job.events.send(GenerationEvent::Token { text, logprob });
    };
    if vocab.is_eog(tok) && !a.job.req.ignore_eos {
        let rest = a.detok.finish();
        if !rest.is_empty() || lp.is_some() {
            send(a, rest, lp);
        }
        return Some(FinishReason::Stop);
    }
    match a.detok.push(&vocab.token_to_piece(tok, false, None)) {
        Pushed::Text(text) => send(a, text, lp),
        Pushed::Stop(text) => {
            send(a, text, lp);
            return Some(FinishReason::Stop);
        }
    }
    if a.generated >= a.job.req.max_tokens || kv_len + 1 >= slot_ctx {
        let rest = a.detok.finish();
        if !rest.is_empty() {
            send(a, rest, None);
        }
        return Some(FinishReason::Length);
    }
    None
}

/// The sampled token's log-probability and the top alternatives, from the raw logits.
pub(super) fn logprob(
    ctx: &LlamaContext<'_>,
    model: &LlamaModel,
    idx: i32,
    tok: LlamaToken,
    n_vocab: usize,
    top: usize,
) -> Option<TokenLogprob> {
    let vocab = model.vocab();
    let piece = |t: LlamaToken| vocab.token_to_piece(t, false, None);
    let logits = ctx.get_logits_ith(idx);
    if logits.len() != n_vocab {
        return None;
    }
    let lse = log_sum_exp(logits);
    let bytes = piece(tok);
    Some(TokenLogprob {
        token: String::from_utf8_lossy(&bytes).into_owned(),
        logprob: logits
            .get(tok.0 as usize)
            .map(|l| l - lse)
            .unwrap_or(f32::NEG_INFINITY),
        bytes,
        top_logprobs: top_k(logits, lse, top)
            .into_iter()
            .map(|(id, logprob)| {
                let bytes = piece(LlamaToken(id));
                TopLogprob {
                    token: String::from_utf8_lossy(&bytes).into_owned(),
                    logprob,
                    bytes,
                }
            })
            .collect(),
    })
}
