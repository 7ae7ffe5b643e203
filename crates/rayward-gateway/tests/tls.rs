//! The HTTPS listener: serves with the configured certificate and picks up a new one
//! when the files change, without a restart.

use crate::common;

use common::*;
use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls;

async fn start_upstream() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(|_req| async {
                    Ok::<_, Infallible>(http::Response::new(http_body_util::Full::new(
                        bytes::Bytes::from_static(b"from-upstream"),
                    )))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    (addr, task)
}

fn write_cert(dir: &Path) -> rustls_pki_types::CertificateDer<'static> {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    // Key first, then certificate: the reloader must cope with either order.
    std::fs::write(dir.join("tls.key"), ck.signing_key.serialize_pem()).unwrap();
    std::fs::write(dir.join("tls.crt"), ck.cert.pem()).unwrap();
    ck.cert.der().clone()
}

async fn https_get(
    addr: std::net::SocketAddr,
    root: &rustls_pki_types::CertificateDer<'static>,
) -> Result<Raw, String> {
    https(
        addr,
        root,
        &get("/api/version", Some(&basic("vic", VIC_PW)), ""),
    )
    .await
}

async fn https(
    addr: std::net::SocketAddr,
    root: &rustls_pki_types::CertificateDer<'static>,
    request: &[u8],
) -> Result<Raw, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.clone()).unwrap();
    let cfg = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(
            rustls_pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
        .map_err(|e| e.to_string())?;
    tls.write_all(request).await.unwrap();
    let mut buf = Vec::new();
    // A peer that closes without close_notify still sent the whole response.
    let _ = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut buf)).await;
    Ok(parse_response(&buf))
}

#[tokio::test]
async fn serves_https_and_reloads_the_certificate() {
    let (up, up_task) = start_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let tok = dir.path().join("ray-token");
    std::fs::write(&tok, "t").unwrap();
    let first = write_cert(dir.path());
    std::fs::write(dir.path().join("session.key"), [9u8; 32]).unwrap();
    let extra = format!(
        "[tls]\ncert = \"{}\"\nkey = \"{}\"\n[session]\nkey_file = \"{}\"\n",
        dir.path().join("tls.crt").display(),
        dir.path().join("tls.key").display(),
        dir.path().join("session.key").display()
    );
    let gw = start_gateway(&config(dir.path(), &format!("http://{up}"), &tok, &extra)).await;

    let r = https_get(gw.addr, &first)
        .await
        .expect("TLS with the first certificate");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body_text(), "from-upstream");
    // Over TLS the session cookie is Secure, and so is the login form's CSRF cookie.
    let page = https(
        gw.addr,
        &first,
        b"GET /rayward/login HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let csrf_cookie = page.header("set-cookie").unwrap();
    assert!(csrf_cookie.ends_with("; Secure"), "{csrf_cookie}");
    let nonce = csrf_cookie.split(';').next().unwrap().to_string();
    let text = page.body_text();
    let token = text
        .split("name=csrf value=\"")
        .nth(1)
        .and_then(|t| t.split('"').next())
        .unwrap()
        .to_string();
    let login = String::from_utf8(login_post("vic", VIC_PW, Some((&nonce, &token)), "")).unwrap();
    let r = https(gw.addr, &first, login.as_bytes()).await.unwrap();
    assert_eq!(r.status, 303, "{r:?}");
    let set = r.header("set-cookie").unwrap();
    assert!(
        set.ends_with("; HttpOnly; SameSite=Strict; Secure"),
        "{set}"
    );
    // Plain HTTP on the TLS port gets no HTTP answer.
    let plain = raw(
        gw.addr,
        &get("/api/version", Some(&basic("vic", VIC_PW)), ""),
    )
    .await;
    assert_eq!(plain.status, 0, "{plain:?}");

    tokio::time::sleep(Duration::from_millis(1100)).await; // a new mtime
    let second = write_cert(dir.path());
    let mut ok = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Ok(r) = https_get(gw.addr, &second).await {
            assert_eq!(r.status, 200);
            ok = true;
            break;
        }
    }
    assert!(ok, "the new certificate was never served");
    assert!(
        https_get(gw.addr, &first).await.is_err(),
        "the old certificate is still served"
    );
    up_task.abort();
}
