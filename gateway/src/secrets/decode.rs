//! Turning parameter values into keys, and keys into parameter values (pure, no I/O).
//!
//! The SSM driver feeds every parameter it reads into a [`Collector`], which keeps the five it
//! wants, checks their type and decodes them, then [`Collector::finish`] builds
//! [`GatewaySecrets`] or names what is missing. Errors name the parameter, never the value.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sallyport_core::secret::Secret;
use zeroize::Zeroizing;

use super::error::SecretsError;
use super::keys::{GatewaySecrets, KEY_LEN};
use super::path::{SecretName, SsmPath};

/// The SSM parameter type the secrets must have.
pub(super) const SECURE_STRING: &str = "SecureString";

/// Collects the five secrets from the parameters found under a path.
pub(super) struct Collector<'p> {
    path: &'p SsmPath,
    slots: [Option<Secret<[u8; KEY_LEN]>>; 5],
}

impl<'p> Collector<'p> {
    pub(super) fn new(path: &'p SsmPath) -> Self {
        Self {
            path,
            slots: Default::default(),
        }
    }

    /// Takes one parameter as read from SSM. Parameters under the path that are not one of the
    /// five are ignored (their value is still zeroized on drop).
    ///
    /// `type_name` is the SSM parameter type; `value` the decrypted value.
    pub(super) fn accept(
        &mut self,
        name: &str,
        type_name: Option<&str>,
        value: Option<Zeroizing<String>>,
    ) -> Result<(), SecretsError> {
        let path = self.path;
        let Some((_, slot)) = SecretName::ALL
            .iter()
            .zip(self.slots.iter_mut())
            .find(|(which, _)| path.parameter_name(**which) == name)
        else {
            return Ok(());
        };
        if type_name != Some(SECURE_STRING) {
            return Err(SecretsError::NotSecureString {
                name: name.to_owned(),
                found: type_name.unwrap_or("(none)").to_owned(),
            });
        }
        let Some(value) = value else {
            return Err(SecretsError::NoValue {
                name: name.to_owned(),
            });
        };
        *slot = Some(decode_key(name, &value)?);
        Ok(())
    }

    /// The five secrets, or [`SecretsError::Missing`] naming every one not seen.
    pub(super) fn finish(self) -> Result<GatewaySecrets, SecretsError> {
        let path = self.path;
        match self.slots {
            [Some(a), Some(b), Some(c), Some(d), Some(e)] => {
                Ok(GatewaySecrets::from_parts(a, b, c, d, e))
            }
            slots => Err(SecretsError::Missing {
                names: SecretName::ALL
                    .iter()
                    .zip(slots.iter())
                    .filter(|(_, slot)| slot.is_none())
                    .map(|(which, _)| path.parameter_name(*which))
                    .collect(),
            }),
        }
    }
}

/// Decodes one parameter value: standard padded base64 of exactly [`KEY_LEN`] bytes,
/// surrounding ASCII whitespace ignored. `name` is used only in errors.
pub(super) fn decode_key(name: &str, value: &str) -> Result<Secret<[u8; KEY_LEN]>, SecretsError> {
    // The decode buffer is allocated once at its estimated size and truncated, never grown,
    // so no unzeroized copy is left behind by a reallocation.
    let decoded = Zeroizing::new(STANDARD.decode(value.trim_ascii()).map_err(|_| {
        // The DecodeError names the offending byte and its offset; drop it.
        SecretsError::InvalidBase64 {
            name: name.to_owned(),
        }
    })?);
    if decoded.len() != KEY_LEN {
        return Err(SecretsError::WrongLength {
            name: name.to_owned(),
            len: decoded.len(),
        });
    }
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    key.copy_from_slice(&decoded);
    Ok(Secret::new(*key))
}

/// Encodes one key as its parameter value.
pub(super) fn encode_key(key: &Secret<[u8; KEY_LEN]>) -> Zeroizing<String> {
    Zeroizing::new(STANDARD.encode(key.expose_secret()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAME: &str = "/sallyport/test/ssh-host-key";

    fn path() -> SsmPath {
        SsmPath::parse("/sallyport/test").unwrap()
    }

    fn b64(bytes: &[u8]) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(bytes))
    }

    #[test]
    fn decodes_exactly_32_bytes() {
        let key = decode_key(NAME, &STANDARD.encode([7u8; 32])).unwrap();
        assert!(key.ct_eq(&[7u8; 32]));
        // A trailing newline from `$(openssl rand -base64 32)` pasted by hand is tolerated.
        let key = decode_key(NAME, &format!("{}\n", STANDARD.encode([8u8; 32]))).unwrap();
        assert!(key.ct_eq(&[8u8; 32]));
    }

    #[test]
    fn round_trips_through_encode() {
        let key = Secret::new([0xa5u8; 32]);
        let back = decode_key(NAME, &encode_key(&key)).unwrap();
        assert!(back.ct_eq(key.expose_secret()));
    }

    #[test]
    fn bad_base64_names_the_parameter_not_the_value() {
        let value = "not*base64*at*all*but*secret-ish";
        let err = decode_key(NAME, value).unwrap_err();
        assert!(matches!(err, SecretsError::InvalidBase64 { ref name } if name == NAME));
        let shown = format!("{err} {err:?}");
        assert!(shown.contains(NAME), "{shown}");
        assert!(!shown.contains(value), "{shown}");
        assert!(!shown.contains('*'), "{shown}");
        // Unpadded and URL-safe encodings are not standard base64.
        let unpadded = STANDARD.encode([9u8; 32]).trim_end_matches('=').to_owned();
        assert!(matches!(
            decode_key(NAME, &unpadded),
            Err(SecretsError::InvalidBase64 { .. })
        ));
        let url_safe = base64::engine::general_purpose::URL_SAFE.encode([0xfbu8; 32]);
        assert!(matches!(
            decode_key(NAME, &url_safe),
            Err(SecretsError::InvalidBase64 { .. })
        ));
    }

    #[test]
    fn wrong_length_names_the_parameter_not_the_value() {
        for len in [0usize, 16, 31, 33, 64] {
            let value = STANDARD.encode(vec![0x5au8; len]);
            let err = decode_key(NAME, &value).unwrap_err();
            assert!(
                matches!(err, SecretsError::WrongLength { ref name, len: l } if name == NAME && l == len),
                "{err:?}"
            );
            let shown = format!("{err} {err:?}");
            assert!(shown.contains(NAME));
            if !value.is_empty() {
                assert!(!shown.contains(&value), "{shown}");
            }
        }
    }

    #[test]
    fn collector_builds_all_five_and_ignores_others() {
        let p = path();
        let mut c = Collector::new(&p);
        c.accept(
            "/sallyport/test/unrelated",
            Some("String"),
            Some(Zeroizing::new("x".into())),
        )
        .unwrap();
        c.accept("/sallyport/test-other/ssh-host-key", Some("String"), None)
            .unwrap();
        for (i, which) in SecretName::ALL.iter().enumerate() {
            let byte = u8::try_from(i).unwrap() + 1;
            c.accept(
                &p.parameter_name(*which),
                Some(SECURE_STRING),
                Some(b64(&[byte; 32])),
            )
            .unwrap();
        }
        let s = c.finish().unwrap();
        assert!(s.ssh_host_key().ct_eq(&[1; 32]));
        assert!(s.recording_key().ct_eq(&[5; 32]));
    }

    #[test]
    fn collector_lists_every_missing_parameter() {
        let p = path();
        let mut c = Collector::new(&p);
        c.accept(
            &p.parameter_name(SecretName::UserCaKey),
            Some(SECURE_STRING),
            Some(b64(&[1; 32])),
        )
        .unwrap();
        let err = c.finish().unwrap_err();
        let SecretsError::Missing { names } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(
            names,
            &[
                "/sallyport/test/ssh-host-key",
                "/sallyport/test/wireguard-key",
                "/sallyport/test/jwt-signing-key",
                "/sallyport/test/recording-key",
            ]
        );
        assert!(err.to_string().contains("/sallyport/test/recording-key"));
    }

    #[test]
    fn collector_refuses_plain_strings_and_empty_values() {
        let p = path();
        let name = p.parameter_name(SecretName::JwtSigningKey);
        let value = STANDARD.encode([3u8; 32]);
        let err = Collector::new(&p)
            .accept(&name, Some("String"), Some(Zeroizing::new(value.clone())))
            .unwrap_err();
        assert!(
            matches!(&err, SecretsError::NotSecureString { name: n, found } if n == &name && found == "String")
        );
        let shown = format!("{err} {err:?}");
        assert!(shown.contains(&name) && !shown.contains(&value), "{shown}");

        let err = Collector::new(&p)
            .accept(&name, Some(SECURE_STRING), None)
            .unwrap_err();
        assert!(matches!(&err, SecretsError::NoValue { name: n } if n == &name));

        let err = Collector::new(&p)
            .accept(
                &name,
                Some(SECURE_STRING),
                Some(Zeroizing::new("AAAA".into())),
            )
            .unwrap_err();
        assert!(matches!(&err, SecretsError::WrongLength { name: n, len: 3 } if n == &name));
    }
}
