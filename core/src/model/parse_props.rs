//! Every parser that sees text from outside returns a value or an error for any input; none
//! panics, and what parses prints back to a form that parses to the same value.

use proptest::prelude::*;

use super::*;
use crate::time::Timestamp;

fn roundtrip<T>(s: &str)
where
    T: std::str::FromStr + std::fmt::Display + PartialEq + std::fmt::Debug,
{
    if let Ok(v) = s.parse::<T>() {
        let again: T = v
            .to_string()
            .parse()
            .unwrap_or_else(|_| panic!("{v} does not parse back"));
        assert_eq!(again, v);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn text_parsers_never_panic(s in ".{0,80}") {
        roundtrip::<UserName>(&s);
        roundtrip::<GroupName>(&s);
        roundtrip::<Login>(&s);
        roundtrip::<TargetName>(&s);
        roundtrip::<TargetAddress>(&s);
        roundtrip::<PortSpec>(&s);
        roundtrip::<GrantObject>(&s);
        roundtrip::<Subject>(&s);
        roundtrip::<Protocol>(&s);
        roundtrip::<ProtocolSet>(&s);
        roundtrip::<Reason>(&s);
        roundtrip::<GrantId>(&s);
        roundtrip::<Role>(&s);
        let _ = s.parse::<Timestamp>();
        let _ = SshPublicKey::parse(&s);
        let _ = Fingerprint::try_from(s.clone());
    }

    #[test]
    fn address_like_text_never_panics(s in "[0-9a-fA-F:.\\[\\]/,-]{0,48}") {
        roundtrip::<TargetAddress>(&s);
        roundtrip::<PortSpec>(&s);
        roundtrip::<GrantObject>(&s);
    }

    #[test]
    fn key_like_text_never_panics(alg in "(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp256|ssh-dss|sk-ssh-ed25519@openssh.com)", body in "[A-Za-z0-9+/=]{0,200}", comment in "[ -~]{0,20}") {
        let _ = SshPublicKey::parse(&format!("{alg} {body} {comment}"));
    }
}
