//! TLS settings from PEM files: a node's certificate and key for the ports
//! it serves, and the CA that clients and peers check servers against.
//!
//! Only the server is authenticated by certificate. Peers still prove the
//! cluster secret to each other over the encrypted link, and clients log in
//! with a password.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Errors in the TLS files of a node or a client.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the {what} {path}: {message}; give a PEM file")]
    Read {
        what: &'static str,
        path: String,
        message: String,
    },
    #[error("the {what} {path} holds no certificate; give a PEM file with a CERTIFICATE block")]
    NoCertificate { what: &'static str, path: String },
    #[error(
        "the CA file {path} holds a certificate that cannot be used as a trust root: {message}"
    )]
    BadRoot { path: String, message: String },
    #[error("the certificate {cert} and key {key} do not make a valid TLS server: {message}")]
    BadServer {
        cert: String,
        key: String,
        message: String,
    },
}

/// The PEM files of a node that serves TLS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The node's certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key of the leaf certificate (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// The CA that signed every node's certificate. Peers check each other
    /// against it.
    pub ca: PathBuf,
}

/// A node's TLS configurations, loaded once at start.
#[derive(Clone)]
pub struct NodeTls {
    /// For the client and peer ports it serves.
    pub server: Arc<rustls::ServerConfig>,
    /// For the links it dials to its peers.
    pub client: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for NodeTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NodeTls")
    }
}

impl NodeTls {
    /// Loads and checks the node's certificate, key and CA.
    pub fn load(files: &TlsFiles) -> Result<NodeTls, TlsError> {
        Ok(NodeTls {
            server: server_config(&files.cert, &files.key)?,
            client: client_config(&files.ca)?,
        })
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_certificates(
    path: &Path,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let read_error = |message: String| TlsError::Read {
        what,
        path: path.display().to_string(),
        message,
    };
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|error| read_error(error.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| read_error(error.to_string()))?;
    if certificates.is_empty() {
        return Err(TlsError::NoCertificate {
            what,
            path: path.display().to_string(),
        });
    }
    Ok(certificates)
}

/// Builds the server side of TLS from a certificate chain and its key.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let chain = read_certificates(cert, "certificate file")?;
    let private_key = PrivateKeyDer::from_pem_file(key).map_err(|error| TlsError::Read {
        what: "private key file",
        path: key.display().to_string(),
        message: error.to_string(),
    })?;
    let bad_server = |message: String| TlsError::BadServer {
        cert: cert.display().to_string(),
        key: key.display().to_string(),
        message,
    };
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|error| bad_server(error.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)
        .map_err(|error| bad_server(error.to_string()))?;
    Ok(Arc::new(config))
}

/// Builds the client side of TLS that trusts only the certificates in
/// `ca`.
pub fn client_config(ca: &Path) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for certificate in read_certificates(ca, "CA file")? {
        roots.add(certificate).map_err(|error| TlsError::BadRoot {
            path: ca.display().to_string(),
            message: error.to_string(),
        })?;
    }
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|error| TlsError::BadRoot {
            path: ca.display().to_string(),
            message: error.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_pair(dir: &Path) -> (PathBuf, PathBuf) {
        let pair = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        std::fs::write(&cert, pair.cert.pem()).unwrap();
        std::fs::write(&key, pair.key_pair.serialize_pem()).unwrap();
        (cert, key)
    }

    #[test]
    fn loads_generated_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = write_pair(dir.path());
        let files = TlsFiles {
            cert: cert.clone(),
            key,
            ca: cert,
        };
        assert!(NodeTls::load(&files).is_ok());
    }

    #[test]
    fn missing_file_names_path() {
        let error = client_config(Path::new("/nonexistent/ca.pem")).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("/nonexistent/ca.pem"), "{message}");
        assert!(message.contains("CA file"), "{message}");
    }

    #[test]
    fn key_file_as_ca_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let (_, key) = write_pair(dir.path());
        let error = client_config(&key).unwrap_err();
        assert!(matches!(error, TlsError::NoCertificate { .. }), "{error}");
    }

    #[test]
    fn mismatched_key_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, _) = write_pair(dir.path());
        let other = tempfile::tempdir().unwrap();
        let (_, other_key) = write_pair(other.path());
        let error = server_config(&cert, &other_key).unwrap_err();
        assert!(matches!(error, TlsError::BadServer { .. }), "{error}");
    }
}
