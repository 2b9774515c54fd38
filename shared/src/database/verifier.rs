//! The certificate verifier of the weaker TLS modes, `verify-ca` and `require`.

use std::sync::Arc;

use rustls::{
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    client::{VerifierBuilderError, WebPkiServerVerifier},
    pki_types::{CertificateDer, ServerName, UnixTime},
    DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use super::SslMode;
use crate::tls;

/// The certificate verifier of `verify-ca` or `require` could not be built from the CAs.
#[derive(Debug, thiserror::Error)]
#[error("building the certificate verifier")]
pub struct VerifierError(#[from] VerifierBuilderError);

/// `verify-ca` (the chain is checked, the name is not) and `require` (nothing is checked, but the
/// handshake signatures are, so the channel is at least encrypted to whoever answered).
#[derive(Debug)]
pub(super) struct RelaxedVerifier {
    check_chain: bool,
    webpki: Arc<WebPkiServerVerifier>,
}

impl RelaxedVerifier {
    pub(super) fn new(mode: SslMode, roots: Arc<RootCertStore>) -> Result<Self, VerifierError> {
        let webpki = WebPkiServerVerifier::builder_with_provider(roots, tls::provider()).build()?;
        Ok(Self { check_chain: mode == SslMode::VerifyCa, webpki })
    }
}

impl ServerCertVerifier for RelaxedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if !self.check_chain {
            return Ok(ServerCertVerified::assertion());
        }
        match self.webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName))
            | Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForNameContext { .. })) => {
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}
