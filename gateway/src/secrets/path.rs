//! The SSM path the secrets live under, and the names of the five parameters (pure, no I/O).

use std::fmt;
use std::str::FromStr;

/// The longest path accepted, in bytes.
///
/// SSM allows 1011 characters for a parameter name *including* the ARN prefix in front of it
/// (`arn:aws:ssm:REGION:ACCOUNT:parameter`). 900 leaves room for the longest ARN prefix
/// (~70 characters) and the longest suffix (`/jwt-signing-key`, 16).
pub const MAX_PATH_LEN: usize = 900;

/// The deepest path accepted, in segments. SSM allows 15 levels per parameter name and the
/// secret's own name is one of them.
pub const MAX_PATH_SEGMENTS: usize = 14;

/// One of the five secrets the gateway holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum SecretName {
    /// The SSH host key (ed25519 seed).
    SshHostKey,
    /// The SSH user-certificate CA key (ed25519 seed).
    UserCaKey,
    /// The WireGuard static private key (x25519).
    WireguardKey,
    /// The key that signs API tokens (JWT, HMAC).
    JwtSigningKey,
    /// The key that protects session recordings.
    RecordingKey,
}

impl SecretName {
    /// All five, in the order they are loaded, written and reported.
    pub const ALL: [SecretName; 5] = [
        SecretName::SshHostKey,
        SecretName::UserCaKey,
        SecretName::WireguardKey,
        SecretName::JwtSigningKey,
        SecretName::RecordingKey,
    ];

    /// The last segment of the parameter name, e.g. `ssh-host-key`.
    pub const fn suffix(self) -> &'static str {
        match self {
            SecretName::SshHostKey => "ssh-host-key",
            SecretName::UserCaKey => "user-ca-key",
            SecretName::WireguardKey => "wireguard-key",
            SecretName::JwtSigningKey => "jwt-signing-key",
            SecretName::RecordingKey => "recording-key",
        }
    }

    /// A one-line description, used as the SSM parameter's description.
    pub const fn description(self) -> &'static str {
        match self {
            SecretName::SshHostKey => "sallyport SSH host key (ed25519 seed, base64 of 32 bytes)",
            SecretName::UserCaKey => "sallyport SSH user CA key (ed25519 seed, base64 of 32 bytes)",
            SecretName::WireguardKey => {
                "sallyport WireGuard private key (x25519, base64 of 32 bytes)"
            }
            SecretName::JwtSigningKey => "sallyport API token signing key (base64 of 32 bytes)",
            SecretName::RecordingKey => "sallyport session recording key (base64 of 32 bytes)",
        }
    }
}

impl fmt::Display for SecretName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.suffix())
    }
}

/// Why a string is not a usable SSM path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SsmPathError {
    /// The path is empty.
    #[error("SSM path is empty")]
    Empty,
    /// The path does not start with `/`.
    #[error("SSM path {path:?} must start with '/'")]
    NotAbsolute {
        /// The path given.
        path: String,
    },
    /// The path is `/` alone; the secrets need a path of their own.
    #[error("SSM path must not be '/' alone; use a path such as /sallyport/prod")]
    Root,
    /// The path ends with `/`.
    #[error("SSM path {path:?} must not end with '/'")]
    TrailingSlash {
        /// The path given.
        path: String,
    },
    /// The path is longer than [`MAX_PATH_LEN`].
    #[error("SSM path is {len} bytes long; at most {max} are allowed")]
    TooLong {
        /// The path's length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The path holds a character SSM does not allow in parameter names.
    #[error(
        "SSM path {path:?} holds {character:?} at byte {position}; only letters, digits, \
         '_', '.', '-' and '/' are allowed"
    )]
    InvalidCharacter {
        /// The path given.
        path: String,
        /// The first offending character.
        character: char,
        /// Its byte offset in the path.
        position: usize,
    },
    /// The path holds an empty segment (`//`).
    #[error("SSM path {path:?} holds an empty segment ('//')")]
    EmptySegment {
        /// The path given.
        path: String,
    },
    /// The path has more than [`MAX_PATH_SEGMENTS`] segments.
    #[error("SSM path {path:?} has {segments} segments; at most {max} are allowed")]
    TooDeep {
        /// The path given.
        path: String,
        /// How many segments it has.
        segments: usize,
        /// The limit.
        max: usize,
    },
    /// The first segment starts with `aws` or `ssm`, which SSM reserves.
    #[error("SSM path {path:?} starts with a reserved prefix ('aws' or 'ssm', any case)")]
    ReservedPrefix {
        /// The path given.
        path: String,
    },
}

/// A validated SSM parameter path such as `/sallyport/prod`: starts with `/`, no trailing
/// `/`, no empty segments, only the characters SSM allows, within SSM's length and depth limits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SsmPath(String);

impl SsmPath {
    /// Parses and validates a path.
    pub fn parse(path: &str) -> Result<Self, SsmPathError> {
        let owned = || path.to_owned();
        let Some(rest) = path.strip_prefix('/') else {
            return Err(if path.is_empty() {
                SsmPathError::Empty
            } else {
                SsmPathError::NotAbsolute { path: owned() }
            });
        };
        if rest.is_empty() {
            return Err(SsmPathError::Root);
        }
        if rest.ends_with('/') {
            return Err(SsmPathError::TrailingSlash { path: owned() });
        }
        if path.len() > MAX_PATH_LEN {
            return Err(SsmPathError::TooLong {
                len: path.len(),
                max: MAX_PATH_LEN,
            });
        }
        if let Some((position, character)) = path
            .char_indices()
            .find(|&(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/')))
        {
            return Err(SsmPathError::InvalidCharacter {
                path: owned(),
                character,
                position,
            });
        }
        let segments: Vec<&str> = rest.split('/').collect();
        if segments.iter().any(|s| s.is_empty()) {
            return Err(SsmPathError::EmptySegment { path: owned() });
        }
        if segments.len() > MAX_PATH_SEGMENTS {
            return Err(SsmPathError::TooDeep {
                path: owned(),
                segments: segments.len(),
                max: MAX_PATH_SEGMENTS,
            });
        }
        let reserved = rest.get(..3).is_some_and(|head| {
            head.eq_ignore_ascii_case("aws") || head.eq_ignore_ascii_case("ssm")
        });
        if reserved {
            return Err(SsmPathError::ReservedPrefix { path: owned() });
        }
        Ok(Self(path.to_owned()))
    }

    /// The path as given, e.g. `/sallyport/prod`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The full name of one secret's parameter, e.g. `/sallyport/prod/ssh-host-key`.
    pub fn parameter_name(&self, name: SecretName) -> String {
        format!("{}/{}", self.0, name.suffix())
    }
}

impl FromStr for SsmPath {
    type Err = SsmPathError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<&str> for SsmPath {
    type Error = SsmPathError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Self::parse(s)
    }
}

impl fmt::Display for SsmPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_paths() {
        for p in ["/sallyport/prod", "/a", "/Team_1/gate-way.v2/x", "/x/../y"] {
            // `..` is just two dots to SSM; it has no special meaning in a parameter name.
            assert_eq!(
                SsmPath::parse(p).map(|p| p.as_str().to_owned()),
                Ok(p.to_owned())
            );
        }
        let p = SsmPath::parse("/sallyport/prod").unwrap();
        assert_eq!(
            p.parameter_name(SecretName::SshHostKey),
            "/sallyport/prod/ssh-host-key"
        );
        assert_eq!("/x/y".parse::<SsmPath>().unwrap().to_string(), "/x/y");
    }

    #[test]
    fn reserved_prefixes_are_refused_in_any_case() {
        // "awsome" starts with "aws": SSM rejects it too, so we do.
        assert!(matches!(
            SsmPath::parse("/awsome"),
            Err(SsmPathError::ReservedPrefix { .. })
        ));
        assert!(matches!(
            SsmPath::parse("/AWS/service"),
            Err(SsmPathError::ReservedPrefix { .. })
        ));
        assert!(matches!(
            SsmPath::parse("/Ssm-things"),
            Err(SsmPathError::ReservedPrefix { .. })
        ));
        assert!(SsmPath::parse("/team/aws").is_ok());
    }

    #[test]
    fn rejects_each_problem_by_name() {
        assert_eq!(SsmPath::parse(""), Err(SsmPathError::Empty));
        assert_eq!(SsmPath::parse("/"), Err(SsmPathError::Root));
        assert!(matches!(
            SsmPath::parse("sallyport/prod"),
            Err(SsmPathError::NotAbsolute { .. })
        ));
        assert!(matches!(
            SsmPath::parse("/sallyport/prod/"),
            Err(SsmPathError::TrailingSlash { .. })
        ));
        assert!(matches!(
            SsmPath::parse("/sallyport//prod"),
            Err(SsmPathError::EmptySegment { .. })
        ));
        assert_eq!(
            SsmPath::parse("/sally port"),
            Err(SsmPathError::InvalidCharacter {
                path: "/sally port".into(),
                character: ' ',
                position: 6
            })
        );
        assert!(matches!(
            SsmPath::parse("/sallyport/prød"),
            Err(SsmPathError::InvalidCharacter {
                character: 'ø', ..
            })
        ));
        let long = format!("/{}", "a".repeat(MAX_PATH_LEN));
        assert_eq!(
            SsmPath::parse(&long),
            Err(SsmPathError::TooLong {
                len: MAX_PATH_LEN + 1,
                max: MAX_PATH_LEN
            })
        );
        let deep = "/a".repeat(MAX_PATH_SEGMENTS + 1);
        assert!(matches!(
            SsmPath::parse(&deep),
            Err(SsmPathError::TooDeep {
                segments: 15,
                max: 14,
                ..
            })
        ));
        assert!(SsmPath::parse(&"/a".repeat(MAX_PATH_SEGMENTS)).is_ok());
    }

    #[test]
    fn errors_name_the_path() {
        let err = SsmPath::parse("/sallyport/prod/").unwrap_err();
        assert!(err.to_string().contains("/sallyport/prod/"), "{err}");
        let err = SsmPath::parse("/a b").unwrap_err();
        assert!(err.to_string().contains("' '"), "{err}");
    }

    #[test]
    fn suffixes_are_distinct_and_valid_segments() {
        let mut seen = std::collections::BTreeSet::new();
        for name in SecretName::ALL {
            assert!(seen.insert(name.suffix()));
            let p = SsmPath::parse("/x").unwrap();
            SsmPath::parse(&p.parameter_name(name)).unwrap();
        }
    }
}
