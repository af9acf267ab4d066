//! TLS listeners (rustls): the server's certificate and key, optional client
//! certificates verified against a CA, and the user name a client certificate gives.

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;

use super::ListenerConfig;

/// The rustls configuration of a TLS listener; errors name the file at fault.
pub(super) fn server_config(config: &ListenerConfig) -> Result<Arc<rustls::ServerConfig>, String> {
    let (Some(cert_file), Some(key_file)) = (&config.cert_file, &config.key_file) else {
        return Err(format!("{} listener {}: cert_file and key_file are required", config.protocol, config.bind));
    };
    let chain = CertificateDer::pem_file_iter(cert_file)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cert_file {cert_file}: {e}"))?;
    if chain.is_empty() {
        return Err(format!("cert_file {cert_file}: no certificate in it"));
    }
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| format!("key_file {key_file}: {e}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let builder = match &config.ca_file {
        Some(ca_file) => {
            let mut roots = RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(ca_file)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("ca_file {ca_file}: {e}"))?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(format!("ca_file {ca_file}: no usable CA certificate"));
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if config.require_certificate { verifier } else { verifier.allow_unauthenticated() };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| format!("ca_file {ca_file}: {e}"))?)
        }
        None => builder.with_no_client_auth(),
    };
    let server = builder
        .with_single_cert(chain, key)
        .map_err(|e| format!("cert_file {cert_file} / key_file {key_file}: {e}"))?;
    Ok(Arc::new(server))
}

/// The user name the client's (verified) certificate gives, if the listener uses one.
pub(super) fn certificate_user(config: &ListenerConfig, certs: Option<&[CertificateDer<'_>]>) -> Option<Arc<str>> {
    if !(config.use_subject_as_username || config.use_identity_as_username) {
        return None;
    }
    let der = certs?.first()?;
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    let subject = cert.subject();
    if config.use_subject_as_username {
        return Some(Arc::from(subject.to_string()));
    }
    let common_name = subject.iter_common_name().next()?.as_str().ok()?;
    Some(Arc::from(common_name))
}
