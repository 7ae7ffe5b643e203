//! The serving certificate, read from files and swapped in when they change (the webhook's
//! and the gateway's alike).
//!
//! Kubernetes updates a mounted Secret by swapping a symlink, which file watchers often
//! miss; the files are therefore polled (a read of two small files every few seconds) and
//! re-parsed when their bytes change. A pair that does not parse, or whose key does not
//! match the certificate, is reported and the previous one stays in use.

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error(transparent)]
    Rustls(#[from] rustls::Error),
}

fn file_err(path: &Path, message: impl std::fmt::Display) -> TlsError {
    TlsError::File {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

/// The aws-lc-rs provider (the one rayward-certs already builds).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Reads a PEM certificate chain and private key and checks that they belong together.
pub fn load_pair(cert: &Path, key: &Path) -> Result<(CertifiedKey, Vec<u8>), TlsError> {
    let cert_pem = std::fs::read(cert).map_err(|e| file_err(cert, e))?;
    let key_pem = std::fs::read(key).map_err(|e| file_err(key, e))?;
    let certified = parse_pair(&cert_pem, &key_pem, cert, key)?;
    let mut stamp = cert_pem;
    stamp.extend_from_slice(&key_pem);
    Ok((certified, stamp))
}

fn parse_pair(
    cert_pem: &[u8],
    key_pem: &[u8],
    cert: &Path,
    key: &Path,
) -> Result<CertifiedKey, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| file_err(cert, format!("not a PEM certificate: {e}")))?;
    if chain.is_empty() {
        return Err(file_err(cert, "no certificate in the file"));
    }
    let key_der = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| file_err(key, format!("not a PEM private key: {e}")))?;
    let certified = CertifiedKey::from_der(chain, key_der, &provider())
        .map_err(|e| file_err(key, format!("does not fit {}: {e}", cert.display())))?;
    Ok(certified)
}

/// The current certificate, handed to rustls on every handshake.
#[derive(Debug)]
pub struct CertStore {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<(Arc<CertifiedKey>, Vec<u8>)>,
}

impl CertStore {
    /// Loads the pair; fails when it cannot be used (the server does not start then).
    pub fn load(cert: &Path, key: &Path) -> Result<Arc<CertStore>, TlsError> {
        let (ck, stamp) = load_pair(cert, key)?;
        Ok(Arc::new(CertStore {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            current: RwLock::new((Arc::new(ck), stamp)),
        }))
    }

    /// Re-reads the files; swaps the certificate when they changed and parse.
    /// Returns whether a new certificate was taken.
    pub fn reload(&self) -> Result<bool, TlsError> {
        let cert_pem = std::fs::read(&self.cert).map_err(|e| file_err(&self.cert, e))?;
        let key_pem = std::fs::read(&self.key).map_err(|e| file_err(&self.key, e))?;
        {
            let cur = self.current.read().expect("lock");
            if cur.1.len() == cert_pem.len() + key_pem.len()
                && cur.1[..cert_pem.len()] == cert_pem[..]
                && cur.1[cert_pem.len()..] == key_pem[..]
            {
                return Ok(false);
            }
        }
        let ck = parse_pair(&cert_pem, &key_pem, &self.cert, &self.key)?;
        let mut stamp = cert_pem;
        stamp.extend_from_slice(&key_pem);
        *self.current.write().expect("lock") = (Arc::new(ck), stamp);
        Ok(true)
    }

    /// Polls the files every `every` until the task is dropped; `who` names the server in
    /// what it logs (`rayward webhook`).
    pub async fn watch(self: Arc<Self>, every: Duration, who: &'static str) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match self.reload() {
                Ok(true) => eprintln!("{who}: reloaded certificate {}", self.cert.display()),
                Ok(false) => {}
                Err(e) => eprintln!("{who}: keeping the current certificate: {e}"),
            }
        }
    }

    /// The certificate in use.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current.read().expect("lock").0.clone()
    }

    /// A rustls server configuration serving this store's certificate (HTTP/1.1).
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}
