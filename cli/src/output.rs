//! Tables and JSON on standard output.
//!
//! Table mode renders typed views as aligned columns under a header row. JSON mode prints the
//! gateway's JSON as it came (pretty-printed), so fields the CLI does not know survive. Every
//! cell that came from the gateway goes through [`clean`], so a comment or reason holding
//! terminal escape sequences cannot rewrite the operator's screen.

use std::io::Write;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::CliError;

/// How results are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns with a header row.
    Table,
    /// The gateway's JSON.
    Json,
}

/// Rows under a header, rendered with columns aligned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table with these column names.
    pub fn new(header: &[&'static str]) -> Self {
        Self {
            header: header.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; cells are cleaned of control characters.
    pub fn row<I, S>(&mut self, cells: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.rows
            .push(cells.into_iter().map(|c| clean(c.as_ref())).collect());
    }

    /// The rendered text: columns separated by two spaces, no trailing blanks, one line per row.
    pub fn render(&self) -> String {
        let columns = self
            .rows
            .iter()
            .map(Vec::len)
            .chain([self.header.len()])
            .max()
            .unwrap_or(0);
        let mut widths = vec![0usize; columns];
        let header: Vec<String> = self.header.iter().map(|h| (*h).to_owned()).collect();
        for line in std::iter::once(&header).chain(&self.rows) {
            for (w, cell) in widths.iter_mut().zip(line) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for line in std::iter::once(&header).chain(&self.rows) {
            let mut text = String::new();
            for (i, (cell, w)) in line.iter().zip(&widths).enumerate() {
                if i > 0 {
                    text.push_str("  ");
                }
                text.push_str(cell);
                text.extend(std::iter::repeat_n(
                    ' ',
                    w.saturating_sub(cell.chars().count()),
                ));
            }
            out.push_str(text.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Text from the gateway made safe for a terminal and a single line: control characters
/// (newlines, ESC, …) are shown escaped, and an empty value is shown as `-`.
pub fn clean(s: &str) -> String {
    if s.is_empty() {
        return "-".to_owned();
    }
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// A list joined with commas, or `-` when empty.
pub fn joined<T: std::fmt::Display>(items: &[T]) -> String {
    let parts: Vec<String> = items.iter().map(ToString::to_string).collect();
    if parts.is_empty() {
        "-".to_owned()
    } else {
        parts.join(",")
    }
}

/// An optional value, or `-`.
pub fn or_dash<T: std::fmt::Display>(v: Option<&T>) -> String {
    v.map_or_else(|| "-".to_owned(), ToString::to_string)
}

/// Where results go, in the chosen format.
#[derive(Debug, Clone, Copy)]
pub struct Out {
    format: Format,
}

impl Out {
    /// Output in `format`.
    pub fn new(format: Format) -> Self {
        Self { format }
    }

    /// The format.
    pub fn format(self) -> Format {
        self.format
    }

    /// Prints a JSON array from the gateway, or the table `render` makes of it.
    pub fn list<T: DeserializeOwned>(
        self,
        url: &str,
        value: Value,
        render: fn(&[T]) -> Table,
    ) -> Result<(), CliError> {
        match self.format {
            Format::Json => self.json(&value),
            Format::Table => {
                let items: Vec<T> = decode(url, value)?;
                self.text(&render(&items).render())
            }
        }
    }

    /// Prints one JSON object from the gateway, or the table `render` makes of it.
    pub fn one<T: DeserializeOwned>(
        self,
        url: &str,
        value: Value,
        render: fn(&T) -> Table,
    ) -> Result<(), CliError> {
        match self.format {
            Format::Json => self.json(&value),
            Format::Table => {
                let item: T = decode(url, value)?;
                self.text(&render(&item).render())
            }
        }
    }

    /// Prints a value as pretty JSON with a final newline.
    pub fn json(self, value: &Value) -> Result<(), CliError> {
        let mut text =
            serde_json::to_string_pretty(value).map_err(|e| CliError::Output(e.into()))?;
        text.push('\n');
        self.text(&text)
    }

    /// Writes text to standard output as is.
    pub fn text(self, text: &str) -> Result<(), CliError> {
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(text.as_bytes())
            .and_then(|()| stdout.flush())
            .map_err(CliError::Output)
    }
}

/// Reads a gateway answer as the typed view the API promises.
pub fn decode<T: DeserializeOwned>(url: &str, value: Value) -> Result<T, CliError> {
    serde_json::from_value(value).map_err(|e| CliError::BadResponse {
        url: url.to_owned(),
        why: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_columns_without_trailing_blanks() {
        let mut t = Table::new(&["NAME", "ROLES", "STATE"]);
        t.row(["alice", "admin,auditor", "active"]);
        t.row(["bob", "engineer", ""]);
        assert_eq!(
            t.render(),
            "NAME   ROLES          STATE\n\
             alice  admin,auditor  active\n\
             bob    engineer       -\n"
        );
    }

    #[test]
    fn header_only_when_empty() {
        assert_eq!(Table::new(&["A", "B"]).render(), "A  B\n");
    }

    #[test]
    fn wide_characters_count_as_characters() {
        let mut t = Table::new(&["X", "Y"]);
        t.row(["é", "1"]);
        assert_eq!(t.render(), "X  Y\né  1\n");
    }

    #[test]
    fn cells_cannot_carry_escapes_or_newlines() {
        let mut t = Table::new(&["COMMENT"]);
        t.row(["evil\u{1b}[2J\nline"]);
        let text = t.render();
        assert!(!text.contains('\u{1b}'));
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(text.contains("evil\\u{1b}[2J\\nline"), "{text}");
    }

    #[test]
    fn helpers() {
        assert_eq!(joined::<String>(&[]), "-");
        assert_eq!(joined(&["a", "b"]), "a,b");
        assert_eq!(or_dash::<u8>(None), "-");
        assert_eq!(or_dash(Some(&3)), "3");
    }

    #[test]
    fn decode_names_the_url() {
        let e = decode::<Vec<u8>>("https://gw/v1/x", Value::Bool(true)).unwrap_err();
        assert!(e.to_string().contains("https://gw/v1/x"), "{e}");
    }
}
