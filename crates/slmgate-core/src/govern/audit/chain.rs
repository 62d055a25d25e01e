//! The hash chain: each entry's hash commits to the previous entry's hash, its own sequence
//! number, its metadata and the hash of its content (content is stored apart, so it can be
//! erased while the chain still verifies).

use sha2::{Digest, Sha256};

/// The `prev_hash` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Lower-case hex of a digest.
fn hex(digest: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(digest.len() * 2);
    for b in digest {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 0xf) as usize] as char);
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
    hex(&h.finalize())
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_digest_matches_the_reference() {
        // sha256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(
            super::sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
