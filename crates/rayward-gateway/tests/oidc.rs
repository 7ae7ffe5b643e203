//! OIDC bearer JWTs end to end: key pairs generated here, a JWKS served by a real local
//! HTTP server (and from a file), the gateway in front of a small real upstream. Every
//! forged or out-of-policy token must get 401 and never reach the upstream; mapped roles
//! must authorize exactly as the role table says.

use crate::common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use bytes::Bytes;
use common::*;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

const ISS: &str = "https://idp.example.test/realms/ray";
const AUD: &str = "ray-gateway";

/// A signing key and its public JWK.
struct Signer {
    enc: EncodingKey,
    alg: Algorithm,
    kid: String,
    jwk: serde_json::Value,
    /// Public-key bytes an attacker could try as an HMAC secret.
    public_forms: Vec<Vec<u8>>,
}

fn es256(kid: &str) -> Signer {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let enc = EncodingKey::from_ec_der(&kp.serialize_der());
    signer(enc, Algorithm::ES256, kid, &kp)
}

fn rs256(kid: &str) -> Signer {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let enc = EncodingKey::from_rsa_der(pkcs8_inner(&kp.serialize_der()));
    signer(enc, Algorithm::RS256, kid, &kp)
}

fn signer(enc: EncodingKey, alg: Algorithm, kid: &str, kp: &rcgen::KeyPair) -> Signer {
    let mut jwk = Jwk::from_encoding_key(&enc, alg).unwrap();
    jwk.common.key_id = Some(kid.to_string());
    let jwk = serde_json::to_value(&jwk).unwrap();
    let mut public_forms = vec![
        rcgen::PublicKeyData::subject_public_key_info(kp),
        kp.public_key_pem().into_bytes(),
        kp.public_key_raw().to_vec(),
        serde_json::to_vec(&jwk).unwrap(),
    ];
    for field in ["x", "n"] {
        if let Some(v) = jwk.get(field).and_then(|v| v.as_str()) {
            public_forms.push(v.as_bytes().to_vec());
            public_forms.push(B64.decode(v).unwrap());
        }
    }
    Signer {
        enc,
        alg,
        kid: kid.to_string(),
        jwk,
        public_forms,
    }
}

/// The PKCS#1 RSAPrivateKey inside a PKCS#8 PrivateKeyInfo (the OCTET STRING after the
/// version and the algorithm identifier).
fn pkcs8_inner(der: &[u8]) -> &[u8] {
    fn tlv(b: &[u8]) -> (u8, &[u8], &[u8]) {
        let tag = b[0];
        let (len, hdr) = if b[1] < 0x80 {
            (b[1] as usize, 2)
        } else {
            let n = (b[1] & 0x7f) as usize;
            (
                b[2..2 + n].iter().fold(0usize, |a, &x| a << 8 | x as usize),
                2 + n,
            )
        };
        (tag, &b[hdr..hdr + len], &b[hdr + len..])
    }
    let (_, seq, _) = tlv(der);
    let (_, _version, rest) = tlv(seq);
    let (_, _alg, rest) = tlv(rest);
    let (tag, key, _) = tlv(rest);
    assert_eq!(tag, 0x04, "PKCS#8 private key OCTET STRING");
    key
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn claims(sub_email: &str, groups: serde_json::Value) -> serde_json::Value {
    json!({
        "iss": ISS,
        "aud": AUD,
        "sub": "0f9c-uuid",
        "email": sub_email,
        "groups": groups,
        "iat": now(),
        "exp": now() + 300,
    })
}

fn sign(s: &Signer, claims: &serde_json::Value) -> String {
    let mut h = Header::new(s.alg);
    h.kid = Some(s.kid.clone());
    jsonwebtoken::encode(&h, claims, &s.enc).unwrap()
}

fn with(mut c: serde_json::Value, key: &str, v: serde_json::Value) -> serde_json::Value {
    c[key] = v;
    c
}

fn without(mut c: serde_json::Value, key: &str) -> serde_json::Value {
    c.as_object_mut().unwrap().remove(key);
    c
}

/// A JWKS served over HTTP, counting fetches; the set can be replaced (key rotation).
struct JwksServer {
    addr: SocketAddr,
    jwks: Arc<Mutex<String>>,
    fetches: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl JwksServer {
    async fn start(keys: &[&Signer]) -> JwksServer {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let jwks = Arc::new(Mutex::new(jwks_text(keys)));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (j, f) = (jwks.clone(), fetches.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((s, _)) = l.accept().await else { break };
                let (j, f) = (j.clone(), f.clone());
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: http::Request<_>| {
                        let body = j.lock().unwrap().clone();
                        let f = f.clone();
                        async move {
                            let r = if req.uri().path() == "/jwks" {
                                f.fetch_add(1, Ordering::SeqCst);
                                http::Response::new(Full::new(Bytes::from(body)))
                            } else {
                                let mut r = http::Response::new(Full::new(Bytes::new()));
                                *r.status_mut() = http::StatusCode::NOT_FOUND;
                                r
                            };
                            Ok::<_, Infallible>(r)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(s), svc)
                        .await;
                });
            }
        });
        JwksServer {
            addr,
            jwks,
            fetches,
            task,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/jwks", self.addr)
    }

    fn set(&self, keys: &[&Signer]) {
        *self.jwks.lock().unwrap() = jwks_text(keys);
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

fn jwks_text(keys: &[&Signer]) -> String {
    json!({ "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() }).to_string()
}

fn oidc_config(jwks: &str, extra: &str) -> String {
    format!(
        r#"[auth.oidc]
issuer = "{ISS}"
audience = ["{AUD}", "other-app"]
{jwks}
user_claim = "email"
roles_claim = "groups"
leeway_secs = 30
{extra}
[auth.oidc.role_map]
ray-viewers = "viewer"
ray-users = "submitter"
ray-admins = "admin"
"#
    )
}

/// Many refusals in a row from one address: keep the failed-login backoff out of the way.
const NO_BACKOFF: &str = "[limits]\nfailed_login_threshold = 100000\n";

struct Env {
    gw: GatewayGuard,
    up: Upstream,
    dir: tempfile::TempDir,
}

async fn env(jwks_line: &str, extra: &str) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let tok = dir.path().join("ray_token");
    std::fs::write(&tok, "cluster-token").unwrap();
    let up = upstream().await;
    let text = config(
        dir.path(),
        &format!("http://{}", up.addr),
        &tok,
        &format!("{}{NO_BACKOFF}", oidc_config(jwks_line, extra)),
    );
    let gw = start_gateway(&text).await;
    Env { gw, up, dir }
}

impl Env {
    async fn status(&self, method: &str, path: &str, token: &str) -> u16 {
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {token}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
        );
        raw(self.gw.addr, req.as_bytes()).await.status
    }

    fn hits(&self) -> usize {
        self.up.hits.load(Ordering::SeqCst)
    }
}

#[tokio::test]
async fn mapped_roles_authorize_by_route_class() {
    let k = es256("k1");
    let idp = JwksServer::start(&[&k]).await;
    let e = env(&format!("jwks_url = \"{}\"", idp.url()), "").await;
    assert_eq!(idp.fetches(), 1, "keys fetched at start");

    let viewer = sign(
        &k,
        &claims("vera@corp.test", json!(["staff", "ray-viewers"])),
    );
    let submitter = sign(&k, &claims("sam@corp.test", json!("ray-users")));
    let admin = sign(&k, &claims("ann@corp.test", json!(["ray-admins"])));
    let nobody = sign(&k, &claims("ned@corp.test", json!(["staff"])));

    for (token, read, write, admin_route) in [
        (&viewer, 200, 403, 403),
        (&submitter, 200, 200, 403),
        (&admin, 200, 200, 200),
        (&nobody, 403, 403, 403),
    ] {
        assert_eq!(e.status("GET", "/api/jobs/", token).await, read);
        assert_eq!(e.status("POST", "/api/jobs/", token).await, write);
        assert_eq!(
            e.status("GET", "/worker/traceback?pid=1", token).await,
            admin_route
        );
    }
    assert_eq!(
        e.hits(),
        3 + 2 + 1,
        "only allowed requests reach the upstream"
    );

    // The audit log names the user from the configured claim and the mapped role.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let log = std::fs::read_to_string(e.dir.path().join("audit.jsonl")).unwrap();
    let recs: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        recs.iter().any(|r| r["user"] == "oidc:sam@corp.test"
            && r["role"] == "submitter"
            && r["status"] == 200
            && r["path"] == "/api/jobs/"),
        "{log}"
    );
    assert!(
        recs.iter().any(|r| r["user"] == "oidc:vera@corp.test"
            && r["role"] == "viewer"
            && r["status"] == 403),
        "{log}"
    );
    assert!(!log.contains(&submitter), "no token in the audit log");
}

/// The issue's finding: a validly signed token whose user claim equals a local user's
/// name got that user's roles. Principals are namespaced by source now: `ada` (htpasswd
/// admin) and `ci` (token submitter) as OIDC users get nothing, and an OIDC user's role
/// comes from an `oidc:` key only.
#[tokio::test]
async fn an_oidc_user_named_like_a_local_user_gets_none_of_its_roles() {
    let k = es256("k1");
    let idp = JwksServer::start(&[&k]).await;
    let e = env(&format!("jwks_url = \"{}\"", idp.url()), "").await;
    for local in ["ada", "ci", "alice", "htpasswd:ada"] {
        let t = sign(&k, &claims(local, json!([])));
        assert_eq!(e.status("GET", "/api/jobs/", &t).await, 403, "{local}");
        assert_eq!(
            e.status("GET", "/worker/traceback?pid=1", &t).await,
            403,
            "{local}"
        );
    }
    assert_eq!(e.hits(), 0);
    // `oidc:olga@corp.test = "admin"` in [users] (tests/common) applies to her token.
    let olga = sign(&k, &claims("olga@corp.test", json!([])));
    assert_eq!(e.status("GET", "/worker/traceback?pid=1", &olga).await, 200);
    assert_eq!(e.hits(), 1);
    // The local users keep their roles.
    let r = raw(
        e.gw.addr,
        &get("/worker/traceback?pid=1", Some(&basic("ada", ADA_PW)), ""),
    )
    .await;
    assert_eq!(r.status, 200);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let log = std::fs::read_to_string(e.dir.path().join("audit.jsonl")).unwrap();
    assert!(log.contains(r#""user":"oidc:ada""#), "{log}");
    assert!(
        log.contains(r#""user":"htpasswd:ada","role":"admin""#),
        "{log}"
    );
    assert!(
        log.contains(r#""user":"oidc:olga@corp.test","role":"admin""#),
        "{log}"
    );
}

#[tokio::test]
async fn forged_and_out_of_policy_tokens_get_401() {
    let k = es256("k1");
    let other = es256("k1"); // same kid, different key: a bad signature
    let idp = JwksServer::start(&[&k]).await;
    let e = env(&format!("jwks_url = \"{}\"", idp.url()), "").await;
    let good = claims("sam@corp.test", json!(["ray-admins"]));
    assert_eq!(e.status("GET", "/api/jobs/", &sign(&k, &good)).await, 200);
    let hits = e.hits();

    let mut cases: Vec<(String, String)> = vec![
        (
            "wrong issuer".into(),
            sign(&k, &with(good.clone(), "iss", json!("https://evil.test"))),
        ),
        (
            "wrong audience".into(),
            sign(&k, &with(good.clone(), "aud", json!("someone-else"))),
        ),
        (
            "audience list without ours".into(),
            sign(&k, &with(good.clone(), "aud", json!(["a", "b"]))),
        ),
        (
            "expired beyond leeway".into(),
            sign(&k, &with(good.clone(), "exp", json!(now() - 120))),
        ),
        (
            "not yet valid".into(),
            sign(&k, &with(good.clone(), "nbf", json!(now() + 600))),
        ),
        (
            "nbf as a string".into(),
            sign(
                &k,
                &with(good.clone(), "nbf", json!((now() + 600).to_string())),
            ),
        ),
        (
            "exp as a string".into(),
            sign(
                &k,
                &with(good.clone(), "exp", json!((now() + 600).to_string())),
            ),
        ),
        ("no exp".into(), sign(&k, &without(good.clone(), "exp"))),
        ("no iss".into(), sign(&k, &without(good.clone(), "iss"))),
        ("no aud".into(), sign(&k, &without(good.clone(), "aud"))),
        (
            "no user claim".into(),
            sign(&k, &without(good.clone(), "email")),
        ),
        ("bad signature".into(), sign(&other, &good)),
    ];
    // Unknown kid.
    let mut h = Header::new(Algorithm::ES256);
    h.kid = Some("not-published".into());
    cases.push((
        "unknown kid".into(),
        jsonwebtoken::encode(&h, &good, &k.enc).unwrap(),
    ));
    // A valid token with its signature swapped for another token's.
    let t = sign(&k, &good);
    let t2 = sign(&k, &with(good.clone(), "email", json!("ann@corp.test")));
    let spliced = format!(
        "{}.{}",
        t2.rsplit_once('.').unwrap().0,
        t.rsplit_once('.').unwrap().1
    );
    cases.push(("spliced signature".into(), spliced));
    // alg none, with and without a signature part.
    for alg in ["none", "None", "NONE"] {
        let head = B64.encode(json!({"alg": alg, "typ": "JWT", "kid": "k1"}).to_string());
        let body = B64.encode(good.to_string());
        cases.push((format!("alg {alg}"), format!("{head}.{body}.")));
        cases.push((
            format!("alg {alg} with a signature"),
            format!("{head}.{body}.{}", t.rsplit_once('.').unwrap().1),
        ));
    }
    // Algorithm confusion: HS256 keyed with every form of the public key.
    for (i, secret) in k.public_forms.iter().enumerate() {
        for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            let mut h = Header::new(alg);
            h.kid = Some("k1".into());
            let t = jsonwebtoken::encode(&h, &good, &EncodingKey::from_secret(secret)).unwrap();
            cases.push((format!("{alg:?} keyed with public form {i}"), t));
        }
    }
    // An allowed algorithm of the wrong family for the key (RS256 header, EC key).
    let rsa = rs256("k1");
    cases.push(("RS256 against an EC kid".into(), sign(&rsa, &good)));

    for (what, token) in &cases {
        assert_eq!(e.status("GET", "/api/jobs/", token).await, 401, "{what}");
    }
    assert_eq!(e.hits(), hits, "no refused token reached the upstream");
    // Within leeway is still fine.
    let edge = sign(&k, &with(good.clone(), "exp", json!(now() - 5)));
    assert_eq!(e.status("GET", "/api/jobs/", &edge).await, 200);
}

#[tokio::test]
async fn unknown_kid_refetches_keys_at_a_bounded_rate() {
    let k1 = es256("k1");
    let k2 = es256("k2");
    let idp = JwksServer::start(&[&k1]).await;
    let e = env(
        &format!("jwks_url = \"{}\"", idp.url()),
        "jwks_min_refetch_secs = 1",
    )
    .await;
    let c = claims("sam@corp.test", json!(["ray-users"]));
    assert_eq!(idp.fetches(), 1);
    // The IdP rotates: k2 appears. The first k2 token triggers a refetch and passes.
    idp.set(&[&k1, &k2]);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(e.status("GET", "/api/jobs/", &sign(&k2, &c)).await, 200);
    assert_eq!(idp.fetches(), 2);
    // A burst of made-up kids costs at most one more fetch per interval.
    let mut h = Header::new(Algorithm::ES256);
    for i in 0..20 {
        h.kid = Some(format!("made-up-{i}"));
        let t = jsonwebtoken::encode(&h, &c, &k1.enc).unwrap();
        assert_eq!(e.status("GET", "/api/jobs/", &t).await, 401);
    }
    assert!(idp.fetches() <= 3, "fetches: {}", idp.fetches());
    // k1 retired by the IdP: still accepted until the keys are refetched, then refused.
    idp.set(&[&k2]);
    assert_eq!(e.status("GET", "/api/jobs/", &sign(&k1, &c)).await, 200);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let mut h = Header::new(Algorithm::ES256);
    h.kid = Some("made-up-again".into());
    let t = jsonwebtoken::encode(&h, &c, &k1.enc).unwrap();
    assert_eq!(e.status("GET", "/api/jobs/", &t).await, 401);
    assert_eq!(e.status("GET", "/api/jobs/", &sign(&k1, &c)).await, 401);
    assert_eq!(e.status("GET", "/api/jobs/", &sign(&k2, &c)).await, 200);
}

#[tokio::test]
async fn jwks_from_a_file_with_rs256_and_es256() {
    let rsa = rs256("rsa-1");
    let ec = es256("ec-1");
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, jwks_text(&[&rsa, &ec])).unwrap();
    let e = env(&format!("jwks_file = \"{}\"", jwks.display()), "").await;
    let c = claims("sam@corp.test", json!(["ray-users"]));
    assert_eq!(e.status("POST", "/api/jobs/", &sign(&rsa, &c)).await, 200);
    assert_eq!(e.status("POST", "/api/jobs/", &sign(&ec, &c)).await, 200);
    // Opaque gateway tokens still work beside JWTs.
    assert_eq!(e.status("POST", "/api/jobs/", CI_TOKEN).await, 200);
    assert_eq!(e.hits(), 3);
}

#[tokio::test]
async fn algorithm_allow_list_is_enforced() {
    let rsa = rs256("rsa-1");
    let ec = es256("ec-1");
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, jwks_text(&[&rsa, &ec])).unwrap();
    let e = env(
        &format!("jwks_file = \"{}\"", jwks.display()),
        "algorithms = [\"ES256\"]",
    )
    .await;
    let c = claims("sam@corp.test", json!(["ray-users"]));
    assert_eq!(e.status("GET", "/api/jobs/", &sign(&rsa, &c)).await, 401);
    assert_eq!(e.status("GET", "/api/jobs/", &sign(&ec, &c)).await, 200);
}

#[tokio::test]
async fn bad_oidc_configs_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let tok = dir.path().join("ray_token");
    std::fs::write(&tok, "t").unwrap();
    let file = "jwks_file = \"/nonexistent/jwks.json\"";
    for (jwks, extra, want) in [
        (
            file,
            "algorithms = [\"HS256\"]",
            "HMAC algorithms are refused",
        ),
        (
            file,
            "algorithms = [\"RS256\", \"HS512\"]",
            "HMAC algorithms are refused",
        ),
        (file, "algorithms = [\"none\"]", "unsigned tokens"),
        (file, "algorithms = []", "at least one"),
        (file, "jwks_url = \"http://x/jwks\"", "exactly one"),
        ("jwks_url = \"ftp://x/jwks\"", "", "http:// or https://"),
        ("", "", "exactly one"),
    ] {
        let text = config(
            dir.path(),
            "http://127.0.0.1:1",
            &tok,
            &oidc_config(jwks, extra),
        );
        let e = rayward_gateway::Config::parse(&text, "g.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{extra}: {e}");
    }
    // A JWKS file that cannot be read stops the start with its path named.
    let text = config(
        dir.path(),
        "http://127.0.0.1:1",
        &tok,
        &oidc_config("jwks_file = \"/nonexistent/jwks.json\"", ""),
    );
    let cfg = rayward_gateway::Config::parse(&text, "g.toml").unwrap();
    let e = match rayward_gateway::Server::bind(&cfg).await {
        Ok(_) => panic!("started without keys"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("/nonexistent/jwks.json"), "{e}");
}
