//! HTTPS and WSS: the rustls server settings of `tls_cert` and `tls_key` (PEM files), with the
//! ring provider. Both keys or neither: one alone is a configuration error.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferrymq_core::config::ServerSettings;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why the TLS settings cannot be used. Stops the server (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// `tls_cert` without `tls_key`, or the other way round.
    #[error("tls_cert and tls_key go together: set both (PEM files) or neither")]
    Incomplete,
    /// A file could not be read or holds no usable PEM item.
    #[error("cannot read the TLS {what} from {}: {reason}", path.display())]
    File {
        /// `certificate` or `private key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// rustls refused the pair (e.g. the key does not match the certificate).
    #[error("the TLS certificate and key cannot be used together: {0}")]
    Rejected(String),
}

/// The server's TLS settings, `None` when neither key is set.
pub fn server_config(server: &ServerSettings) -> Result<Option<Arc<rustls::ServerConfig>>, TlsError> {
    match (&server.tls_cert, &server.tls_key) {
        (None, None) => Ok(None),
        (Some(cert), Some(key)) => load(cert, key).map(Some),
        _ => Err(TlsError::Incomplete),
    }
}

fn load(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let file_error = |what, path: &Path, reason: String| TlsError::File { what, path: path.to_path_buf(), reason };
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| file_error("certificate", cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(file_error("certificate", cert, "no PEM certificate in it".to_string()));
    }
    let private_key = PrivateKeyDer::from_pem_file(key).map_err(|e| file_error("private key", key, e.to_string()))?;
    // ring rather than aws-lc-rs: no C toolchain build; see the client's TLS settings.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Rejected(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)
        .map_err(|e| TlsError::Rejected(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
