//! `sallyportd run` configuration: a TOML file, validated once at start-up with errors that
//! name the key. Example with every key: `packaging/sallyportd.example.toml`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::secrets::SsmPath;

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// This gateway's name in audit records and log streams (default: the host name).
    #[serde(default)]
    pub instance: Option<String>,
    /// Where the gateway keeps state (the SQLite file by default). Default `/var/lib/sallyport`.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// The control-plane store.
    #[serde(default)]
    pub store: StoreConfig,
    /// Where the gateway's secrets come from.
    pub secrets: SecretsConfig,
    /// The HTTPS API.
    #[serde(default)]
    pub api: ApiConfig,
    /// The SSH gateway (`[ssh]`): listener and limits.
    #[serde(default)]
    pub ssh: crate::ssh::SshSettings,
    /// Where the audit journal is shipped.
    #[serde(default)]
    pub audit: AuditConfig,
    /// The WireGuard endpoint (`[wireguard]`). Absent: no VPN.
    #[serde(default)]
    pub wireguard: Option<crate::wireguard::WireguardSettings>,
}

/// `[audit]`: the journal's sinks. Each keeps a checkpoint in the store and resumes from it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Also write every journal record as one JSON line on stdout (for journald or the
    /// CloudWatch agent). Default off.
    #[serde(default)]
    pub stdout: bool,
    /// `[audit.cloudwatch]`: ship to CloudWatch Logs. Absent: not shipped.
    #[serde(default)]
    pub cloudwatch: Option<CloudWatchConfig>,
}

/// `[audit.cloudwatch]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudWatchConfig {
    /// The log group (created by the deployment, KMS-encrypted, with its retention).
    pub log_group: String,
    /// The log stream; one per gateway. Default: the instance name.
    #[serde(default)]
    pub stream: Option<String>,
    /// AWS region (default: from the environment / instance metadata).
    #[serde(default)]
    pub region: Option<String>,
    /// Endpoint override (VPC endpoint, or a local test endpoint).
    #[serde(default)]
    pub endpoint_url: Option<String>,
    /// Create the log group if it is missing (it then has no KMS key and no retention).
    /// Default off: the deployment creates it.
    #[serde(default)]
    pub create_log_group: bool,
}

/// `[store]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite://PATH` or `postgres://USER:PASSWORD@HOST/DB?sslmode=verify-full&sslrootcert=CA`.
    /// Default: `sqlite://STATE_DIR/sallyport.db`.
    #[serde(default)]
    pub url: Option<String>,
    /// Accept a PostgreSQL URL without `sslmode=verify-full` (the database's identity is then
    /// not verified). Off by default; for a database on the same host only.
    #[serde(default)]
    pub dangerous_unverified_database_tls: bool,
    /// PostgreSQL: how long the gateway keeps deciding on its last policy snapshot when it
    /// cannot reach the database; after that it denies everything (live sessions end) until
    /// the database answers again. Default `60s`; at least `5s`.
    #[serde(default, deserialize_with = "opt_duration")]
    pub offline_grace: Option<std::time::Duration>,
    /// PostgreSQL: how often the snapshot is compared with the database besides
    /// LISTEN/NOTIFY (a missed notification is caught up within this). Default `30s`; at
    /// least `1s`.
    #[serde(default, deserialize_with = "opt_duration")]
    pub resync_interval: Option<std::time::Duration>,
}

fn opt_duration<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<std::time::Duration>, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text).map(Some).map_err(|e| {
        serde::de::Error::custom(format!(
            "{text:?} is not a duration like \"30s\" or \"2m\": {e}"
        ))
    })
}

/// `[secrets]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsConfig {
    /// SSM Parameter Store path holding the five SecureStrings (`sallyportd secrets init`).
    pub ssm_path: String,
    /// AWS region (default: from the environment / instance metadata).
    #[serde(default)]
    pub region: Option<String>,
    /// Endpoint override (VPC endpoint, or a local test endpoint).
    #[serde(default)]
    pub endpoint_url: Option<String>,
}

/// `[api]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Listen address. Default `0.0.0.0:8443`.
    #[serde(default = "default_api_listen")]
    pub listen: SocketAddr,
    /// PEM certificate chain; with `tls_key_file`. Without both, a CA and certificate are made
    /// in memory at start-up and the CA is written to `STATE_DIR/api-ca.pem`.
    #[serde(default)]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key for `tls_cert_file`.
    #[serde(default)]
    pub tls_key_file: Option<PathBuf>,
    /// Names (DNS or IP) for the generated certificate. Default: `localhost` and the listen IP.
    #[serde(default)]
    pub names: Vec<String>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: default_api_listen(),
            tls_cert_file: None,
            tls_key_file: None,
            names: Vec::new(),
        }
    }
}

fn default_state_dir() -> PathBuf {
    PathBuf::from("/var/lib/sallyport")
}

fn default_api_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 8443))
}

/// A configuration that cannot be used, naming the key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML does not parse or has unknown or mistyped keys.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What the parser said, with the key.
        message: String,
    },
    /// A value is not acceptable.
    #[error("{path}: {key}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// The key.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl Config {
    /// Reads and validates a file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        Self::parse(&text, &shown)
    }

    /// Parses and validates TOML text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_owned(),
            message: e.to_string(),
        })?;
        config.validate(origin)?;
        Ok(config)
    }

    fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let invalid = |key, message: String| ConfigError::Invalid {
            path: origin.to_owned(),
            key,
            message,
        };
        SsmPath::parse(&self.secrets.ssm_path)
            .map_err(|e| invalid("secrets.ssm_path", e.to_string()))?;
        if let Some(url) = &self.store.url {
            let ok = url.starts_with("sqlite:")
                || url.starts_with("postgres://")
                || url.starts_with("postgresql://");
            if !ok {
                return Err(invalid(
                    "store.url",
                    "expected sqlite://PATH or postgres://…".into(),
                ));
            }
            if url.starts_with("postgres") && !url.contains("sslmode=verify-full") {
                if !self.store.dangerous_unverified_database_tls {
                    return Err(invalid(
                        "store.url",
                        "PostgreSQL needs sslmode=verify-full and sslrootcert=CA (or store.dangerous_unverified_database_tls = true)".into(),
                    ));
                }
                tracing::warn!("store.dangerous_unverified_database_tls: the database's identity is not verified");
            }
        }
        if self
            .store
            .offline_grace
            .is_some_and(|g| g < std::time::Duration::from_secs(5))
        {
            return Err(invalid("store.offline_grace", "must be at least 5s".into()));
        }
        if self
            .store
            .resync_interval
            .is_some_and(|r| r < std::time::Duration::from_secs(1))
        {
            return Err(invalid(
                "store.resync_interval",
                "must be at least 1s".into(),
            ));
        }
        if self.api.tls_cert_file.is_some() != self.api.tls_key_file.is_some() {
            return Err(invalid(
                "api.tls_cert_file",
                "tls_cert_file and tls_key_file go together".into(),
            ));
        }
        if let Some(instance) = &self.instance {
            let ok = !instance.is_empty()
                && instance.len() <= 64
                && instance
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !ok {
                return Err(invalid(
                    "instance",
                    "1-64 characters of A-Z a-z 0-9 - _ .".into(),
                ));
            }
        }
        if let Some(cw) = &self.audit.cloudwatch {
            let ok = !cw.log_group.is_empty()
                && cw.log_group.len() <= 512
                && cw
                    .log_group
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/' | '#'));
            if !ok {
                return Err(invalid(
                    "audit.cloudwatch.log_group",
                    "1-512 characters of A-Z a-z 0-9 . - _ / #".into(),
                ));
            }
            if let Some(stream) = &cw.stream {
                if stream.is_empty() || stream.len() > 512 || stream.contains([':', '*']) {
                    return Err(invalid(
                        "audit.cloudwatch.stream",
                        "1-512 characters, without : or *".into(),
                    ));
                }
            }
        }
        self.ssh
            .validate()
            .map_err(|(key, message)| invalid(key, message))?;
        if let Some(wg) = &self.wireguard {
            wg.validate()
                .map_err(|(key, message)| invalid(key, message))?;
        }
        if !self.state_dir.is_absolute() {
            return Err(invalid("state_dir", "must be an absolute path".into()));
        }
        Ok(())
    }

    /// The store URL, defaulting to SQLite in the state directory.
    pub fn store_url(&self) -> String {
        self.store.url.clone().unwrap_or_else(|| {
            format!("sqlite://{}", self.state_dir.join("sallyport.db").display())
        })
    }

    /// How the gateway follows others on the same PostgreSQL (`[store]`).
    pub fn propagation(&self) -> crate::control::PropagationOptions {
        let mut p = crate::control::PropagationOptions {
            spool_dir: Some(self.state_dir.clone()),
            ..Default::default()
        };
        if let Some(g) = self.store.offline_grace {
            p.offline_grace = g;
        }
        if let Some(r) = self.store.resync_interval {
            p.resync_interval = r;
        }
        p
    }

    /// The CloudWatch log stream: `audit.cloudwatch.stream`, else the instance name.
    pub fn log_stream(&self) -> Option<String> {
        self.audit
            .cloudwatch
            .as_ref()
            .map(|cw| cw.stream.clone().unwrap_or_else(|| self.instance_name()))
    }

    /// The instance name, defaulting to the host name.
    pub fn instance_name(&self) -> String {
        self.instance.clone().unwrap_or_else(host_name)
    }
}

/// The machine's host name, or `sallyportd`.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "sallyportd".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_file_parses() {
        let text = include_str!("../../packaging/sallyportd.example.toml");
        let c = Config::parse(text, "example").unwrap();
        assert_eq!(c.secrets.ssm_path, "/sallyport/prod");
        assert!(c.store_url().starts_with("postgres://"));
        let cw = c.audit.cloudwatch.as_ref().unwrap();
        assert_eq!(cw.log_group, "/sallyport/audit");
        assert_eq!(
            c.log_stream().as_deref(),
            Some("gw-1"),
            "the stream defaults to the instance"
        );
        assert!(!c.audit.stdout);
    }

    #[test]
    fn audit_section_is_checked() {
        let base = "[secrets]\nssm_path = \"/x\"\n";
        let c = Config::parse(base, "f").unwrap();
        assert!(c.audit.cloudwatch.is_none() && !c.audit.stdout);
        let e = Config::parse(
            &format!("{base}[audit.cloudwatch]\nlog_group = \"a b\"\n"),
            "f",
        )
        .unwrap_err();
        assert!(e.to_string().contains("audit.cloudwatch.log_group"), "{e}");
        let e = Config::parse(
            &format!("{base}[audit.cloudwatch]\nlog_group = \"/g\"\nstream = \"a:b\"\n"),
            "f",
        )
        .unwrap_err();
        assert!(e.to_string().contains("audit.cloudwatch.stream"), "{e}");
        let e = Config::parse(&format!("{base}[audit]\nstdot = true\n"), "f").unwrap_err();
        assert!(e.to_string().contains("stdot"), "{e}");
    }

    #[test]
    fn ssh_section_has_defaults_and_names_its_keys() {
        let text = include_str!("../../packaging/sallyportd.example.toml");
        let c = Config::parse(text, "example").unwrap();
        assert_eq!(c.ssh.listen.port(), 2222);
        assert_eq!(c.ssh.max_channels_per_session, 16);
        let c = Config::parse("[secrets]\nssm_path = \"/x\"\n", "min").unwrap();
        assert_eq!(c.ssh.listen, crate::ssh::DEFAULT_SSH_LISTEN);
        assert_eq!(c.ssh.idle_timeout, std::time::Duration::from_secs(1800));
        let e = Config::parse(
            "[secrets]\nssm_path = \"/x\"\n[ssh]\nmax_sessions_per_user = 0\n",
            "f",
        )
        .unwrap_err();
        assert!(e.to_string().contains("ssh.max_sessions_per_user"), "{e}");
        let e = Config::parse(
            "[secrets]\nssm_path = \"/x\"\n[ssh]\nhandshake_timeout = 20\n",
            "f",
        )
        .unwrap_err();
        assert!(e.to_string().contains("handshake_timeout"), "{e}");
    }

    #[test]
    fn store_ha_keys_parse_and_are_bounded() {
        let base = "[secrets]\nssm_path = \"/x\"\n[store]\n";
        let c = Config::parse(base, "f").unwrap();
        assert_eq!(
            c.propagation().offline_grace,
            std::time::Duration::from_secs(60)
        );
        assert_eq!(
            c.propagation().spool_dir,
            Some(std::path::PathBuf::from("/var/lib/sallyport"))
        );
        let c = Config::parse(
            &format!("{base}offline_grace = \"2m\"\nresync_interval = \"5s\"\n"),
            "f",
        )
        .unwrap();
        let p = c.propagation();
        assert_eq!(p.offline_grace, std::time::Duration::from_secs(120));
        assert_eq!(p.resync_interval, std::time::Duration::from_secs(5));
        let e = Config::parse(&format!("{base}offline_grace = \"1s\"\n"), "f").unwrap_err();
        assert!(e.to_string().contains("store.offline_grace"), "{e}");
        let e = Config::parse(&format!("{base}resync_interval = \"soon\"\n"), "f").unwrap_err();
        assert!(e.to_string().contains("resync_interval"), "{e}");
    }

    #[test]
    fn minimal_file_has_safe_defaults() {
        let c = Config::parse("[secrets]\nssm_path = \"/sallyport/dev\"\n", "min").unwrap();
        assert_eq!(c.api.listen.port(), 8443);
        assert_eq!(c.store_url(), "sqlite:///var/lib/sallyport/sallyport.db");
    }

    #[test]
    fn errors_name_the_key() {
        let e = Config::parse(
            "[secrets]\nssm_path = \"/x\"\n[api]\nlisten = \"nowhere\"\n",
            "f",
        )
        .unwrap_err();
        assert!(e.to_string().contains("listen"), "{e}");
        let e = Config::parse("[secrets]\nssm_path = \"/x\"\nbogus = 1\n", "f").unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
        let e = Config::parse("[secrets]\nssm_path = \"no-slash\"\n", "f").unwrap_err();
        assert!(e.to_string().contains("secrets.ssm_path"), "{e}");
        let e = Config::parse(
            "[secrets]\nssm_path = \"/x\"\n[store]\nurl = \"mysql://x\"\n",
            "f",
        )
        .unwrap_err();
        assert!(e.to_string().contains("store.url"), "{e}");
        let e = Config::parse(
            "[secrets]\nssm_path = \"/x\"\n[api]\ntls_cert_file = \"/a\"\n",
            "f",
        )
        .unwrap_err();
        assert!(e.to_string().contains("tls_key_file"), "{e}");
        let e = Config::parse(
            "[secrets]\nssm_path = \"/x\"\n[store]\nurl = \"postgres://u@db/x\"\n",
            "f",
        )
        .unwrap_err();
        assert!(e.to_string().contains("verify-full"), "{e}");
        let ok = "[secrets]\nssm_path = \"/x\"\n[store]\nurl = \"postgres://u@db/x\"\ndangerous_unverified_database_tls = true\n";
        assert!(Config::parse(ok, "f").is_ok());
        let e = Config::parse("", "f").unwrap_err();
        assert!(e.to_string().contains("secrets"), "{e}");
    }
}
