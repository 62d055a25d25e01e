//! A minimal Server-Sent Events decoder for upstream streams (`event:` / `data:` lines,
//! blank-line framing, `\n` or `\r\n`). Scanning is linear in the bytes received (a long
//! event arriving in many chunks is not rescanned), and one event may hold at most
//! [`MAX_EVENT_BYTES`]: an upstream sending an endless line is cut off, not buffered.

/// The most bytes one event may take (a chat chunk is a few hundred).
pub const MAX_EVENT_BYTES: usize = 4 << 20;

/// An event grew past [`MAX_EVENT_BYTES`] without ending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventTooLarge;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

#[derive(Debug, Default)]
pub struct SseDecoder {
    buf: Vec<u8>,
    /// `buf[..scanned]` holds no event boundary.
    scanned: usize,
}

impl SseDecoder {
    /// Feeds bytes; returns the events completed by them, or an error once an unfinished
    /// event is larger than [`MAX_EVENT_BYTES`].
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<SseEvent>, EventTooLarge> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        let mut start = 0;
        // A boundary may straddle the previous push: look back 3 bytes.
        let mut from = self.scanned.saturating_sub(3);
        while let Some((end, sep)) = find_boundary(&self.buf, from) {
            if let Some(ev) = parse_block(&String::from_utf8_lossy(&self.buf[start..end])) {
                out.push(ev);
            }
            start = end + sep;
            from = start;
        }
        self.buf.drain(..start);
        self.scanned = self.buf.len();
        if self.buf.len() > MAX_EVENT_BYTES {
            return Err(EventTooLarge);
        }
        Ok(out)
    }

    /// Bytes received after the last complete event (non-empty means a truncated stream).
    pub fn pending(&self) -> &[u8] {
        &self.buf
    }
}

/// The first blank line at or after `from`: (where it starts, its length).
fn find_boundary(b: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut i = from;
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
        assert!(d.push(b"data: {\"a\"").unwrap().is_empty());
        let evs = d
            .push(b":1}\n\nevent: x\r\ndata: y\r\n\r\n: comment\n\ndata: [DONE]\n\n")
            .unwrap();
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
        let evs = d.push(b"data: a\ndata: b\n\n").unwrap();
        assert_eq!(evs[0].data, "a\nb");
    }

    #[test]
    fn truncated_tail_is_pending() {
        let mut d = SseDecoder::default();
        d.push(b"data: {\"partial").unwrap();
        assert!(!d.pending().is_empty());
    }

    #[test]
    fn a_boundary_split_over_pushes_is_found() {
        for cut in 1..b"data: a\r\n\r\ndata: b\n\n".len() {
            let all = b"data: a\r\n\r\ndata: b\n\n";
            let mut d = SseDecoder::default();
            let mut evs = d.push(&all[..cut]).unwrap();
            evs.extend(d.push(&all[cut..]).unwrap());
            let data: Vec<_> = evs.iter().map(|e| e.data.as_str()).collect();
            assert_eq!(data, ["a", "b"], "cut at {cut}");
        }
    }

    #[test]
    fn an_endless_event_is_cut_off() {
        let mut d = SseDecoder::default();
        let piece = vec![b'x'; 64 << 10];
        let mut pushed = 0;
        let err = loop {
            match d.push(&piece) {
                Ok(evs) => assert!(evs.is_empty()),
                Err(e) => break e,
            }
            pushed += piece.len();
            assert!(pushed <= MAX_EVENT_BYTES + piece.len(), "never cut off");
        };
        assert_eq!(err, EventTooLarge);
    }
}
