//! TLS for the API: the process-wide crypto provider, and certificates.
//!
//! `dev` (and `run` without certificate files) makes a CA and a server certificate in memory
//! at start-up; only the CA's public certificate is written out, for clients to trust. With
//! files from the operator, the certificate chain and key are read from them.

use std::path::Path;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::ServerConfig;
use zeroize::Zeroizing;

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// Generating the in-memory CA or certificate failed.
    #[error("cannot generate the API certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the configuration.
    #[error("invalid TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    /// A certificate or key file could not be read or parsed.
    #[error("cannot read {path}: {cause}")]
    File {
        /// Which file.
        path: String,
        /// What went wrong.
        cause: String,
    },
}

/// Makes aws-lc-rs the process's rustls provider (several dependencies compile in rustls with
/// different providers; without a choice, rustls refuses to pick). Idempotent.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// A server configuration and the PEM of the CA that clients should trust (if generated).
#[derive(Debug)]
pub struct ApiTls {
    /// For the HTTPS listener.
    pub server_config: Arc<ServerConfig>,
    /// The generated CA's certificate (public), when the certificate was generated.
    pub ca_pem: Option<String>,
}

/// A CA and a server certificate for `names` (DNS names or IP addresses), made in memory.
pub fn generate(names: &[String]) -> Result<ApiTls, TlsError> {
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name.push(
        DnType::CommonName,
        "sallyport API CA (generated at start-up)",
    );
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key)?;

    let key = KeyPair::generate()?;
    let mut leaf = CertificateParams::new(names.to_vec())?;
    leaf.distinguished_name
        .push(DnType::CommonName, "sallyport API");
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let cert = leaf.signed_by(&key, &ca_cert, &ca_key)?;

    let key_der = Zeroizing::new(key.serialize_der());
    let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_der.to_vec()));
    let chain = vec![cert.der().clone(), ca_cert.der().clone()];
    Ok(ApiTls {
        server_config: server_config(chain, private)?,
        ca_pem: Some(ca_cert.pem()),
    })
}

/// Reads a PEM certificate chain and private key provided by the operator.
pub fn from_files(cert_file: &Path, key_file: &Path) -> Result<ApiTls, TlsError> {
    let file_err = |path: &Path, cause: String| TlsError::File {
        path: path.display().to_string(),
        cause,
    };
    let chain = CertificateDer::pem_file_iter(cert_file)
        .map_err(|e| file_err(cert_file, e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_err(cert_file, e.to_string()))?;
    if chain.is_empty() {
        return Err(file_err(cert_file, "no certificate in the file".into()));
    }
    let key =
        PrivateKeyDer::from_pem_file(key_file).map_err(|e| file_err(key_file, e.to_string()))?;
    Ok(ApiTls {
        server_config: server_config(chain, key)?,
        ca_pem: None,
    })
}

fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
