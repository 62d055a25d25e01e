//! Chunking: a document's text becomes overlapping chunks of whole sentences, each under the
//! heading path it sits in (`Install > Configure`), so a chunk read alone still says what it
//! is about. A heading starts a new chunk; a long section is packed into chunks of at most
//! `words` words, and each next chunk repeats the previous one's last sentences (up to
//! `overlap` words). Small chunks suit small models: given the 160-word passage holding the
//! answer, SmolLM2-135M named the wrong path; given 60 words around it, the right one
//! (docs/benchmarks.md).

/// One piece of a document, as embedded and indexed.
#[derive(Debug, Clone, PartialEq)]
pub struct Piece {
    /// Position in the document (0-based).
    pub index: usize,
    /// The headings above it, outermost first, joined by ` > ` (empty before any).
    pub heading: String,
    pub text: String,
}

impl Piece {
    /// What is embedded and indexed: the heading path, then the text.
    pub fn indexed_text(&self) -> String {
        if self.heading.is_empty() {
            self.text.clone()
        } else {
            format!("{}\n{}", self.heading, self.text)
        }
    }
}

/// A Markdown ATX heading (`## Title`): its level and title.
fn heading(line: &str) -> Option<(usize, &str)> {
    let t = line.trim_start();
    let level = t.bytes().take_while(|b| *b == b'#').count();
    if !(1..=6).contains(&level) {
        return None;
    }
    let rest = &t[level..];
    if !rest.starts_with(' ') {
        return None;
    }
    let title = rest.trim().trim_end_matches('#').trim();
    (!title.is_empty()).then_some((level, title))
}

/// A Setext heading: a text line underlined with `===` (level 1) or `---` (level 2).
fn underline<'a>(line: &'a str, next: &str) -> Option<(usize, &'a str)> {
    let u = next.trim();
    let title = line.trim();
    if u.len() < 3
        || title.is_empty()
        || heading(line).is_some()
        || title.starts_with(['-', '*', '>'])
    {
        return None;
    }
    if u.bytes().all(|b| b == b'=') {
        Some((1, title))
    } else if u.bytes().all(|b| b == b'-') {
        Some((2, title))
    } else {
        None
    }
}

/// Whether a word ends a sentence (`done.`, `why?`, `"so!"`), not an abbreviation-like
/// token (`e.g.`, `1.5`).
fn ends_sentence(w: &str) -> bool {
    let w = w.trim_end_matches(['"', '\'', ')', ']', '*', '_']);
    w.len() > 1 && w.ends_with(['.', '!', '?', ':']) && !w[..w.len() - 1].contains('.')
}

/// A section's words packed into chunks of whole sentences up to `words` words; the next
/// chunk starts with the last sentences of the previous one, up to `overlap` words. A
/// sentence longer than `words` is cut into windows.
fn windows(section: &[&str], words: usize, overlap: usize) -> Vec<String> {
    let mut sentences: Vec<&[&str]> = Vec::new();
    let mut start = 0;
    for (i, w) in section.iter().enumerate() {
        if ends_sentence(w) || i + 1 == section.len() {
            let s = &section[start..=i];
            for piece in s.chunks(words) {
                sentences.push(piece);
            }
            start = i + 1;
        }
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < sentences.len() {
        let mut j = i;
        let mut n = 0;
        while j < sentences.len() && (j == i || n + sentences[j].len() <= words) {
            n += sentences[j].len();
            j += 1;
        }
        out.push(
            sentences[i..j]
                .iter()
                .flat_map(|s| s.iter())
                .copied()
                .collect::<Vec<_>>()
                .join(" "),
        );
        if j == sentences.len() {
            break;
        }
        // Back up over whole sentences that fit the overlap, never to where this chunk began.
        let mut k = j;
        let mut carried = 0;
        while k > i + 1 && carried + sentences[k - 1].len() <= overlap {
            carried += sentences[k - 1].len();
            k -= 1;
        }
        i = k;
    }
    out
}

pub fn chunk(text: &str, words: usize, overlap: usize) -> Vec<Piece> {
    let words = words.max(1);
    let mut out = Vec::new();
    let mut path: Vec<(usize, String)> = Vec::new();
    let mut section: Vec<&str> = Vec::new();
    let flush = |section: &mut Vec<&str>, path: &[(usize, String)], out: &mut Vec<Piece>| {
        if section.is_empty() {
            return;
        }
        let heading = path
            .iter()
            .map(|(_, t)| t.as_str())
            .collect::<Vec<_>>()
            .join(" > ");
        for text in windows(section, words, overlap) {
            out.push(Piece {
                index: out.len(),
                heading: heading.clone(),
                text,
            });
        }
        section.clear();
    };
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        i += 1;
        let setext = lines.get(i).and_then(|next| underline(line, next));
        if setext.is_some() {
            i += 1;
        }
        if let Some((level, title)) = setext.or_else(|| heading(line)) {
            flush(&mut section, &path, &mut out);
            path.retain(|(l, _)| *l < level);
            path.push((level, title.to_string()));
        } else {
            section.extend(line.split_whitespace());
        }
    }
    flush(&mut section, &path, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headings_nest_and_start_new_chunks() {
        let t = "intro words\n# Guide\nalpha beta\n## Setup\ngamma\n# Other\ndelta";
        let c = chunk(t, 100, 10);
        let got: Vec<(&str, &str)> = c
            .iter()
            .map(|p| (p.heading.as_str(), p.text.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("", "intro words"),
                ("Guide", "alpha beta"),
                ("Guide > Setup", "gamma"),
                ("Other", "delta")
            ]
        );
        assert_eq!(c[2].indexed_text(), "Guide > Setup\ngamma");
        assert!(c.iter().enumerate().all(|(i, p)| p.index == i));
    }

    #[test]
    fn a_sentence_longer_than_a_chunk_is_cut_and_every_word_kept() {
        let text: Vec<String> = (0..25).map(|i| format!("w{i}")).collect();
        let c = chunk(&text.join(" "), 10, 3);
        assert_eq!(c.len(), 3);
        assert!(c.iter().all(|p| p.text.split(' ').count() <= 10));
        for w in &text {
            assert!(c.iter().any(|p| p.text.split(' ').any(|x| x == w)));
        }
    }

    #[test]
    fn chunks_are_whole_sentences_with_sentence_overlap() {
        let t = "One two three. Four five six. Seven eight nine. Ten eleven twelve. Thirteen.";
        let c = chunk(t, 7, 3);
        let texts: Vec<&str> = c.iter().map(|p| p.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "One two three. Four five six.",
                "Four five six. Seven eight nine.",
                "Seven eight nine. Ten eleven twelve. Thirteen."
            ]
        );
        assert!(!ends_sentence("e.g."));
        assert!(ends_sentence("there.\""));
        assert!(!ends_sentence("1.5"));
    }

    #[test]
    fn setext_headings() {
        let c = chunk(
            "Testing\n=======\nintro\n\nShort Tests\n-----------\n- a list\n",
            100,
            0,
        );
        assert_eq!(c[0].heading, "Testing");
        assert_eq!(c[1].heading, "Testing > Short Tests");
        assert_eq!(c[1].text, "- a list");
    }

    #[test]
    fn not_headings() {
        assert_eq!(heading("#hashtag"), None);
        assert_eq!(heading("####### seven"), None);
        assert_eq!(heading("  ## Two ##"), Some((2, "Two")));
        assert!(chunk("   \n\n", 10, 2).is_empty());
    }
}
