//! The accept loop through real sockets on 127.0.0.1: requests in flight finish after
//! shutdown begins while new connections are refused, a silent client is cut off at the
//! header deadline, and TLS serves the certificate on disk, reloaded when it changes.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use rayward_serve::{serve, CertStore, ConnOptions};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// `/slow` answers after 800 ms, anything else at once with the peer's address.
fn app(
    peer: std::net::SocketAddr,
) -> impl hyper::service::Service<
    Request<hyper::body::Incoming>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future = impl Send,
> + Send {
    hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| async move {
        if req.uri().path() == "/slow" {
            tokio::time::sleep(Duration::from_millis(800)).await;
        }
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(format!(
            "hello {}",
            peer.ip()
        )))))
    })
}

async fn get(addr: std::net::SocketAddr, path: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await?;
    let mut out = String::new();
    s.read_to_string(&mut out).await?;
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_requests_in_flight_finish_and_refuses_new_ones() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, None, ConnOptions::default(), app, async {
        let _ = stopped.await;
    }));
    assert!(get(addr, "/").await.unwrap().contains("hello 127.0.0.1"));

    let slow = tokio::spawn(get(addr, "/slow"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t0 = Instant::now();
    stop.send(()).unwrap();
    // The request in flight is answered in full, not cut.
    let answer = slow.await.unwrap().unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("hello 127.0.0.1"), "{answer}");
    // The loop ends once it has drained, well before the 10 s drain limit.
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the server stops after draining")
        .unwrap();
    assert!(t0.elapsed() < Duration::from_secs(5));
    // And nobody is listening any more.
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_is_bounded() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let opts = ConnOptions {
        drain: Duration::from_millis(100),
        ..ConnOptions::default()
    };
    let server = tokio::spawn(serve(listener, None, opts, app, async {
        let _ = stopped.await;
    }));
    let slow = tokio::spawn(get(addr, "/slow"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let t0 = Instant::now();
    stop.send(()).unwrap();
    server.await.unwrap();
    // The 800 ms request outlived the 100 ms drain: the loop did not wait for it.
    assert!(
        t0.elapsed() < Duration::from_millis(600),
        "{:?}",
        t0.elapsed()
    );
    drop(slow);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_client_is_cut_off_at_the_header_deadline() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let opts = ConnOptions {
        header_timeout: Duration::from_millis(300),
        ..ConnOptions::default()
    };
    let server = tokio::spawn(serve(listener, None, opts, app, std::future::pending()));
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap(); // never ends the head
    let t0 = Instant::now();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
        .await
        .expect("the server closes the connection");
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(3),
        "{took:?}"
    );
    server.abort();
}

fn write_pair(dir: &std::path::Path, name: &str) -> Vec<u8> {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let cert = params.self_signed(&key).unwrap();
    std::fs::write(dir.join("tls.key"), key.serialize_pem()).unwrap();
    std::fs::write(dir.join("tls.crt"), cert.pem()).unwrap();
    cert.der().to_vec()
}

/// The certificate a TLS client is shown.
async fn served_cert(addr: std::net::SocketAddr) -> Vec<u8> {
    #[derive(Debug)]
    struct Any;
    impl rustls::client::danger::ServerCertVerifier for Any {
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
            _: &[u8],
            _: &rustls_pki_types::CertificateDer<'_>,
            _: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
        }
        fn verify_tls13_signature(
            &self,
            _: &[u8],
            _: &rustls_pki_types::CertificateDer<'_>,
            _: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            rayward_serve::tls::provider()
                .signature_verification_algorithms
                .supported_schemes()
        }
    }
    let cfg = rustls::ClientConfig::builder_with_provider(rayward_serve::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Any))
        .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap();
    tls.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut body = String::new();
    tls.read_to_string(&mut body).await.unwrap();
    assert!(body.contains("hello 127.0.0.1"), "{body}");
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_the_certificate_on_disk_and_its_replacement() {
    let dir = tempfile::tempdir().unwrap();
    let first = write_pair(dir.path(), "first");
    let store = CertStore::load(&dir.path().join("tls.crt"), &dir.path().join("tls.key")).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let watcher = tokio::spawn(store.clone().watch(Duration::from_millis(100), "test"));
    let server = tokio::spawn(serve(
        listener,
        Some(store),
        ConnOptions::default(),
        app,
        std::future::pending(),
    ));
    assert_eq!(served_cert(addr).await, first);
    let second = write_pair(dir.path(), "second");
    assert_ne!(first, second);
    let t0 = Instant::now();
    loop {
        if served_cert(addr).await == second {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "the new certificate was not taken"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.abort();
    watcher.abort();
}
