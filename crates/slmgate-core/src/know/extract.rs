//! A document's text: plain text and Markdown as they are, HTML through `html2text` (its
//! headings become `#` lines, so chunks keep them), PDF through `pdf-extract`. Every failure
//! is the client's document, and says what is wrong with it.

use super::KnowError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Markdown,
    Html,
    Pdf,
}

impl Format {
    /// By the file's extension; without a known one, by its first bytes.
    pub fn of(filename: &str, bytes: &[u8]) -> Result<Self, KnowError> {
        let ext = filename
            .rsplit_once('.')
            .map(|(_, e)| e.to_ascii_lowercase())
            .unwrap_or_default();
        Ok(match ext.as_str() {
            "md" | "markdown" | "mdx" => Format::Markdown,
            "html" | "htm" | "xhtml" => Format::Html,
            "pdf" => Format::Pdf,
            "txt" | "text" | "rst" | "csv" | "log" | "json" | "toml" | "yaml" | "yml" => {
                Format::Text
            }
            _ if bytes.starts_with(b"%PDF-") => Format::Pdf,
            _ if std::str::from_utf8(bytes).is_ok() => {
                let head = String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).to_lowercase();
                if head.contains("<html") || head.contains("<!doctype html") {
                    Format::Html
                } else {
                    Format::Text
                }
            }
            _ => {
                return Err(KnowError::Document(format!(
                    "`{filename}`: not a supported document (text, Markdown, HTML or PDF)"
                )))
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Markdown => "markdown",
            Format::Html => "html",
            Format::Pdf => "pdf",
        }
    }
}

/// Limits on what a document may be.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_file_bytes: usize,
    pub max_line_bytes: usize,
}

/// The document's text (Markdown-style headings where the format has them).
pub fn extract(filename: &str, bytes: &[u8], limits: Limits) -> Result<String, KnowError> {
    if bytes.len() > limits.max_file_bytes {
        return Err(KnowError::TooLarge(format!(
            "`{filename}` is {} bytes; the limit is {} ([knowledge] max_file_bytes)",
            bytes.len(),
            limits.max_file_bytes
        )));
    }
    let doc = |m: String| KnowError::Document(format!("`{filename}`: {m}"));
    let text = match Format::of(filename, bytes)? {
        Format::Text | Format::Markdown => std::str::from_utf8(bytes)
            .map_err(|e| doc(format!("not UTF-8 text ({e})")))?
            .to_string(),
        Format::Html => html2text::from_read(bytes, 100_000)
            .map_err(|e| doc(format!("unreadable HTML ({e})")))?,
        Format::Pdf => pdf_text(bytes).map_err(doc)?,
    };
    let text = text.replace("\r\n", "\n");
    if let Some(n) = text
        .lines()
        .map(str::len)
        .find(|n| *n > limits.max_line_bytes)
    {
        return Err(doc(format!(
            "a line of {n} bytes is longer than the {} allowed ([knowledge] max_line_bytes); \
             break the text into lines or paragraphs",
            limits.max_line_bytes
        )));
    }
    if text.trim().is_empty() {
        return Err(doc("no text in it".into()));
    }
    Ok(text)
}

/// PDF text. The parser panics on some malformed files: that is a corrupt document too.
fn pdf_text(bytes: &[u8]) -> Result<String, String> {
    let bytes = bytes.to_vec();
    let run = std::panic::catch_unwind(move || pdf_extract::extract_text_from_mem(&bytes));
    match run {
        Ok(Ok(t)) => Ok(t),
        Ok(Err(e)) => Err(format!("not a readable PDF ({e})")),
        Err(_) => Err("not a readable PDF (the parser gave up on it)".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_file_bytes: 1 << 20,
        max_line_bytes: 1000,
    };

    #[test]
    fn formats_by_extension_then_content() {
        assert_eq!(Format::of("a.MD", b"x").unwrap(), Format::Markdown);
        assert_eq!(Format::of("x", b"%PDF-1.4").unwrap(), Format::Pdf);
        assert_eq!(
            Format::of("page", b"<!DOCTYPE html><html>").unwrap(),
            Format::Html
        );
        assert_eq!(Format::of("notes", b"plain").unwrap(), Format::Text);
        assert!(Format::of("blob.bin", &[0xff, 0xfe, 0x00]).is_err());
    }

    #[test]
    fn html_headings_become_markdown_headings() {
        let t = extract(
            "a.html",
            b"<html><body><h1>Install</h1><p>Run the <b>installer</b>.</p><script>x()</script></body></html>",
            LIMITS,
        )
        .unwrap();
        assert!(t.contains("# Install"), "{t}");
        assert!(t.contains("installer"), "{t}");
    }

    #[test]
    fn bad_documents_are_refused_with_a_reason() {
        let e = extract("e.txt", b"  \n\n ", LIMITS)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no text"), "{e}");
        let e = extract("c.pdf", b"%PDF-1.4 garbage", LIMITS)
            .unwrap_err()
            .to_string();
        assert!(e.contains("PDF"), "{e}");
        let long = "x".repeat(2000);
        let e = extract("l.txt", long.as_bytes(), LIMITS)
            .unwrap_err()
            .to_string();
        assert!(e.contains("max_line_bytes"), "{e}");
        let big = vec![b'a'; (1 << 20) + 1];
        assert!(matches!(
            extract("b.txt", &big, LIMITS),
            Err(KnowError::TooLarge(_))
        ));
        assert!(extract("u.txt", &[0x61, 0xff], LIMITS).is_err());
    }
}
