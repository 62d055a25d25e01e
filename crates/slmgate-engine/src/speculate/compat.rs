//! Whether a draft model can propose tokens to a target: llama.cpp's
//! `common_speculative_are_compatible` (same tokenizer type, the same BOS/EOS and their
//! insertion, vocabularies within 128 entries, and the same text for every token id from 5 up
//! to the smaller vocabulary).

use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;

const MAX_SIZE_DIFFERENCE: i32 = 128;
const CHECK_FROM_TOKEN: i32 = 5;

/// `Err` says why the draft's token ids do not mean the target's.
pub(crate) fn check(target: &LlamaModel, draft: &LlamaModel) -> Result<(), String> {
    let (t, d) = (target.vocab(), draft.vocab());
    if t.vocab_type() != d.vocab_type() {
        return Err(format!(
            "the tokenizers differ ({:?} vs {:?})",
            t.vocab_type(),
            d.vocab_type()
        ));
    }
    if t.should_add_bos() != d.should_add_bos()
        || t.should_add_eos() != d.should_add_eos()
        || t.bos() != d.bos()
        || t.eos() != d.eos()
    {
        return Err(format!(
            "the special tokens differ (bos {} vs {}, eos {} vs {})",
            t.bos().0,
            d.bos().0,
            t.eos().0,
            d.eos().0
        ));
    }
    let (nt, nd) = (t.n_tokens(), d.n_tokens());
    if (nt - nd).abs() > MAX_SIZE_DIFFERENCE {
        return Err(format!(
            "the vocabularies differ in size ({nt} vs {nd} tokens, at most {MAX_SIZE_DIFFERENCE} apart)"
        ));
    }
    for id in CHECK_FROM_TOKEN..nt.min(nd) {
        let tok = LlamaToken(id);
        if t.text(tok) != d.text(tok) {
            let show = |v: Option<&std::ffi::CStr>| {
                v.map(|c| c.to_string_lossy().into_owned())
                    .unwrap_or_default()
            };
            return Err(format!(
                "token {id} is {:?} in the target and {:?} in the draft",
                show(t.text(tok)),
                show(d.text(tok))
            ));
        }
    }
    Ok(())
}
