//! The three read-only questions the probe asks a port, each within a deadline: an HTTP
//! GET, a TLS handshake offer, and one gRPC call to a method that does not exist.

use http_body_util::{BodyExt, Empty, Full, Limited};
use hyper::body::Bytes;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;

/// What an HTTP GET got back.
#[derive(Clone, Debug)]
pub struct HttpAnswer {
    pub status: u16,
    /// `Server` and `Content-Type`, when present.
    pub server: Option<String>,
    pub content_type: Option<String>,
    /// At most the first 4 KiB of the body.
    pub body: Vec<u8>,
}

/// Why a question got no answer.
#[derive(Clone, Debug, thiserror::Error)]
pub enum NoAnswer {
    #[error("connection refused")]
    Refused,
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Other(String),
}

async fn connect(addr: SocketAddr, deadline: Duration) -> Result<TcpStream, NoAnswer> {
    match tokio::time::timeout(deadline, TcpStream::connect(addr)).await {
        Err(_) => Err(NoAnswer::Timeout(deadline)),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => Err(NoAnswer::Refused),
        Ok(Err(e)) => Err(NoAnswer::Other(e.to_string())),
        Ok(Ok(s)) => Ok(s),
    }
}

/// Whether anything listens on `addr`.
pub async fn reachable(addr: SocketAddr, deadline: Duration) -> Result<(), NoAnswer> {
    connect(addr, deadline).await.map(drop)
}

/// `GET path` over HTTP/1.1, with no credentials and no cookies.
pub async fn get(addr: SocketAddr, path: &str, deadline: Duration) -> Result<HttpAnswer, NoAnswer> {
    let work = async {
        let stream = connect(addr, deadline).await?;
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| NoAnswer::Other(e.to_string()))?;
        tokio::spawn(conn);
        let req = Request::get(path)
            .header("host", addr.to_string())
            .header("user-agent", "rayward-probe")
            .header("accept", "application/json")
            .body(Empty::<Bytes>::new())
            .map_err(|e| NoAnswer::Other(e.to_string()))?;
        let resp = send
            .send_request(req)
            .await
            .map_err(|e| NoAnswer::Other(format!("not HTTP: {e}")))?;
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let (server, content_type) = (header("server"), header("content-type"));
        let status = resp.status().as_u16();
        // The body matters only for the version; a large one is cut, not read.
        let body = match Limited::new(resp.into_body(), 4096).collect().await {
            Ok(b) => b.to_bytes().to_vec(),
            Err(_) => Vec::new(),
        };
        Ok(HttpAnswer {
            status,
            server,
            content_type,
            body,
        })
    };
    tokio::time::timeout(deadline, work)
        .await
        .unwrap_or(Err(NoAnswer::Timeout(deadline)))
}

/// Whether the port answers a TLS ClientHello with a TLS handshake.
pub async fn speaks_tls(addr: SocketAddr, deadline: Duration) -> Result<bool, NoAnswer> {
    let work = async {
        let stream = connect(addr, deadline).await?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| NoAnswer::Other(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth();
        let name = rustls_pki_types::ServerName::IpAddress(addr.ip().into());
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config));
        match tls.connect(name, stream).await {
            Ok(_) => Ok(true),
            Err(e) => {
                // A server that sent a TLS alert or a certificate request speaks TLS (Ray's
                // mutual TLS refuses a client without a certificate); one that answered
                // with bytes that are not TLS, or hung up, does not.
                let text = e.to_string();
                let tls_like = e
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                    .is_some_and(|r| {
                        matches!(
                            r,
                            rustls::Error::AlertReceived(_)
                                | rustls::Error::NoCertificatesPresented
                                | rustls::Error::InvalidCertificate(_)
                                | rustls::Error::PeerIncompatible(_)
                        )
                    });
                if tls_like {
                    Ok(true)
                } else if e.kind() == std::io::ErrorKind::UnexpectedEof
                    || text.contains("corrupt message")
                    || text.contains("InvalidContentType")
                    || e.kind() == std::io::ErrorKind::ConnectionReset
                    || e.kind() == std::io::ErrorKind::InvalidData
                {
                    Ok(false)
                } else {
                    Err(NoAnswer::Other(text))
                }
            }
        }
    };
    tokio::time::timeout(deadline, work)
        .await
        .unwrap_or(Err(NoAnswer::Timeout(deadline)))
}

/// The `grpc-status` of one unary call (`method`, an empty request message) over
/// plaintext HTTP/2.
pub async fn grpc_status(
    addr: SocketAddr,
    method: &str,
    deadline: Duration,
) -> Result<Option<u32>, NoAnswer> {
    let work = async {
        let stream = connect(addr, deadline).await?;
        let (mut send, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .map_err(|e| NoAnswer::Other(format!("not HTTP/2: {e}")))?;
        tokio::spawn(conn);
        // An empty protobuf message, framed: no compression flag, length 0.
        let req = Request::post(format!("http://{addr}{method}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .header("user-agent", "rayward-probe")
            .body(Full::new(Bytes::from_static(&[0, 0, 0, 0, 0])))
            .map_err(|e| NoAnswer::Other(e.to_string()))?;
        let resp = send
            .send_request(req)
            .await
            .map_err(|e| NoAnswer::Other(format!("no gRPC answer: {e}")))?;
        let in_headers = resp
            .headers()
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        if in_headers.is_some() {
            return Ok(in_headers);
        }
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| NoAnswer::Other(e.to_string()))?;
        Ok(body
            .trailers()
            .and_then(|t| t.get("grpc-status"))
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok()))
    };
    tokio::time::timeout(deadline, work)
        .await
        .unwrap_or(Err(NoAnswer::Timeout(deadline)))
}

/// Accepts any certificate: the probe only asks whether the port speaks TLS, and sends
/// nothing over the connection.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &rustls_pki_types::CertificateDer<'_>,
        _: &[rustls_pki_types::CertificateDer<'_>],
        _: &rustls_pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
