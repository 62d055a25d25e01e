//! A small valid LoRA adapter GGUF for SmolLM2-135M (GGUF v3, float32 `lora_a`/`lora_b` pairs
//! on every layer's `attn_q` and `ffn_down`, rank 8, alpha 8), from a seed: no adapter can be
//! fetched offline. Shared by the adapter tests and the adapter benchmark.

use std::path::Path;

// SmolLM2-135M: 30 layers, 576-wide, 1536-wide feed-forward.
const LAYERS: usize = 30;
const EMBD: u64 = 576;
const FF: u64 = 1536;
const RANK: u64 = 8;

/// Writes a LoRA adapter GGUF for SmolLM2 whose weights come from `seed`.
pub fn write_lora(path: &Path, seed: u64, arch: &str, general_type: &str) {
    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend((s.len() as u64).to_le_bytes());
        out.extend(s.as_bytes());
    }
    // (name, ne0, ne1): lora_a is [in, rank], lora_b is [rank, out] (ggml order).
    let mut tensors: Vec<(String, u64, u64)> = Vec::new();
    for l in 0..LAYERS {
        for (w, inp, out) in [("attn_q", EMBD, EMBD), ("ffn_down", FF, EMBD)] {
            tensors.push((format!("blk.{l}.{w}.weight.lora_a"), inp, RANK));
            tensors.push((format!("blk.{l}.{w}.weight.lora_b"), RANK, out));
        }
    }
    let mut out = Vec::new();
    out.extend(b"GGUF");
    out.extend(3u32.to_le_bytes());
    out.extend((tensors.len() as u64).to_le_bytes());
    out.extend(4u64.to_le_bytes()); // key-value pairs
    for (k, v) in [
        ("general.architecture", arch),
        ("general.type", general_type),
        ("adapter.type", "lora"),
    ] {
        string(&mut out, k);
        out.extend(8u32.to_le_bytes()); // string
        string(&mut out, v);
    }
    string(&mut out, "adapter.lora.alpha");
    out.extend(6u32.to_le_bytes()); // float32
    out.extend((RANK as f32).to_le_bytes());
    let mut offset = 0u64;
    for (name, ne0, ne1) in &tensors {
        string(&mut out, name);
        out.extend(2u32.to_le_bytes());
        out.extend(ne0.to_le_bytes());
        out.extend(ne1.to_le_bytes());
        out.extend(0u32.to_le_bytes()); // F32
        out.extend(offset.to_le_bytes());
        offset += (ne0 * ne1 * 4).div_ceil(32) * 32;
    }
    while out.len() % 32 != 0 {
        out.push(0);
    }
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for (_, ne0, ne1) in &tensors {
        let n = (ne0 * ne1) as usize;
        for _ in 0..n {
            // xorshift64*: uniform in [-0.1, 0.1)
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            let u = (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64;
            out.extend((((u * 2.0 - 1.0) * 0.1) as f32).to_le_bytes());
        }
        let padded = (n * 4).div_ceil(32) * 32;
        out.extend(std::iter::repeat_n(0u8, padded - n * 4));
    }
    // Written elsewhere and renamed: a reader never sees half a file.
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, out).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}
