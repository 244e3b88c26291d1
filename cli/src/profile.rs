//! The login profile `sallyport login` writes: which gateway, the CA that signs its
//! certificate, and the API token with its expiry. Other commands use it when no token is given
//! (`--token-file`, `SALLYPORT_TOKEN`), and only for the gateway it was issued by.
//!
//! Path: `$SALLYPORT_PROFILE`, else `$XDG_CONFIG_HOME/sallyport/profile.toml`, else
//! `~/.config/sallyport/profile.toml`. Written with mode 0600 (its directory 0700), replaced
//! atomically; the token is never printed.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use reqwest::Url;
use sallyport_core::model::UserName;
use sallyport_core::secret::Secret;
use sallyport_core::time::Timestamp;
use serde::{Deserialize, Serialize};

use crate::error::CliError;

/// Environment variable naming the profile file.
pub const PROFILE_ENV: &str = "SALLYPORT_PROFILE";

/// A saved login.
pub struct Profile {
    /// The gateway's API URL.
    pub gateway: Url,
    /// The CA certificate file used to reach it.
    pub ca_cert: Option<PathBuf>,
    /// Who logged in.
    pub user: UserName,
    /// The API token.
    pub token: Secret<String>,
    /// When it expires.
    pub expires_at: Timestamp,
}

impl fmt::Debug for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Profile")
            .field("gateway", &self.gateway.as_str())
            .field("user", &self.user)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// The file's shape.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    gateway: String,
    #[serde(default)]
    ca_cert: Option<PathBuf>,
    user: UserName,
    token: String,
    expires_at: Timestamp,
}

/// Where the profile lives, if a home can be found.
pub fn path() -> Option<PathBuf> {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(p) = var(PROFILE_ENV) {
        return Some(PathBuf::from(p));
    }
    let config = var("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(config.join("sallyport").join("profile.toml"))
}

impl Profile {
    /// Reads the profile at `path`; `None` if there is none.
    pub fn load(path: &Path) -> Result<Option<Self>, CliError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => zeroize::Zeroizing::new(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(CliError::ReadFile {
                    what: "login profile",
                    path: path.to_owned(),
                    source,
                })
            }
        };
        let bad = |why: String| CliError::Profile {
            path: path.to_owned(),
            why,
        };
        let file: File = toml::from_str(&text).map_err(|e| bad(e.message().to_owned()))?;
        let gateway = crate::parse::gateway_url(&file.gateway).map_err(bad)?;
        Ok(Some(Self {
            gateway,
            ca_cert: file.ca_cert,
            user: file.user,
            token: Secret::new(file.token),
            expires_at: file.expires_at,
        }))
    }

    /// Reads the profile at [`path()`], if any.
    pub fn load_default() -> Result<Option<Self>, CliError> {
        match path() {
            Some(p) => Self::load(&p),
            None => Ok(None),
        }
    }

    /// Writes the profile to `path` (mode 0600, directory 0700), replacing it atomically.
    pub fn save(&self, path: &Path) -> Result<(), CliError> {
        let failed = |source| CliError::WriteFile {
            what: "login profile",
            path: path.to_owned(),
            source,
        };
        let file = File {
            gateway: self.gateway.to_string(),
            ca_cert: self.ca_cert.clone(),
            user: self.user.clone(),
            token: self.token.expose_secret().clone(),
            expires_at: self.expires_at,
        };
        let text = zeroize::Zeroizing::new(toml::to_string(&file).map_err(|e| {
            failed(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                e.to_string(),
            ))
        })?);
        drop(Secret::new(file.token));
        let dir = path.parent().unwrap_or(Path::new("."));
        create_private_dir(dir).map_err(failed)?;
        let tmp = dir.join(format!(".profile.{}.tmp", std::process::id()));
        let written =
            write_private(&tmp, text.as_bytes()).and_then(|()| std::fs::rename(&tmp, path));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written.map_err(failed)
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_private_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cfg").join("profile.toml");
        let p = Profile {
            gateway: "https://gw.example:8443".parse().unwrap(),
            ca_cert: Some("/etc/sallyport/ca.pem".into()),
            user: "alice".parse().unwrap(),
            token: Secret::new("tok.en".into()),
            expires_at: Timestamp::from_millis(1_800_000_000_000),
        };
        p.save(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let back = Profile::load(&path).unwrap().unwrap();
        assert_eq!(back.gateway, p.gateway);
        assert_eq!(back.token.expose_secret(), "tok.en");
        assert_eq!(back.expires_at, p.expires_at);
        assert!(!format!("{back:?}").contains("tok.en"));
        // Saving again replaces it.
        p.save(&path).unwrap();
        assert!(Profile::load(&dir.path().join("none.toml"))
            .unwrap()
            .is_none());
        std::fs::write(&path, "gateway = 1\n").unwrap();
        assert!(Profile::load(&path).is_err());
    }
}
