//! A device's name, as its owner calls it (`sallyport vpn enroll --name laptop`).

use std::fmt;
use std::str::FromStr;

/// 1-64 characters of `A-Z a-z 0-9 - _ .`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceName(String);

/// Why a device name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a device name is 1-64 characters of A-Z a-z 0-9 - _ .")]
pub struct DeviceNameError;

impl DeviceName {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for DeviceName {
    type Err = DeviceNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(DeviceNameError)
        }
    }
}

impl fmt::Display for DeviceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl serde::Serialize for DeviceName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for DeviceName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert_eq!(
            "laptop-1".parse::<DeviceName>().unwrap().as_str(),
            "laptop-1"
        );
        assert!("".parse::<DeviceName>().is_err());
        assert!("a b".parse::<DeviceName>().is_err());
        assert!("x".repeat(65).parse::<DeviceName>().is_err());
    }
}
