//! Secret sources: the gateway's key material, read at start-up and held in memory only.
//!
//! ```text
//!   SSM Parameter Store                      sallyportd dev
//!   P/ssh-host-key     ┐                          │
//!   P/user-ca-key      │ GetParametersByPath      │ GatewaySecrets::generate()
//!   P/wireguard-key    ├─ (decrypted, paged) ─┐   │ (OsRng)
//!   P/jwt-signing-key  │   SsmSecretSource    │   │
//!   P/recording-key    ┘                      ▼   ▼
//!        (SecureString,              Collector ─► GatewaySecrets ─► SSH host key, user CA,
//!         base64 of 32 bytes)        (decode)     (5 × Secret<[u8; 32]>)  WireGuard, JWT,
//!                                                                         recordings
//! ```
//!
//! Each secret is 32 bytes from a CSPRNG, stored under a path `P` (e.g. `/sallyport/prod`) as a
//! SecureString holding its standard base64. Keys never touch the disk and never appear in
//! `Debug` output, logs or errors: every error about a parameter names it, never its value.
//! [`init_secrets`] creates the five for an operator (`sallyportd secrets init`).
//!
//! Key bytes live in [`Secret`](sallyport_core::secret::Secret)s (zeroized on drop); the
//! intermediate strings and buffers this module owns are zeroized too. Rust moves of a
//! `GatewaySecrets` may leave stack copies that cannot be scrubbed; keep it in one place
//! (an `Arc`) once loaded.
//!
//! # Layout
//!
//! - `path`: [`SsmPath`] (a validated parameter path) and [`SecretName`] (the five names).
//! - `keys`: [`GatewaySecrets`], generation, and the ed25519 keys derived from the SSH seeds.
//! - `decode`: base64 to key and back, and the collector that checks what SSM returned (pure).
//! - `ssm`: the AWS driver: [`SsmSecretSource`], [`init_secrets`], [`ssm_client`].
//! - `error`: [`SecretsError`].

mod decode;
mod error;
mod keys;
mod path;
mod ssm;

pub use error::SecretsError;
pub use keys::{GatewaySecrets, KEY_LEN};
pub use path::{SecretName, SsmPath, SsmPathError, MAX_PATH_LEN, MAX_PATH_SEGMENTS};
pub use ssm::{init_secrets, ssm_client, InitReport, SsmSecretSource};
