use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::error::{shown, ModelError};

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $check:path) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The name as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = ModelError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match $check(s) {
                    Ok(()) => Ok(Self(s.to_owned())),
                    Err(rule) => Err(ModelError::InvalidName { kind: $kind, value: shown(s), rule }),
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = ModelError;

            fn try_from(s: String) -> Result<Self, Self::Error> {
                s.parse()
            }
        }

        impl From<$name> for String {
            fn from(n: $name) -> String {
                n.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

name_type!(
    /// A user's name: 1–32 of `a-z 0-9 _ . -`, starting with a letter or `_`.
    UserName,
    "user name",
    account_rule
);
name_type!(
    /// A group's name, with the same rules as a user name.
    GroupName,
    "group name",
    account_rule
);
name_type!(
    /// A remote login on a target (proxy mode): 1–32 of `A-Z a-z 0-9 _ . -`, not starting with `-`.
    Login,
    "login",
    login_rule
);
name_type!(
    /// A target's name: a DNS label sequence (`db-1`, `db-1.prod`), 1–63 characters, lower case,
    /// which does not read as an IP address (so it never collides with a CIDR).
    TargetName,
    "target name",
    target_rule
);

fn account_rule(s: &str) -> Result<(), &'static str> {
    const RULE: &str = "1-32 characters of a-z 0-9 _ . -, starting with a letter or _";
    let mut chars = s.chars();
    let first = chars.next().ok_or(RULE)?;
    if s.len() > 32 || !(first.is_ascii_lowercase() || first == '_') {
        return Err(RULE);
    }
    if chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-')) {
        Ok(())
    } else {
        Err(RULE)
    }
}

fn login_rule(s: &str) -> Result<(), &'static str> {
    const RULE: &str = "1-32 characters of A-Z a-z 0-9 _ . -, not starting with - or .";
    if s.is_empty() || s.len() > 32 || s.starts_with('-') || s.starts_with('.') {
        return Err(RULE);
    }
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        Ok(())
    } else {
        Err(RULE)
    }
}

fn target_rule(s: &str) -> Result<(), &'static str> {
    const RULE: &str = "1-63 characters of a-z 0-9 . -, labels starting and ending with a letter or digit, not an IP address";
    if s.is_empty() || s.len() > 63 || s.parse::<std::net::IpAddr>().is_ok() {
        return Err(RULE);
    }
    for label in s.split('.') {
        let ok = !label.is_empty()
            && label
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(RULE);
        }
    }
    if s.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(RULE);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names() {
        for ok in ["alice", "_svc", "bob.smith", "a1-b_c"] {
            assert!(ok.parse::<UserName>().is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Alice",
            "1abc",
            "-x",
            "a b",
            "a/b",
            &"a".repeat(33),
            "é",
        ] {
            assert!(bad.parse::<UserName>().is_err(), "{bad}");
        }
    }

    #[test]
    fn target_names() {
        for ok in ["db-1", "db-1.prod", "x", "a9"] {
            assert!(ok.parse::<TargetName>().is_ok(), "{ok}");
        }
        for bad in [
            "", "DB", "-db", "db-", "db..x", "10.0.0.1", "1.2", "::1", "a_b",
        ] {
            assert!(bad.parse::<TargetName>().is_err(), "{bad}");
        }
    }

    #[test]
    fn logins() {
        for ok in ["root", "ec2-user", "Admin", "svc.app"] {
            assert!(ok.parse::<Login>().is_ok(), "{ok}");
        }
        for bad in ["", "-oProxyCommand", "a@b", "a b", ".hidden"] {
            assert!(bad.parse::<Login>().is_err(), "{bad}");
        }
    }

    #[test]
    fn serde_validates() {
        assert!(serde_json::from_str::<UserName>("\"ok\"").is_ok());
        let err = serde_json::from_str::<UserName>("\"NOPE\"").unwrap_err();
        assert!(err.to_string().contains("invalid user name"), "{err}");
    }
}
