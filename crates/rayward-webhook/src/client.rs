//! A small HTTPS client over the same TLS stack: for the end-to-end tests (which talk to
//! a real kube-apiserver) and the benchmark. One HTTP/1.1 connection per [`Conn`].

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_rustls::TlsConnector;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ClientError(pub String);

fn err(e: impl std::fmt::Display) -> ClientError {
    ClientError(e.to_string())
}

/// An answer: status, `Warning` headers (the text of each), body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub warnings: Vec<String>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Where to connect and whom to trust.
#[derive(Clone)]
pub struct Client {
    addr: SocketAddr,
    connector: TlsConnector,
    token: Option<String>,
    /// The name the server's certificate must carry; `None`: the address's IP.
    server_name: Option<ServerName<'static>>,
}

/// One open connection.
pub struct Conn {
    send: SendRequest<Full<Bytes>>,
    token: Option<String>,
    host: String,
}

impl Client {
    /// Trusts the CA certificates in `ca_pem`; the server must present 127.0.0.1 (an IP SAN).
    pub fn new(
        addr: SocketAddr,
        ca_pem: &[u8],
        token: Option<String>,
    ) -> Result<Client, ClientError> {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(ca_pem) {
            roots.add(c.map_err(err)?).map_err(err)?;
        }
        let cfg = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
            .with_safe_default_protocol_versions()
            .map_err(err)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Client {
            addr,
            connector: TlsConnector::from(Arc::new(cfg)),
            token,
            server_name: None,
        })
    }

    /// Trusts exactly the certificate in `cert_pem` (pinned), whatever its CA flag: for
    /// a test API server whose serving certificate is self-signed.
    pub fn pinned(
        addr: SocketAddr,
        cert_pem: &[u8],
        token: Option<String>,
    ) -> Result<Client, ClientError> {
        let cert = CertificateDer::from_pem_slice(cert_pem).map_err(err)?;
        let provider = crate::tls::provider();
        let cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(err)?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Pinned { cert, provider }))
            .with_no_client_auth();
        Ok(Client {
            addr,
            connector: TlsConnector::from(Arc::new(cfg)),
            token,
            server_name: None,
        })
    }

    /// Expects the server's certificate to name `name` (a DNS name such as the webhook
    /// Service's `rayward-webhook.NS.svc`) instead of the IP connected to: what the API
    /// server checks when it calls a webhook through its Service, reached here through a
    /// port-forward or a local process.
    pub fn with_server_name(mut self, name: &str) -> Result<Client, ClientError> {
        self.server_name = Some(ServerName::try_from(name.to_string()).map_err(err)?);
        Ok(self)
    }

    pub async fn connect(&self) -> Result<Conn, ClientError> {
        let tcp = tokio::net::TcpStream::connect(self.addr)
            .await
            .map_err(err)?;
        let _ = tcp.set_nodelay(true);
        let name = self
            .server_name
            .clone()
            .unwrap_or_else(|| ServerName::IpAddress(self.addr.ip().into()));
        let tls = self.connector.connect(name, tcp).await.map_err(err)?;
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(err)?;
        tokio::spawn(conn);
        Ok(Conn {
            send,
            token: self.token.clone(),
            host: self.addr.to_string(),
        })
    }

    /// One request on a fresh connection.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<Answer, ClientError> {
        self.connect()
            .await?
            .request(method, path, content_type, body)
            .await
    }
}

impl Conn {
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<Answer, ClientError> {
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, &self.host)
            .header(hyper::header::ACCEPT, "application/json")
            .header(hyper::header::CONTENT_TYPE, content_type);
        if let Some(t) = &self.token {
            req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = req.body(Full::new(Bytes::from(body))).map_err(err)?;
        self.send.ready().await.map_err(err)?;
        let resp = self.send.send_request(req).await.map_err(err)?;
        let status = resp.status().as_u16();
        let warnings = resp
            .headers()
            .get_all(hyper::header::WARNING)
            .iter()
            .map(|v| warning_text(&String::from_utf8_lossy(v.as_bytes())))
            .collect();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(err)?
            .to_bytes()
            .to_vec();
        Ok(Answer {
            status,
            warnings,
            body,
        })
    }
}

/// The text of a `Warning: 299 - "text"` header (RFC 7234), unescaped.
fn warning_text(h: &str) -> String {
    let Some(start) = h.find('"') else {
        return h.to_string();
    };
    let inner = &h[start + 1..];
    let inner = inner.strip_suffix('"').unwrap_or(inner);
    inner.replace("\\\"", "\"").replace("\\\\", "\\")
}

/// Accepts one exact end-entity certificate; handshake signatures are still verified.
#[derive(Debug)]
struct Pinned {
    cert: CertificateDer<'static>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.cert.as_ref() {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("not the pinned certificate".into()))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
