//! `[ssh]` in the configuration file: the listener and its limits, with safe defaults.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// The SSH gateway's settings. Every key has a default; see `packaging/sallyportd.example.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SshSettings {
    /// Listen address. Default `0.0.0.0:2222` (`sallyportd dev`: `127.0.0.1:2222`).
    pub listen: SocketAddr,
    /// Most TCP connections at once, authenticated or not; more are closed at once.
    pub max_connections: usize,
    /// Most authenticated sessions per user at once; more are refused at login.
    pub max_sessions_per_user: usize,
    /// Most channels (tunnels) open at once in one session; more are refused.
    pub max_channels_per_session: usize,
    /// Time from TCP accept to a successful login; slower clients are disconnected.
    #[serde(deserialize_with = "duration")]
    pub handshake_timeout: Duration,
    /// A tunnel that moves no byte for this long is closed (reason `idle`); a session without
    /// tunnels for this long is disconnected.
    #[serde(deserialize_with = "duration")]
    pub idle_timeout: Duration,
    /// Time allowed to connect to a target.
    #[serde(deserialize_with = "duration")]
    pub connect_timeout: Duration,
    /// Interval of keepalive requests to a silent client (three unanswered end the session).
    #[serde(deserialize_with = "duration")]
    pub keepalive_interval: Duration,
    /// Authentication requests allowed on one connection (OpenSSH's `MaxAuthTries`).
    pub max_auth_attempts: usize,
    /// Failed logins from one source address within `auth_failure_window` before it is locked
    /// out (each failure is forgiven after `auth_failure_window / auth_failures_per_source`).
    pub auth_failures_per_source: u32,
    /// Failed logins for one user name within `auth_failure_window` before it is locked out.
    pub auth_failures_per_user: u32,
    /// The window over which failed logins are counted.
    #[serde(deserialize_with = "duration")]
    pub auth_failure_window: Duration,
    /// Proxy mode: environment variables passed on to the target (`env` requests; a trailing
    /// `*` matches a prefix). `TERM` travels with the pty request. Default `LANG`, `LC_*`.
    pub proxy_env: Vec<String>,
    /// Proxy mode: accept a target that has no pinned host key, whatever key it shows (the
    /// key is logged and journaled, not pinned). Off by default: such targets are refused.
    pub dangerous_trust_first_use_host_keys: bool,
    /// `sallyport login`: the longest an SSH user certificate from the user CA is valid (it is
    /// cut shorter by the grants' expiry). Default 8 h, at most 24 h.
    #[serde(deserialize_with = "duration")]
    pub certificate_max_validity: Duration,
    /// `sallyport login`: the lifetime of the API token it receives. Default 8 h, at most 24 h.
    #[serde(deserialize_with = "duration")]
    pub login_token_ttl: Duration,
    /// `[ssh.recording]`: proxy-mode recordings (output always; input if `input = true`).
    pub recording: super::recording::RecordingSettings,
}

/// The default listen address for `run`.
pub const DEFAULT_SSH_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 2222);

impl Default for SshSettings {
    fn default() -> Self {
        Self {
            listen: DEFAULT_SSH_LISTEN,
            max_connections: 1024,
            max_sessions_per_user: 100,
            max_channels_per_session: 16,
            handshake_timeout: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(30 * 60),
            connect_timeout: Duration::from_secs(10),
            keepalive_interval: Duration::from_secs(30),
            max_auth_attempts: 6,
            auth_failures_per_source: 10,
            auth_failures_per_user: 10,
            auth_failure_window: Duration::from_secs(5 * 60),
            proxy_env: vec!["LANG".to_owned(), "LC_*".to_owned()],
            dangerous_trust_first_use_host_keys: false,
            certificate_max_validity: Duration::from_secs(8 * 3600),
            login_token_ttl: Duration::from_secs(8 * 3600),
            recording: Default::default(),
        }
    }
}

impl SshSettings {
    /// Checks the values; the error names the key (`ssh.…`) and what is wrong.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let positive = [
            ("ssh.max_connections", self.max_connections),
            ("ssh.max_sessions_per_user", self.max_sessions_per_user),
            (
                "ssh.max_channels_per_session",
                self.max_channels_per_session,
            ),
            ("ssh.max_auth_attempts", self.max_auth_attempts),
            (
                "ssh.auth_failures_per_source",
                self.auth_failures_per_source as usize,
            ),
            (
                "ssh.auth_failures_per_user",
                self.auth_failures_per_user as usize,
            ),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err((key, "must be at least 1".into()));
            }
        }
        let durations = [
            ("ssh.handshake_timeout", self.handshake_timeout),
            ("ssh.idle_timeout", self.idle_timeout),
            ("ssh.connect_timeout", self.connect_timeout),
            ("ssh.keepalive_interval", self.keepalive_interval),
            ("ssh.auth_failure_window", self.auth_failure_window),
        ];
        for (key, value) in durations {
            if value < Duration::from_secs(1) {
                return Err((key, "must be at least 1s".into()));
            }
        }
        for (key, value) in [
            (
                "ssh.certificate_max_validity",
                self.certificate_max_validity,
            ),
            ("ssh.login_token_ttl", self.login_token_ttl),
        ] {
            if value < Duration::from_secs(60) || value > Duration::from_secs(24 * 3600) {
                return Err((key, "must be between 1m and 24h".into()));
            }
        }
        if self.max_channels_per_session > 1024 {
            return Err((
                "ssh.max_channels_per_session",
                "at most 1024 (each channel may buffer up to 1 MiB)".into(),
            ));
        }
        self.recording.validate()?;
        Ok(())
    }
}

/// A duration written as text (`"20s"`, `"30m"`, `"1h 30m"`).
fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text).map_err(|e| {
        serde::de::Error::custom(format!("{text:?} is not a duration like \"20s\" ({e})"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_text_durations_parse() {
        SshSettings::default().validate().unwrap();
        let s: SshSettings = toml::from_str(
            "listen = \"127.0.0.1:2200\"\nidle_timeout = \"5m\"\nmax_sessions_per_user = 2\n",
        )
        .unwrap();
        assert_eq!(s.listen.port(), 2200);
        assert_eq!(s.idle_timeout, Duration::from_secs(300));
        assert_eq!(s.max_sessions_per_user, 2);
        assert_eq!(s.handshake_timeout, Duration::from_secs(20));
    }

    #[test]
    fn bad_values_name_the_key() {
        let s = SshSettings {
            max_connections: 0,
            ..SshSettings::default()
        };
        assert_eq!(s.validate().unwrap_err().0, "ssh.max_connections");
        let s = SshSettings {
            connect_timeout: Duration::from_millis(10),
            ..SshSettings::default()
        };
        assert_eq!(s.validate().unwrap_err().0, "ssh.connect_timeout");
        let e = toml::from_str::<SshSettings>("idle_timeout = \"soon\"\n").unwrap_err();
        assert!(e.to_string().contains("idle_timeout"), "{e}");
        let e = toml::from_str::<SshSettings>("shell = true\n").unwrap_err();
        assert!(e.to_string().contains("shell"), "{e}");
    }

    #[test]
    fn login_lifetimes_default_to_8h_and_stay_within_a_day() {
        let d = SshSettings::default();
        assert_eq!(d.certificate_max_validity, Duration::from_secs(8 * 3600));
        assert_eq!(d.login_token_ttl, Duration::from_secs(8 * 3600));
        let s: SshSettings = toml::from_str("certificate_max_validity = \"25h\"\n").unwrap();
        assert_eq!(s.validate().unwrap_err().0, "ssh.certificate_max_validity");
        let s: SshSettings = toml::from_str("login_token_ttl = \"30s\"\n").unwrap();
        assert_eq!(s.validate().unwrap_err().0, "ssh.login_token_ttl");
        let s: SshSettings = toml::from_str("certificate_max_validity = \"1h\"\n").unwrap();
        s.validate().unwrap();
    }
}
