//! Proxy-mode user names. `ssh login@target@gateway` reaches the gateway (OpenSSH splits user
//! and host at the last `@`) with the user name `login@target`; this splits it at its own last
//! `@` into the remote login and the registered target. A name without `@` is jump mode.

use sallyport_core::model::{Login, TargetName};

use crate::ssh::auth::AuthRefusal;

/// Where a proxy-mode session goes: the login on the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyDestination {
    /// The remote login (`root`, `deploy`, …).
    pub login: Login,
    /// The registered target.
    pub target: TargetName,
}

impl std::fmt::Display for ProxyDestination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.login, self.target)
    }
}

/// `None` for a jump-mode name (no `@`); otherwise the destination, or why the name is not
/// one.
pub fn parse(name: &str) -> Option<Result<ProxyDestination, AuthRefusal>> {
    let (login, target) = name.rsplit_once('@')?;
    let parsed = match (login.parse::<Login>(), target.parse::<TargetName>()) {
        (Ok(login), Ok(target)) => Ok(ProxyDestination { login, target }),
        _ => Err(AuthRefusal::InvalidUserName),
    };
    Some(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_the_last_at() {
        let d = parse("root@db-1").unwrap().unwrap();
        assert_eq!(d.login.as_str(), "root");
        assert_eq!(d.target.as_str(), "db-1");
        assert_eq!(d.to_string(), "root@db-1");
        assert!(parse("alice").is_none());
        // `a@b@c`: the login `a@b` is not a valid login.
        assert_eq!(
            parse("a@b@c").unwrap().unwrap_err(),
            AuthRefusal::InvalidUserName
        );
        assert!(parse("@db-1").unwrap().is_err());
        assert!(parse("root@").unwrap().is_err());
        assert!(parse("root@DB 1").unwrap().is_err());
    }
}
