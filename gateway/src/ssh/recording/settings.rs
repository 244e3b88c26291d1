//! `[ssh.recording]`: what proxy-mode recordings hold.

use serde::Deserialize;

/// Recording settings. Output is always recorded; everything here has a safe default.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecordingSettings {
    /// Also record keyboard input (asciicast `i` events). Default off: input holds passwords
    /// typed at prompts that do not echo.
    pub input: bool,
    /// Largest recording of one channel, in MiB of asciicast text (1 to 256, default 64). A
    /// bulk transfer through `exec` would otherwise fill the database: past the limit a marker
    /// says where recording stopped, and `ssh.recording.end` counts the bytes not recorded.
    pub max_mib: u64,
}

impl Default for RecordingSettings {
    fn default() -> Self {
        Self {
            input: false,
            max_mib: 64,
        }
    }
}

impl RecordingSettings {
    /// The limit in bytes.
    pub fn max_bytes(&self) -> u64 {
        self.max_mib.saturating_mul(1024 * 1024)
    }

    /// Checks the values; the error names the key.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if !(1..=256).contains(&self.max_mib) {
            return Err((
                "ssh.recording.max_mib",
                "must be between 1 and 256 (MiB)".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::ssh::SshSettings;

    #[test]
    fn input_is_off_by_default_and_unknown_keys_are_refused() {
        let s: SshSettings = toml::from_str("").unwrap();
        assert!(!s.recording.input);
        let s: SshSettings = toml::from_str("[recording]\ninput = true\n").unwrap();
        assert!(s.recording.input);
        let e = toml::from_str::<SshSettings>("[recording]\ninputs = true\n").unwrap_err();
        assert!(e.to_string().contains("inputs"), "{e}");
        assert_eq!(s.recording.max_bytes(), 64 * 1024 * 1024);
        assert!(s.validate().is_ok());
        let s: SshSettings = toml::from_str("[recording]\nmax_mib = 0\n").unwrap();
        assert_eq!(s.validate().unwrap_err().0, "ssh.recording.max_mib");
    }
}
