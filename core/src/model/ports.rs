use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::error::{shown, ModelError};

/// An inclusive range of TCP/UDP ports, `1..=65535` at most.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortRange {
    first: u16,
    last: u16,
}

impl PortRange {
    /// One port.
    pub fn single(port: u16) -> Result<Self, ModelError> {
        Self::new(port, port)
    }

    /// `first..=last`; both non-zero and in order.
    pub fn new(first: u16, last: u16) -> Result<Self, ModelError> {
        if first == 0 {
            return Err(ModelError::InvalidPorts {
                value: format!("{first}-{last}"),
                why: "port 0 is not a port",
            });
        }
        if first > last {
            return Err(ModelError::InvalidPorts {
                value: format!("{first}-{last}"),
                why: "range is reversed",
            });
        }
        Ok(Self { first, last })
    }

    /// The first port.
    pub fn first(self) -> u16 {
        self.first
    }

    /// The last port.
    pub fn last(self) -> u16 {
        self.last
    }

    /// Whether `port` is inside.
    pub fn contains(self, port: u16) -> bool {
        self.first <= port && port <= self.last
    }
}

/// A set of ports: `22`, `22,443`, `8000-8100`, or `all` (1-65535). Kept sorted and merged.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PortSpec(Vec<PortRange>);

const MAX_RANGES: usize = 64;

impl PortSpec {
    /// Every port.
    pub fn all() -> Self {
        Self(vec![PortRange {
            first: 1,
            last: 65535,
        }])
    }

    /// One port.
    pub fn single(port: u16) -> Result<Self, ModelError> {
        Ok(Self(vec![PortRange::single(port)?]))
    }

    /// Whether `port` is in the set.
    pub fn contains(&self, port: u16) -> bool {
        // Few ranges: a linear scan beats a binary search here.
        self.0.iter().any(|r| r.contains(port))
    }

    /// The ranges, sorted and disjoint.
    pub fn ranges(&self) -> &[PortRange] {
        &self.0
    }
}

impl FromStr for PortSpec {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why| ModelError::InvalidPorts {
            value: shown(s),
            why,
        };
        let text = s.trim();
        if text.eq_ignore_ascii_case("all") || text == "*" {
            return Ok(Self::all());
        }
        if text.is_empty() {
            return Err(bad("empty"));
        }
        let mut ranges = Vec::new();
        for part in text.split(',') {
            let part = part.trim();
            let (a, b) = match part.split_once('-') {
                Some((a, b)) => (a.trim(), b.trim()),
                None => (part, part),
            };
            let first: u16 = a
                .parse()
                .map_err(|_| bad("ports are numbers from 1 to 65535"))?;
            let last: u16 = b
                .parse()
                .map_err(|_| bad("ports are numbers from 1 to 65535"))?;
            if first == 0 || last == 0 {
                return Err(bad("port 0 is not a port"));
            }
            if first > last {
                return Err(bad("range is reversed"));
            }
            ranges.push(PortRange { first, last });
            if ranges.len() > MAX_RANGES {
                return Err(bad("more than 64 ranges"));
            }
        }
        ranges.sort();
        let mut merged: Vec<PortRange> = Vec::with_capacity(ranges.len());
        for r in ranges {
            match merged.last_mut() {
                Some(prev) if u32::from(r.first) <= u32::from(prev.last) + 1 => {
                    prev.last = prev.last.max(r.last);
                }
                _ => merged.push(r),
            }
        }
        Ok(Self(merged))
    }
}

impl TryFrom<String> for PortSpec {
    type Error = ModelError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<PortSpec> for String {
    fn from(p: PortSpec) -> String {
        p.to_string()
    }
}

impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0
            == [PortRange {
                first: 1,
                last: 65535,
            }]
        {
            return f.write_str("all");
        }
        for (i, r) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if r.first == r.last {
                write!(f, "{}", r.first)?;
            } else {
                write!(f, "{}-{}", r.first, r.last)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_merges() {
        let p: PortSpec = "443, 22,8000-8100,8050-8200,21".parse().unwrap();
        assert_eq!(p.to_string(), "21-22,443,8000-8200");
        assert!(p.contains(22) && p.contains(8200) && !p.contains(23) && !p.contains(8201));
        assert_eq!("all".parse::<PortSpec>().unwrap(), PortSpec::all());
        assert_eq!("1-65535".parse::<PortSpec>().unwrap().to_string(), "all");
    }

    #[test]
    fn refuses_out_of_range() {
        for bad in [
            "",
            "0",
            "65536",
            "22-21",
            "a",
            "1-",
            "-5",
            "22,,23",
            "99999-100000",
        ] {
            assert!(bad.parse::<PortSpec>().is_err(), "{bad}");
        }
    }
}
