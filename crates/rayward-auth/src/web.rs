//! The browser side of authentication, over hyper's types, for every server with a login
//! form (the gateway, the history server): the login page with its CSRF nonce, the login
//! POST (same-origin checks, the form read under a size bound, the CSRF token), the signed
//! session cookie it opens, the session read back on each request (checked against the
//! current htpasswd entry), and logout. What stays with each server: failed-login
//! backoff, where revocations are kept (memory, Redis), and what a refusal looks like.

use crate::config::SessionConfig;
use crate::session::{self, Claims, Sessions};
use crate::{Authenticator, Identity, Source};
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};

/// The login form's path (no Ray or dashboard route starts with `/rayward/`).
pub const LOGIN_PATH: &str = "/rayward/login";
/// Where a browser logs out (POST).
pub const LOGOUT_PATH: &str = "/rayward/logout";
/// Largest login form read.
pub const MAX_LOGIN_BODY: usize = 8 * 1024;

/// A refusal of a login or logout request: the server renders it its own way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub status: StatusCode,
    /// The outcome label for metrics and audit logs (`rejected`, `forbidden`).
    pub outcome: &'static str,
    pub reason: String,
}

fn refused(status: StatusCode, outcome: &'static str, reason: impl Into<String>) -> Refused {
    Refused {
        status,
        outcome,
        reason: reason.into(),
    }
}

/// The login endpoints a request may be for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `GET /rayward/login` (`?failed` after a wrong password).
    LoginPage { failed: bool },
    /// `POST /rayward/login`.
    Login,
    /// `POST /rayward/logout`.
    Logout,
}

impl Endpoint {
    pub fn of(method: &Method, path: &str, query: Option<&str>) -> Option<Endpoint> {
        match (method, path) {
            (&Method::GET, LOGIN_PATH) => Some(Endpoint::LoginPage {
                failed: query == Some("failed"),
            }),
            (&Method::POST, LOGIN_PATH) => Some(Endpoint::Login),
            (&Method::POST, LOGOUT_PATH) => Some(Endpoint::Logout),
            _ => None,
        }
    }
}

/// Where a failed login sends the browser back to.
pub fn failed_location() -> String {
    format!("{LOGIN_PATH}?failed")
}

/// Whether the client is a browser asking for a page (then a missing login is answered
/// with a redirect to the form rather than 401).
pub fn accepts_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Browser logins of one server: its session key and settings.
pub struct Web {
    sessions: Sessions,
    login_origins: Vec<String>,
    tls: bool,
    title: String,
    home: String,
}

impl Web {
    /// From the `[session]` section; `tls`: served over HTTPS (cookies get `Secure`);
    /// `title` names what is behind the login; `home` is where a login lands.
    pub fn from_config(
        sc: &SessionConfig,
        tls: bool,
        title: &str,
        home: &str,
    ) -> Result<Web, String> {
        Ok(Web::new(
            Sessions::from_key_file(&sc.key_file, sc.ttl_secs)?,
            sc.login_origins.clone(),
            tls,
            title,
            home,
        ))
    }

    pub fn new(
        sessions: Sessions,
        login_origins: Vec<String>,
        tls: bool,
        title: &str,
        home: &str,
    ) -> Web {
        Web {
            sessions,
            login_origins,
            tls,
            title: title.to_string(),
            home: home.to_string(),
        }
    }

    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    pub fn tls(&self) -> bool {
        self.tls
    }

    /// Refuses a login or logout POST sent by another site's page: `Sec-Fetch-Site` must
    /// be `same-origin` when the browser sends it, and `Origin` must be the server's own
    /// (the request's `Host`, or one of `session.login_origins`). Clients that send
    /// neither (curl, scripts) are no browser acting for someone else; the login form's
    /// CSRF token still applies to them.
    pub fn same_origin(&self, headers: &HeaderMap) -> Result<(), Refused> {
        let cross = |why: &str| {
            refused(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("cross-site request refused ({why})"),
            )
        };
        if let Some(site) = headers.get("sec-fetch-site") {
            if site.as_bytes() != b"same-origin" {
                return Err(cross("Sec-Fetch-Site"));
            }
        }
        let mut origins = headers.get_all(header::ORIGIN).iter();
        if let Some(origin) = origins.next() {
            if origins.next().is_some() {
                return Err(cross("more than one Origin"));
            }
            let origin = origin.to_str().map_err(|_| cross("Origin"))?;
            let ok = if self.login_origins.is_empty() {
                let host = headers
                    .get(header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .unwrap_or_default();
                let scheme = if self.tls { "https" } else { "http" };
                !host.is_empty() && origin == format!("{scheme}://{host}")
            } else {
                self.login_origins.iter().any(|o| o == origin)
            };
            if !ok {
                return Err(cross("Origin"));
            }
        }
        Ok(())
    }

    /// The login form ([`crate::login`]) with a fresh CSRF nonce cookie and its token in
    /// the form: no script, no framing, nothing cached.
    pub fn login_page(&self, failed: bool) -> Response<Bytes> {
        let (cookie, token) = self.sessions.csrf_issue(LOGIN_PATH, self.tls);
        let html = crate::login::page(&self.title, LOGIN_PATH, failed, &token);
        let mut r = Response::new(Bytes::from(html));
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(crate::login::CSP),
        );
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            h.insert(header::SET_COOKIE, v);
        }
        r
    }

    /// Reads a login POST: same origin, a form of at most [`MAX_LOGIN_BODY`] bytes, the
    /// CSRF token matching its nonce cookie. Returns the user and password to check.
    pub async fn read_login<B>(&self, req: Request<B>) -> Result<(String, String), Refused>
    where
        B: http_body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        self.same_origin(req.headers())?;
        let nonce = session::find_named_cookie(
            req.headers()
                .get_all(header::COOKIE)
                .iter()
                .map(HeaderValue::as_bytes),
            session::CSRF_COOKIE,
        );
        let form = req.headers().get(header::CONTENT_TYPE).is_some_and(|v| {
            v.as_bytes()
                .starts_with(b"application/x-www-form-urlencoded")
        });
        if !form {
            return Err(refused(
                StatusCode::BAD_REQUEST,
                "rejected",
                "expected a login form",
            ));
        }
        let body = Limited::new(req.into_body(), MAX_LOGIN_BODY)
            .collect()
            .await
            .map_err(|_| refused(StatusCode::BAD_REQUEST, "rejected", "login form unreadable"))?
            .to_bytes();
        let (mut user, mut password, mut csrf) = (None, None, None);
        for (k, v) in form_urlencoded::parse(&body) {
            match k.as_ref() {
                "user" => user = Some(v.into_owned()),
                "password" => password = Some(v.into_owned()),
                "csrf" => csrf = Some(v.into_owned()),
                _ => {}
            }
        }
        if !self.sessions.csrf_ok(nonce.as_deref(), csrf.as_deref()) {
            return Err(refused(
                StatusCode::FORBIDDEN,
                "forbidden",
                "login form expired or not from this server (CSRF token)",
            ));
        }
        match (user, password) {
            (Some(u), Some(p)) => Ok((u, p)),
            _ => Err(refused(
                StatusCode::BAD_REQUEST,
                "rejected",
                "user and password required",
            )),
        }
    }

    /// After a successful password check: a session cookie bound to the user's current
    /// htpasswd hash (a later change of it, or the user's removal, ends the session) and a
    /// redirect home. Only htpasswd users open sessions.
    pub fn open_session(
        &self,
        authn: &Authenticator,
        id: &Identity,
    ) -> Result<Response<Bytes>, Refused> {
        let Some(hash) = authn.htpasswd().and_then(|h| h.get(&id.name)) else {
            return Err(refused(
                StatusCode::FORBIDDEN,
                "forbidden",
                "only htpasswd users open sessions",
            ));
        };
        let cookie = self.sessions.set_cookie(
            &self.sessions.issue(&id.name, hash.as_str(), unix_now()),
            self.tls,
        );
        let mut r = Response::new(Bytes::new());
        *r.status_mut() = StatusCode::SEE_OTHER;
        if let Ok(v) = HeaderValue::from_str(&self.home) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            r.headers_mut().insert(header::SET_COOKIE, v);
        }
        Ok(r)
    }

    /// The session cookie's claims, if signed with this server's key and unexpired.
    pub fn claims(&self, headers: &HeaderMap) -> Option<Claims> {
        let value = session::find_cookie(
            headers
                .get_all(header::COOKIE)
                .iter()
                .map(HeaderValue::as_bytes),
        )?;
        self.sessions.verify(&value, unix_now())
    }

    /// Who a session cookie names, checked against the current credential source (the
    /// user is still in the htpasswd file, with the password hash the session was opened
    /// with). Explicit credentials (`Authorization`) win over a cookie. The caller checks
    /// the returned claims' id against its revocations.
    pub fn session_user(
        &self,
        authn: &Authenticator,
        headers: &HeaderMap,
    ) -> Option<(Identity, Claims)> {
        if headers.contains_key(header::AUTHORIZATION) {
            return None;
        }
        let claims = self.claims(headers)?;
        let current = authn
            .htpasswd()
            .and_then(|h| h.get(&claims.user))
            .map(|h| h.as_str().to_string());
        if !self.sessions.still_valid(&claims, current.as_deref()) {
            return None;
        }
        Some((Identity::new(Source::Htpasswd, &claims.user), claims))
    }

    /// `POST /rayward/logout` (same origin checked): the session to revoke, if any, and
    /// the answer that clears the cookie and shows the form again.
    pub fn logout(
        &self,
        headers: &HeaderMap,
    ) -> Result<(Option<Claims>, Response<Bytes>), Refused> {
        self.same_origin(headers)?;
        let claims = self.claims(headers);
        let mut r = Response::new(Bytes::new());
        *r.status_mut() = StatusCode::SEE_OTHER;
        r.headers_mut()
            .insert(header::LOCATION, HeaderValue::from_static(LOGIN_PATH));
        if let Ok(v) = HeaderValue::from_str(&Sessions::clear_cookie(self.tls)) {
            r.headers_mut().insert(header::SET_COOKIE, v);
        }
        Ok((claims, r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn web(origins: &[&str]) -> Web {
        Web::new(
            Sessions::new(vec![7u8; 32], 3600).unwrap(),
            origins.iter().map(|s| s.to_string()).collect(),
            false,
            "History",
            "/",
        )
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn same_origin_checks() {
        let w = web(&[]);
        assert!(w.same_origin(&headers(&[])).is_ok(), "curl sends neither");
        assert!(w
            .same_origin(&headers(&[("host", "h:1"), ("origin", "http://h:1")]))
            .is_ok());
        for bad in [
            &[("sec-fetch-site", "cross-site")][..],
            &[("host", "h:1"), ("origin", "http://evil")],
            &[("origin", "http://h:1")],
            &[
                ("host", "h:1"),
                ("origin", "http://h:1"),
                ("origin", "http://h:1"),
            ],
        ] {
            let e = w.same_origin(&headers(bad)).unwrap_err();
            assert_eq!(e.status, StatusCode::FORBIDDEN, "{bad:?}");
        }
        let w = web(&["https://ray.example.com"]);
        assert!(w
            .same_origin(&headers(&[
                ("host", "x"),
                ("origin", "https://ray.example.com")
            ]))
            .is_ok());
        assert!(w
            .same_origin(&headers(&[("host", "x"), ("origin", "http://x")]))
            .is_err());
    }

    #[tokio::test]
    async fn login_form_needs_its_csrf_token() {
        let w = web(&[]);
        let page = w.login_page(false);
        let cookie = page.headers()[header::SET_COOKIE].to_str().unwrap();
        let nonce = cookie.split(';').next().unwrap().to_string();
        let html = String::from_utf8(page.body().to_vec()).unwrap();
        let token = html
            .split("name=csrf value=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_string();
        let post = |body: String, cookie: Option<&str>| {
            let mut b = Request::post(LOGIN_PATH)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
            if let Some(c) = cookie {
                b = b.header(header::COOKIE, c);
            }
            b.body(http_body_util::Full::new(Bytes::from(body)))
                .unwrap()
        };
        let ok = w
            .read_login(post(
                format!("user=alice&password=p%26w&csrf={token}"),
                Some(&nonce),
            ))
            .await
            .unwrap();
        assert_eq!(ok, ("alice".to_string(), "p&w".to_string()));
        let e = w
            .read_login(post(format!("user=a&password=b&csrf={token}"), None))
            .await
            .unwrap_err();
        assert_eq!(e.status, StatusCode::FORBIDDEN);
        let e = w
            .read_login(post("x".repeat(MAX_LOGIN_BODY + 1), Some(&nonce)))
            .await
            .unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn endpoints() {
        assert_eq!(
            Endpoint::of(&Method::GET, LOGIN_PATH, Some("failed")),
            Some(Endpoint::LoginPage { failed: true })
        );
        assert_eq!(
            Endpoint::of(&Method::POST, LOGOUT_PATH, None),
            Some(Endpoint::Logout)
        );
        assert_eq!(Endpoint::of(&Method::GET, LOGOUT_PATH, None), None);
        assert_eq!(Endpoint::of(&Method::PUT, LOGIN_PATH, None), None);
    }
}
