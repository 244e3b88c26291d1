//! The AWS SSM Parameter Store driver: reads the five SecureStrings at start-up and writes them
//! for `sallyportd secrets init`. All decisions (which parameters, their type, their encoding)
//! are made by the pure code in `decode`; this module only moves bytes to and from AWS.
//!
//! What is zeroized here: every parameter value string the SDK hands over (taken out of the
//! SDK's `Parameter` before anything else happens), the base64 text written, and every decode
//! buffer. What cannot be: the SDK's own HTTP request and response buffers, and the `String`
//! the SDK takes ownership of in `PutParameter`.

use aws_config::{BehaviorVersion, Region};
use aws_sdk_ssm::types::{Parameter, ParameterType};
use aws_sdk_ssm::Client;
use zeroize::Zeroizing;

use super::decode::{encode_key, Collector};
use super::error::SecretsError;
use super::keys::GatewaySecrets;
use super::path::{SecretName, SsmPath};

/// Builds an SSM client from the default AWS configuration chain (environment, profile,
/// IMDS, ...), with an optional region and endpoint override (e.g. a local `moto_server`).
pub async fn ssm_client(region: Option<String>, endpoint_url: Option<String>) -> Client {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = region {
        loader = loader.region(Region::new(region));
    }
    if let Some(endpoint_url) = endpoint_url {
        loader = loader.endpoint_url(endpoint_url);
    }
    Client::new(&loader.load().await)
}

/// Reads the gateway's secrets from SSM Parameter Store SecureStrings under one path.
#[derive(Debug, Clone)]
pub struct SsmSecretSource {
    client: Client,
    path: SsmPath,
}

impl SsmSecretSource {
    /// A source reading the parameters under `path`.
    pub fn new(client: Client, path: SsmPath) -> Self {
        Self { client, path }
    }

    /// The path read.
    pub fn path(&self) -> &SsmPath {
        &self.path
    }

    /// Reads all parameters directly under the path (`GetParametersByPath`, decrypted, not
    /// recursive, every page) and builds the five secrets. Other parameters under the path
    /// are ignored.
    pub async fn load(&self) -> Result<GatewaySecrets, SecretsError> {
        let mut pages = self
            .client
            .get_parameters_by_path()
            .path(self.path.as_str())
            .recursive(false)
            .with_decryption(true)
            .into_paginator()
            .send();
        let mut collector = Collector::new(&self.path);
        let mut seen = 0usize;
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| SecretsError::Read {
                path: self.path.to_string(),
                source: Box::new(e.into()),
            })?;
            // Take every value out of the page first, so that an error on one parameter
            // still zeroizes the values of the others.
            let params = take_values(page.parameters.unwrap_or_default());
            for (param, value) in params {
                seen = seen.saturating_add(1);
                collector.accept(
                    param.name.as_deref().unwrap_or_default(),
                    param.r#type.as_ref().map(ParameterType::as_str),
                    value,
                )?;
            }
        }
        let secrets = collector.finish()?;
        tracing::info!(path = %self.path, parameters = seen, "gateway secrets loaded from SSM");
        Ok(secrets)
    }
}

fn take_values(params: Vec<Parameter>) -> Vec<(Parameter, Option<Zeroizing<String>>)> {
    params
        .into_iter()
        .map(|mut p| {
            let value = p.value.take().map(Zeroizing::new);
            (p, value)
        })
        .collect()
}

/// What [`init_secrets`] wrote. Names only, never values.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct InitReport {
    /// The full names of the parameters written, in [`SecretName::ALL`] order.
    pub written: Vec<String>,
    /// Those of `written` that existed before and were replaced (only when rotating).
    pub replaced: Vec<String>,
}

/// Generates the five secrets and stores them as SecureStrings under `path`, encrypted with
/// `kms_key_id` if given (else the account's default `alias/aws/ssm`).
///
/// Without `rotate`, refuses with [`SecretsError::AlreadyExist`] listing every parameter that
/// already exists, and writes nothing. With `rotate`, replaces existing ones.
pub async fn init_secrets(
    client: &Client,
    path: &SsmPath,
    kms_key_id: Option<&str>,
    rotate: bool,
) -> Result<InitReport, SecretsError> {
    let names: Vec<(SecretName, String)> = SecretName::ALL
        .iter()
        .map(|&which| (which, path.parameter_name(which)))
        .collect();

    // Which exist? Without decryption: only the names are wanted.
    let found = client
        .get_parameters()
        .set_names(Some(names.iter().map(|(_, n)| n.clone()).collect()))
        .with_decryption(false)
        .send()
        .await
        .map_err(|e| SecretsError::Check {
            path: path.to_string(),
            source: Box::new(e.into()),
        })?;
    let existing: Vec<String> = take_values(found.parameters.unwrap_or_default())
        .into_iter()
        .filter_map(|(p, _)| p.name)
        .collect();
    let existing: Vec<String> = names
        .iter()
        .filter(|(_, n)| existing.contains(n))
        .map(|(_, n)| n.clone())
        .collect();
    if !existing.is_empty() && !rotate {
        return Err(SecretsError::AlreadyExist { names: existing });
    }

    let secrets = GatewaySecrets::generate()?;
    let mut written = Vec::with_capacity(names.len());
    for (which, name) in names {
        let value = encode_key(secrets.get(which));
        let mut put = client
            .put_parameter()
            .name(&name)
            .description(which.description())
            .r#type(ParameterType::SecureString)
            // The SDK takes its own copy, which it drops without zeroizing; ours is zeroized.
            .value(value.as_str())
            .overwrite(rotate);
        if let Some(key_id) = kms_key_id {
            put = put.key_id(key_id);
        }
        match put.send().await {
            Ok(_) => written.push(name),
            Err(e) if !rotate && written.is_empty() && is_already_exists(&e) => {
                // Created by someone else between the check and this write; nothing written
                // yet, so the "nothing was written" of this error holds. After a partial
                // write, the `Write` error below names what was written instead.
                return Err(SecretsError::AlreadyExist { names: vec![name] });
            }
            Err(e) => {
                return Err(SecretsError::Write {
                    name,
                    written,
                    source: Box::new(e.into()),
                })
            }
        }
    }
    tracing::info!(path = %path, written = written.len(), replaced = existing.len(), "gateway secrets written to SSM");
    Ok(InitReport {
        written,
        replaced: existing,
    })
}

fn is_already_exists<R>(
    e: &aws_sdk_ssm::error::SdkError<aws_sdk_ssm::operation::put_parameter::PutParameterError, R>,
) -> bool {
    e.as_service_error()
        .is_some_and(|s| s.is_parameter_already_exists())
}
