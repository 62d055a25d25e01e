//! The hash chain: each entry's hash commits to the previous entry's hash, its own sequence
//! number, its metadata and the hash of its content (content is stored apart, so it can be
//! erased while the chain still verifies).

use sha2::{Digest, Sha256};

/// The `prev_hash` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

pub fn sha256_hex(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    let mut s = String::with_capacity(64);
    for b in d {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// sha256(prev_hash "\n" seq "\n" entry_json "\n" content_hash)
pub fn entry_hash(prev: &str, seq: i64, entry_json: &str, content_hash: &str) -> String {
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(b"\n");
    h.update(seq.to_string().as_bytes());
    h.update(b"\n");
    h.update(entry_json.as_bytes());
    h.update(b"\n");
    h.update(content_hash.as_bytes());
    let mut s = String::with_capacity(64);
    for b in h.finalize() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}
