//! A minimal Server-Sent Events decoder for upstream streams (`event:` / `data:` lines,
//! blank-line framing, `\n` or `\r\n`).

#[derive(Debug, Clone, PartialEq, Default)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

#[derive(Debug, Default)]
pub struct SseDecoder {
    buf: Vec<u8>,
}

impl SseDecoder {
    /// Feeds bytes; returns the events completed by them.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some((end, sep)) = find_boundary(&self.buf) {
            let block: Vec<u8> = self.buf.drain(..end + sep).collect();
            if let Some(ev) = parse_block(&String::from_utf8_lossy(&block[..end])) {
                out.push(ev);
            }
        }
        out
    }

    /// Bytes received after the last complete event (non-empty means a truncated stream).
    pub fn pending(&self) -> &[u8] {
        &self.buf
    }
}

fn find_boundary(b: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i + 1 < b.len() {
        if b[i] == b'\n' && b[i + 1] == b'\n' {
            return Some((i, 2));
        }
        if i + 3 < b.len() && &b[i..i + 4] == b"\r\n\r\n" {
            return Some((i, 4));
        }
        i += 1;
    }
    None
}

fn parse_block(block: &str) -> Option<SseEvent> {
    let mut ev = SseEvent::default();
    let mut has_data = false;
    for line in block.lines() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() || line.starts_with(':') {
            continue;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => ev.event = Some(value.to_string()),
            "data" => {
                if has_data {
                    ev.data.push('\n');
                }
                ev.data.push_str(value);
                has_data = true;
            }
            _ => {}
        }
    }
    (has_data || ev.event.is_some()).then_some(ev)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_events_across_chunks() {
        let mut d = SseDecoder::default();
        assert!(d.push(b"data: {\"a\"").is_empty());
        let evs = d.push(b":1}\n\nevent: x\r\ndata: y\r\n\r\n: comment\n\ndata: [DONE]\n\n");
        assert_eq!(evs.len(), 3);
        assert_eq!(evs[0].data, "{\"a\":1}");
        assert_eq!(evs[1].event.as_deref(), Some("x"));
        assert_eq!(evs[1].data, "y");
        assert_eq!(evs[2].data, "[DONE]");
        assert!(d.pending().is_empty());
    }

    #[test]
    fn multi_line_data_joined() {
        let mut d = SseDecoder::default();
        let evs = d.push(b"data: a\ndata: b\n\n");
        assert_eq!(evs[0].data, "a\nb");
    }

    #[test]
    fn truncated_tail_is_pending() {
        let mut d = SseDecoder::default();
        d.push(b"data: {\"partial");
        assert!(!d.pending().is_empty());
    }
}
