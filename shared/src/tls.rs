//! PEM files to rustls client configurations, with ring as the only crypto provider.
//!
//! Every error names the setting that pointed at the file. Key material never appears in an error:
//! only paths and what was wrong with them.

use std::{path::Path, sync::Arc};

use rustls::{
    client::WantsClientCert,
    crypto::CryptoProvider,
    pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer},
    ClientConfig, ConfigBuilder, RootCertStore,
};

use crate::settings::{regular_file, Setting, SettingError};

/// The crypto provider used everywhere: ring, so that a static musl build links no C library but
/// ring's own code.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A builder with our provider and the safe protocol versions (TLS 1.2 and 1.3), trusting `roots`.
pub fn builder_trusting(roots: RootCertStore) -> ConfigBuilder<ClientConfig, WantsClientCert> {
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
}

/// Reads every certificate of a PEM file named by `setting`.
///
/// # Errors
/// The file is not a regular file (see [`regular_file`]), cannot be read, is not PEM, or holds no
/// certificate.
pub fn certificates(path: &Path, setting: &Setting) -> Result<Vec<CertificateDer<'static>>, SettingError> {
    regular_file(path).map_err(|problem| setting.error(problem))?;
    let iter = CertificateDer::pem_file_iter(path)
        .map_err(|err| setting.error(format!("cannot read {}: {err}", path.display())))?;
    let certs = iter
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| setting.error(format!("{} is not valid PEM: {err}", path.display())))?;
    if certs.is_empty() {
        return Err(setting.error(format!("{} holds no PEM certificate", path.display())));
    }
    Ok(certs)
}

/// A root store holding every certificate of the PEM file named by `setting`.
///
/// # Errors
/// As [`certificates`], or a certificate that is not a usable trust anchor.
pub fn root_store(path: &Path, setting: &Setting) -> Result<RootCertStore, SettingError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(path, setting)? {
        roots
            .add(cert)
            .map_err(|err| setting.error(format!("{} holds an unusable CA certificate: {err}", path.display())))?;
    }
    Ok(roots)
}

/// Reads the private key (PKCS#8, PKCS#1 or SEC1 PEM) of the file named by `setting`.
///
/// # Errors
/// The file is not a regular file, cannot be read or holds no private key. The message never quotes
/// the file.
pub fn private_key(path: &Path, setting: &Setting) -> Result<PrivateKeyDer<'static>, SettingError> {
    regular_file(path).map_err(|problem| setting.error(problem))?;
    PrivateKeyDer::from_pem_file(path).map_err(|err| {
        let why = match err {
            rustls::pki_types::pem::Error::NoItemsFound => "no PEM private key found".to_owned(),
            other => format!("not a valid PEM private key ({})", redact_pem_error(&other)),
        };
        setting.error(format!("{}: {why}", path.display()))
    })
}

/// pem errors may echo bytes of the input; keep only their kind.
fn redact_pem_error(err: &rustls::pki_types::pem::Error) -> &'static str {
    use rustls::pki_types::pem::Error;
    match err {
        Error::MissingSectionEnd { .. } => "a section has no END line",
        Error::IllegalSectionStart { .. } => "a malformed BEGIN line",
        Error::Base64Decode(_) => "bad base64",
        Error::Io(_) => "cannot read it",
        Error::NoItemsFound => "no item found",
        _ => "malformed",
    }
}

/// The PEM files of a mutual-TLS client identity, and the settings that named them.
#[derive(Debug, Clone)]
pub struct MutualTlsFiles<'a> {
    pub ca: (&'a Path, Setting),
    pub cert: (&'a Path, Setting),
    pub key: (&'a Path, Setting),
}

/// A client configuration that verifies the server against the given CA only and presents the given
/// certificate and key.
///
/// # Errors
/// Any file unreadable or malformed, or a key that does not fit its certificate.
pub fn mutual_tls_config(files: &MutualTlsFiles<'_>) -> Result<ClientConfig, SettingError> {
    let roots = root_store(files.ca.0, &files.ca.1)?;
    let certs = certificates(files.cert.0, &files.cert.1)?;
    let key = private_key(files.key.0, &files.key.1)?;
    builder_trusting(roots).with_client_auth_cert(certs, key).map_err(|err| {
        files.key.1.error(format!(
            "{} does not fit the certificate in {}: {err}",
            files.key.0.display(),
            files.cert.0.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn s() -> Setting {
        Setting::new("WEBSENTRY_KAFKA_CAFILE", "kafka-cafile")
    }

    /// A file removed when the value is dropped.
    fn temp_file(contents: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(contents.as_bytes()).unwrap();
        file
    }

    #[test]
    fn a_file_without_pem_is_refused_naming_the_setting() {
        let path = temp_file("hello, not a certificate\n");
        let err = root_store(path.path(), &s()).unwrap_err().to_string();
        assert!(err.starts_with("WEBSENTRY_KAFKA_CAFILE (--kafka-cafile): "), "{err}");
        assert!(err.contains("no PEM certificate"), "{err}");
    }

    #[test]
    fn a_broken_pem_key_is_refused_without_quoting_it() {
        let path = temp_file("-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw@@@\n-----END PRIVATE KEY-----\n");
        let err = private_key(path.path(), &s()).unwrap_err().to_string();
        assert!(err.contains("not a valid PEM private key"), "{err}");
        assert!(!err.contains("c2VjcmV0"), "the key material leaked: {err}");
    }

    #[test]
    fn a_fifo_is_refused_before_it_is_opened() {
        let folder = tempfile::tempdir().unwrap();
        let fifo = folder.path().join("ca.pem");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo").success());
        // Opening it would wait for a writer: a failing test would hang here.
        let refused = [root_store(&fifo, &s()).map(|_| ()), private_key(&fifo, &s()).map(|_| ())];
        for err in refused {
            let err = err.unwrap_err().to_string();
            assert!(err.ends_with("is not a regular file: it is a FIFO (named pipe)"), "{err}");
        }
    }

    #[test]
    fn a_missing_file_is_refused_with_its_path() {
        let err = private_key(Path::new("/nonexistent/client.key"), &s()).unwrap_err().to_string();
        assert!(err.contains("/nonexistent/client.key"), "{err}");
    }
}
