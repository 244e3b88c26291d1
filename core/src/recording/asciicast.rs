//! The asciicast v2 writer: one JSON header line, then one JSON array line per event,
//! `[seconds, code, data]`, seconds relative to the start of the recording.
//!
//! Terminal output arrives in arbitrary chunks that may split a UTF-8 sequence; the writer keeps
//! an incomplete tail (at most 3 bytes) for the next chunk of the same stream, and turns bytes
//! that are not UTF-8 into U+FFFD, so every line is valid JSON. Format:
//! <https://docs.asciinema.org/manual/asciicast/v2/>.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Width used when the channel asked for no terminal (an `exec` without a pty).
pub const DEFAULT_WIDTH: u32 = 80;
/// Height used when the channel asked for no terminal.
pub const DEFAULT_HEIGHT: u32 = 24;

/// The header line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Always 2.
    pub version: u32,
    /// Terminal columns at the start.
    pub width: u32,
    /// Terminal rows at the start.
    pub height: u32,
    /// Start, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    /// The command of an `exec` channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// A title: who, where, as whom.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Environment: `TERM` (and `SHELL` if known).
    #[serde(default, skip_serializing_if = "Env::is_empty")]
    pub env: Env,
}

/// The header's `env` object.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Env {
    /// The terminal type the client asked for.
    #[serde(rename = "TERM", default, skip_serializing_if = "Option::is_none")]
    pub term: Option<String>,
    /// The shell, if known.
    #[serde(rename = "SHELL", default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
}

impl Env {
    fn is_empty(&self) -> bool {
        self.term.is_none() && self.shell.is_none()
    }
}

impl Header {
    /// A header for a terminal of `width` x `height` started at `timestamp` (Unix seconds).
    pub fn new(width: u32, height: u32, timestamp: i64) -> Self {
        Self {
            version: 2,
            width: width.max(1),
            height: height.max(1),
            timestamp: Some(timestamp),
            command: None,
            title: None,
            env: Env::default(),
        }
    }

    /// The header as one line, newline included.
    pub fn line(&self) -> String {
        let mut s = serde_json::to_string(self).unwrap_or_else(|_| {
            // Unreachable: a struct of strings and integers always serialises.
            format!(
                "{{\"version\":2,\"width\":{},\"height\":{}}}",
                self.width, self.height
            )
        });
        s.push('\n');
        s
    }
}

/// An event's code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    /// `o`: terminal output.
    Output,
    /// `i`: keyboard input.
    Input,
    /// `r`: terminal resize, data `COLSxROWS`.
    Resize,
    /// `m`: a marker with a label.
    Marker,
}

impl Code {
    /// The one-letter code.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Output => "o",
            Code::Input => "i",
            Code::Resize => "r",
            Code::Marker => "m",
        }
    }
}

/// Decodes UTF-8 that arrives in pieces: an incomplete sequence at the end waits for the next
/// piece; invalid bytes become U+FFFD.
#[derive(Clone, Debug, Default)]
pub struct Utf8Carry {
    tail: Vec<u8>,
}

impl Utf8Carry {
    /// The text of `data`, after what was carried; keeps a new incomplete tail.
    pub fn decode(&mut self, data: &[u8]) -> String {
        let joined;
        let mut rest: &[u8] = if self.tail.is_empty() {
            data
        } else {
            let mut t = std::mem::take(&mut self.tail);
            t.extend_from_slice(data);
            joined = t;
            &joined
        };
        let mut out = String::with_capacity(rest.len());
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    out.push_str(s);
                    return out;
                }
                Err(e) => {
                    let (valid, after) = rest.split_at(e.valid_up_to());
                    out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                    match e.error_len() {
                        Some(n) => {
                            out.push('\u{FFFD}');
                            rest = after.get(n..).unwrap_or_default();
                        }
                        None => {
                            self.tail = after.to_vec();
                            return out;
                        }
                    }
                }
            }
        }
    }

    /// What is left at the end: an incomplete sequence becomes U+FFFD.
    pub fn finish(&mut self) -> String {
        if self.tail.is_empty() {
            String::new()
        } else {
            self.tail.clear();
            "\u{FFFD}".to_owned()
        }
    }
}

/// Writes one recording's event lines; the caller writes [`Header::line`] first.
#[derive(Clone, Debug, Default)]
pub struct CastWriter {
    output: Utf8Carry,
    input: Utf8Carry,
    /// The time of the last line written (times never go backwards).
    last: Duration,
}

impl CastWriter {
    /// A writer for a recording that starts now.
    pub fn new() -> Self {
        Self::default()
    }

    /// An `o` line for output bytes `data` at `at` since the start (`None` if every byte waits
    /// for the rest of its UTF-8 sequence).
    pub fn output(&mut self, at: Duration, data: &[u8]) -> Option<String> {
        let text = self.output.decode(data);
        self.text_line(at, Code::Output, &text)
    }

    /// An `i` line for input bytes.
    pub fn input(&mut self, at: Duration, data: &[u8]) -> Option<String> {
        let text = self.input.decode(data);
        self.text_line(at, Code::Input, &text)
    }

    /// An `r` line: the terminal is now `cols` x `rows`.
    pub fn resize(&mut self, at: Duration, cols: u32, rows: u32) -> String {
        self.line(at, Code::Resize, &format!("{cols}x{rows}"))
    }

    /// An `m` line with `label`.
    pub fn marker(&mut self, at: Duration, label: &str) -> String {
        self.line(at, Code::Marker, label)
    }

    /// The lines that flush what is still carried (an incomplete UTF-8 tail), at the end.
    pub fn finish(&mut self, at: Duration) -> Vec<String> {
        let mut lines = Vec::new();
        let out = self.output.finish();
        if let Some(l) = self.text_line(at, Code::Output, &out) {
            lines.push(l);
        }
        let inp = self.input.finish();
        if let Some(l) = self.text_line(at, Code::Input, &inp) {
            lines.push(l);
        }
        lines
    }

    fn text_line(&mut self, at: Duration, code: Code, text: &str) -> Option<String> {
        if text.is_empty() {
            None
        } else {
            Some(self.line(at, code, text))
        }
    }

    /// `[seconds, "code", "data"]` and a newline; seconds with microseconds, never less than
    /// the previous line's.
    pub fn line(&mut self, at: Duration, code: Code, data: &str) -> String {
        let at = at.max(self.last);
        self.last = at;
        let data = serde_json::to_string(data).unwrap_or_else(|_| "\"\"".to_owned());
        format!(
            "[{}.{:06}, \"{}\", {}]\n",
            at.as_secs(),
            at.subsec_micros(),
            code.as_str(),
            data
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_line_has_the_v2_fields() {
        let mut h = Header::new(120, 40, 1_700_000_000);
        h.env.term = Some("xterm-256color".into());
        h.command = Some("uptime".into());
        let v: serde_json::Value = serde_json::from_str(h.line().trim_end()).unwrap();
        assert_eq!(v["version"], 2);
        assert_eq!(v["width"], 120);
        assert_eq!(v["height"], 40);
        assert_eq!(v["timestamp"], 1_700_000_000);
        assert_eq!(v["env"]["TERM"], "xterm-256color");
        assert_eq!(v["command"], "uptime");
        assert!(v.get("title").is_none());
        assert!(h.line().ends_with("}\n"));
    }

    #[test]
    fn lines_are_json_arrays_with_relative_times() {
        let mut w = CastWriter::new();
        let l = w
            .output(Duration::from_millis(1500), b"hello \"x\"\r\n")
            .unwrap();
        assert_eq!(l, "[1.500000, \"o\", \"hello \\\"x\\\"\\r\\n\"]\n");
        let v: serde_json::Value = serde_json::from_str(l.trim_end()).unwrap();
        assert_eq!(v[2], "hello \"x\"\r\n");
        assert_eq!(
            w.resize(Duration::from_secs(2), 100, 30),
            "[2.000000, \"r\", \"100x30\"]\n"
        );
        // Time never goes backwards.
        let m = w.marker(Duration::from_secs(1), "gap");
        assert!(m.starts_with("[2.000000, \"m\""), "{m}");
        assert_eq!(
            w.input(Duration::from_micros(2_000_001), b"ls\r").unwrap(),
            "[2.000001, \"i\", \"ls\\r\"]\n"
        );
    }

    #[test]
    fn utf8_split_across_chunks_is_carried() {
        let mut w = CastWriter::new();
        let euro = "€".as_bytes(); // e2 82 ac
        assert_eq!(w.output(Duration::ZERO, &euro[..1]), None);
        assert_eq!(w.output(Duration::ZERO, &euro[1..2]), None);
        let l = w.output(Duration::ZERO, &[euro[2], b'!']).unwrap();
        let v: serde_json::Value = serde_json::from_str(l.trim_end()).unwrap();
        assert_eq!(v[2], "€!");
    }

    #[test]
    fn invalid_bytes_become_replacement_characters() {
        let mut c = Utf8Carry::default();
        assert_eq!(c.decode(b"a\xffb\xc0"), "a\u{FFFD}b\u{FFFD}");
        assert_eq!(c.decode(b"\xe2\x82"), "");
        assert_eq!(c.finish(), "\u{FFFD}");
        assert_eq!(c.finish(), "");
        let mut w = CastWriter::new();
        assert_eq!(w.output(Duration::ZERO, b"\xf0\x9f"), None);
        let end = w.finish(Duration::from_secs(1));
        assert_eq!(end, vec!["[1.000000, \"o\", \"\u{FFFD}\"]\n".to_owned()]);
    }

    #[test]
    fn control_characters_are_escaped() {
        let mut w = CastWriter::new();
        let l = w.output(Duration::ZERO, b"\x1b[31mred\x1b[0m\x00").unwrap();
        assert!(!l.trim_end().contains('\u{1b}'));
        let v: serde_json::Value = serde_json::from_str(l.trim_end()).unwrap();
        assert_eq!(v[2], "\u{1b}[31mred\u{1b}[0m\u{0}");
    }
}
