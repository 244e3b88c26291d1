//! Scanning a gateway's state directory for private key material.
//!
//! The suites that check "no private key reaches the disk" read every file under a state
//! directory (the SQLite database and its WAL included) and look for the secrets' bytes as they
//! are, in hex and in base64 (padded, unpadded, URL-safe), and for PEM / OpenSSH private-key
//! markers. [`Needles`] says what to look for, [`read_tree`] takes a snapshot of a directory and
//! [`assert_absent`] fails the test, naming the needle and the file, when one is there.

use std::fmt::Display;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine;

/// Markers of a private key in PEM or OpenSSH form, in any file.
pub const PRIVATE_KEY_MARKERS: [&str; 4] = [
    "PRIVATE KEY",
    "OPENSSH PRIVATE",
    "BEGIN EC PRIVATE",
    "BEGIN RSA PRIVATE",
];

/// What must not be found: each needle with a name for the failure message.
#[derive(Debug, Clone)]
pub struct Needles(Vec<(String, Vec<u8>)>);

impl Default for Needles {
    fn default() -> Self {
        Self::new()
    }
}

impl Needles {
    /// The private-key markers ([`PRIVATE_KEY_MARKERS`]) and nothing else yet.
    pub fn new() -> Self {
        Self(
            PRIVATE_KEY_MARKERS
                .iter()
                .map(|m| ((*m).to_owned(), m.as_bytes().to_vec()))
                .collect(),
        )
    }

    /// A secret in every form it could be written in: raw, hex, base64, base64 unpadded and
    /// base64url (unpadded), each named `WHAT raw`, `WHAT hex` and so on.
    pub fn secret(&mut self, what: impl Display, bytes: &[u8]) -> &mut Self {
        self.0.push((format!("{what} raw"), bytes.to_vec()));
        self.0
            .push((format!("{what} hex"), hex::encode(bytes).into_bytes()));
        self.0.push((
            format!("{what} base64"),
            STANDARD.encode(bytes).into_bytes(),
        ));
        self.0.push((
            format!("{what} base64 unpadded"),
            STANDARD_NO_PAD.encode(bytes).into_bytes(),
        ));
        self.0.push((
            format!("{what} base64url"),
            URL_SAFE_NO_PAD.encode(bytes).into_bytes(),
        ));
        self
    }

    /// Exactly these bytes (text already in its written form, e.g. a key file's body).
    pub fn literal(&mut self, what: impl Display, bytes: &[u8]) -> &mut Self {
        self.0.push((what.to_string(), bytes.to_vec()));
        self
    }

    /// The needles, each with its name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.0.iter().map(|(w, n)| (w.as_str(), n.as_slice()))
    }
}

/// Whether `needle` (non-empty) occurs in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// Every regular file under `dir` (recursively) with its contents, as they are now. Files that
/// vanish or cannot be read between listing and reading are left out.
///
/// # Panics
///
/// If a directory under `dir` cannot be listed: the scan would be incomplete.
#[allow(clippy::panic)] // Test support: an incomplete scan must fail the calling test.
pub fn read_tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        let entries = std::fs::read_dir(&d)
            .unwrap_or_else(|e| panic!("cannot list {} for the scan: {e}", d.display()));
        for entry in entries {
            let path = entry
                .unwrap_or_else(|e| panic!("cannot list {} for the scan: {e}", d.display()))
                .path();
            if path.is_dir() {
                dirs.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                out.push((path, bytes));
            }
        }
    }
    out
}

/// Fails the test when any needle occurs in any of `files` (as [`read_tree`] returns them),
/// naming the needle and the file.
///
/// # Panics
///
/// When a needle is found.
#[allow(clippy::panic)] // Test support: a leak fails the calling test.
pub fn assert_absent(files: &[(PathBuf, Vec<u8>)], needles: &Needles) {
    for (path, bytes) in files {
        for (what, needle) in needles.iter() {
            if contains(bytes, needle) {
                panic!("{what} found in {}", path.display());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &[u8])]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        }
        dir
    }

    #[test]
    fn a_clean_tree_passes_and_every_file_is_read() {
        let dir = tree(&[("a", b"nothing"), ("sub/deeper/b", b"to see")]);
        let files = read_tree(dir.path());
        assert_eq!(files.len(), 2);
        let mut needles = Needles::new();
        needles.secret("seed", &[0xde, 0xad, 0xbe, 0xef, 0x01]);
        assert_absent(&files, &needles);
    }

    /// A private key as `ssh-keygen` would write it, made now (no key text in the source).
    fn openssh_private_key_text() -> String {
        use russh::keys::ssh_key::{private::Ed25519Keypair, LineEnding};
        let pair = Ed25519Keypair::from_seed(&[7; 32]);
        russh::keys::PrivateKey::from(pair)
            .to_openssh(LineEnding::LF)
            .unwrap()
            .to_string()
    }

    #[test]
    fn each_form_of_a_secret_and_each_marker_is_found() {
        let secret = [0xfbu8, 0xff, 0x00, 0x10, 0x7e, 0x3f];
        let mut needles = Needles::new();
        needles.secret("seed", &secret);
        let forms: Vec<Vec<u8>> = vec![
            secret.to_vec(),
            hex::encode(secret).into_bytes(),
            STANDARD.encode(secret).into_bytes(),
            URL_SAFE_NO_PAD.encode(secret).into_bytes(),
            openssh_private_key_text().into_bytes(),
            concat!("-----BEGIN EC ", "PRIVATE KEY-----")
                .as_bytes()
                .to_vec(),
        ];
        for form in forms {
            let dir = tree(&[("sub/db", &[b"xx".as_slice(), &form, b"yy"].concat())]);
            let files = read_tree(dir.path());
            let found = std::panic::catch_unwind(|| assert_absent(&files, &needles));
            assert!(found.is_err(), "{form:?} not found");
        }
    }
}
