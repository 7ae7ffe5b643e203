//! `check`: would Ray accept this node folder?

use crate::files::read_text;
use crate::{Error, Result, CA_CERT, NODE_CERT, NODE_KEY};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

/// A certificate file's DER, kept with its path for messages.
pub(crate) struct Parsed {
    path: PathBuf,
    der: Vec<u8>,
}

impl Parsed {
    pub(crate) fn cert(&self) -> Result<X509Certificate<'_>> {
        x509_parser::parse_x509_certificate(&self.der)
            .map(|(_, c)| c)
            .map_err(|e| Error::invalid(&self.path, format!("not a valid X.509 certificate: {e}")))
    }
}

/// The first PEM `CERTIFICATE` block of `bytes`.
pub(crate) fn parse_cert(path: &Path, bytes: &[u8]) -> Result<Parsed> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(bytes)
        .map_err(|e| Error::invalid(path, format!("no PEM certificate found: {e}")))?;
    if pem.label != "CERTIFICATE" {
        return Err(Error::invalid(
            path,
            format!("holds a PEM `{}`, not a CERTIFICATE", pem.label),
        ));
    }
    let parsed = Parsed {
        path: path.to_owned(),
        der: pem.contents,
    };
    parsed.cert()?;
    Ok(parsed)
}

/// Options of [`check`].
#[derive(Clone, Debug, Default)]
pub struct CheckOptions {
    /// CA to verify against: a `ca.crt` file or a folder holding one. Default: the node
    /// folder's own `ca.crt`.
    pub ca: Option<PathBuf>,
    /// An IP the certificate must name (the pod IP Ray dials).
    pub ip: Option<IpAddr>,
}

/// What [`check`] found. `problems` empty means Ray would accept the folder.
#[derive(Clone, Debug)]
pub struct CheckReport {
    pub cert: PathBuf,
    pub ca: PathBuf,
    pub subject: String,
    pub issuer: String,
    pub sans: Vec<String>,
    /// `None` when the certificate has no Extended Key Usage extension.
    pub eku: Option<Vec<String>>,
    pub not_before: String,
    pub not_after: String,
    pub days_left: i64,
    pub chain_verifies: bool,
    pub problems: Vec<String>,
}

impl CheckReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "certificate  {}", self.cert.display())?;
        writeln!(f, "  subject    {}", self.subject)?;
        writeln!(f, "  issuer     {}", self.issuer)?;
        writeln!(f, "  SANs       {}", self.sans.join(", "))?;
        match &self.eku {
            None => writeln!(f, "  EKU        (absent: any use)")?,
            Some(e) => writeln!(f, "  EKU        {}", e.join(", "))?,
        }
        writeln!(
            f,
            "  valid      {} to {} ({} days left)",
            self.not_before, self.not_after, self.days_left
        )?;
        writeln!(f, "  CA         {}", self.ca.display())?;
        writeln!(
            f,
            "  chain      {}",
            if self.chain_verifies {
                "verifies"
            } else {
                "does NOT verify"
            }
        )?;
        if self.ok() {
            writeln!(f, "ok: Ray accepts this certificate as server and client")
        } else {
            writeln!(f, "FAIL: Ray would refuse this certificate:")?;
            for p in &self.problems {
                writeln!(f, "  - {p}")?;
            }
            Ok(())
        }
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn webpki_reason(e: &webpki::Error) -> String {
    match e {
        webpki::Error::UnknownIssuer => "not signed by this CA (unknown issuer)".into(),
        webpki::Error::CertExpired { .. } => "certificate expired".into(),
        webpki::Error::CertNotValidYet { .. } => "certificate not valid yet".into(),
        webpki::Error::InvalidSignatureForPublicKey => {
            "not signed by this CA (the signature does not verify with its key)".into()
        }
        other => format!("{other:?}"),
    }
}

/// Checks the node folder `dir` (`tls.crt`, `tls.key`, `ca.crt`) as Ray would use it.
/// Files that cannot be read or parsed are errors; everything Ray would refuse is a
/// problem in the report.
pub fn check(dir: &Path, opts: &CheckOptions) -> Result<CheckReport> {
    let cert_path = dir.join(NODE_CERT);
    let key_path = dir.join(NODE_KEY);
    let ca_path = match &opts.ca {
        Some(p) if p.is_dir() => p.join(CA_CERT),
        Some(p) => p.clone(),
        None => dir.join(CA_CERT),
    };
    let cert_pem = read_text(&cert_path)?;
    let parsed = parse_cert(&cert_path, cert_pem.as_bytes())?;
    let cert = parsed.cert()?;
    let ca_pem = read_text(&ca_path)?;
    let ca_parsed = parse_cert(&ca_path, ca_pem.as_bytes())?;
    let ca_cert = ca_parsed.cert()?;

    let mut problems = Vec::new();
    let now = OffsetDateTime::now_utc();

    // SANs.
    let mut sans = Vec::new();
    let mut ip_sans = Vec::new();
    match cert.subject_alternative_name() {
        Ok(Some(ext)) => {
            for n in &ext.value.general_names {
                match n {
                    GeneralName::DNSName(d) => sans.push(format!("DNS:{d}")),
                    GeneralName::IPAddress(b) => {
                        let ip = match b.len() {
                            4 => Some(IpAddr::from(<[u8; 4]>::try_from(*b).unwrap())),
                            16 => Some(IpAddr::from(<[u8; 16]>::try_from(*b).unwrap())),
                            _ => None,
                        };
                        match ip {
                            Some(ip) => {
                                sans.push(format!("IP:{ip}"));
                                ip_sans.push(ip);
                            }
                            None => sans.push("IP:(malformed)".into()),
                        }
                    }
                    other => sans.push(format!("{other}")),
                }
            }
        }
        Ok(None) => {}
        Err(e) => problems.push(format!(
            "{}: unreadable subjectAltName: {e}",
            cert_path.display()
        )),
    }
    if ip_sans.is_empty() {
        problems.push(format!(
            "{}: no IP address in the SANs; Ray dials node IPs and checks them against the \
             certificate (`No match found for server name`)",
            cert_path.display()
        ));
    }

    // EKU: absent, or serverAuth and clientAuth both.
    let eku = match cert.extended_key_usage() {
        Ok(None) => None,
        Ok(Some(ext)) => {
            let e = ext.value;
            let mut v = Vec::new();
            if e.any {
                v.push("any".to_string());
            }
            if e.server_auth {
                v.push("serverAuth".into());
            }
            if e.client_auth {
                v.push("clientAuth".into());
            }
            for (set, name) in [
                (e.code_signing, "codeSigning"),
                (e.email_protection, "emailProtection"),
                (e.time_stamping, "timeStamping"),
                (e.ocsp_signing, "OCSPSigning"),
            ] {
                if set {
                    v.push(name.into());
                }
            }
            v.extend(e.other.iter().map(|o| o.to_id_string()));
            let missing: Vec<&str> = [("serverAuth", e.server_auth), ("clientAuth", e.client_auth)]
                .into_iter()
                .filter(|(_, has)| !has && !e.any)
                .map(|(n, _)| n)
                .collect();
            if !missing.is_empty() {
                problems.push(format!(
                    "{}: Extended Key Usage lacks {}; each Ray node uses one certificate as \
                     server and client, so EKU must be absent or hold serverAuth and clientAuth",
                    cert_path.display(),
                    missing.join(" and ")
                ));
            }
            Some(v)
        }
        Err(e) => {
            problems.push(format!(
                "{}: unreadable extendedKeyUsage: {e}",
                cert_path.display()
            ));
            None
        }
    };

    // Validity of the certificate and the CA.
    let nb = cert.validity().not_before.to_datetime();
    let na = cert.validity().not_after.to_datetime();
    if now < nb {
        problems.push(format!(
            "{}: not valid before {}",
            cert_path.display(),
            rfc3339(nb)
        ));
    }
    if now > na {
        problems.push(format!(
            "{}: expired on {}",
            cert_path.display(),
            rfc3339(na)
        ));
    }
    let ca_na = ca_cert.validity().not_after.to_datetime();
    if now > ca_na {
        problems.push(format!(
            "{}: CA certificate expired on {}",
            ca_path.display(),
            rfc3339(ca_na)
        ));
    }
    if !ca_cert.is_ca() {
        problems.push(format!(
            "{}: not a CA certificate (basicConstraints CA:TRUE missing)",
            ca_path.display()
        ));
    }

    // The private key belongs to the certificate.
    match read_text(&key_path) {
        Err(e) => problems.push(e.to_string()),
        Ok(pem) => match rcgen::KeyPair::from_pem(&pem) {
            Err(e) => problems.push(format!(
                "{}: not a usable private key: {e}",
                key_path.display()
            )),
            Ok(k) => {
                if k.public_key_raw() != cert.public_key().subject_public_key.data.as_ref() {
                    problems.push(format!(
                        "{}: does not belong to {}",
                        key_path.display(),
                        cert_path.display()
                    ));
                }
            }
        },
    }

    // The chain, as a TLS stack verifies it, for both uses.
    let ca_der = CertificateDer::from(ca_parsed.der.as_slice());
    let ee_der = CertificateDer::from(parsed.der.as_slice());
    let mut chain_verifies = false;
    match (
        webpki::anchor_from_trusted_cert(&ca_der),
        webpki::EndEntityCert::try_from(&ee_der),
    ) {
        (Err(e), _) => problems.push(format!(
            "{}: cannot be used as a trust anchor: {e:?}",
            ca_path.display()
        )),
        (_, Err(e)) => problems.push(format!(
            "{}: not usable as a TLS certificate: {e:?}",
            cert_path.display()
        )),
        (Ok(anchor), Ok(ee)) => {
            let anchors = [anchor];
            let t = UnixTime::now();
            let verify = |usage: webpki::KeyUsage| {
                ee.verify_for_usage(
                    webpki::ALL_VERIFICATION_ALGS,
                    &anchors,
                    &[],
                    t,
                    usage,
                    None,
                    None,
                )
                .map(|_| ())
            };
            let eku_flagged = problems.iter().any(|p| p.contains("Extended Key Usage"));
            let time_flagged = problems
                .iter()
                .any(|p| p.contains("expired") || p.contains("not valid before"));
            match verify(webpki::KeyUsage::server_auth()) {
                Ok(()) => {
                    chain_verifies = true;
                    if let Err(e) = verify(webpki::KeyUsage::client_auth()) {
                        if !eku_flagged {
                            problems.push(format!(
                                "{}: refused as a client certificate: {}",
                                cert_path.display(),
                                webpki_reason(&e)
                            ));
                        }
                    }
                }
                Err(webpki::Error::CertExpired { .. } | webpki::Error::CertNotValidYet { .. })
                    if time_flagged => {}
                Err(webpki::Error::RequiredEkuNotFoundContext(_)) if eku_flagged => {}
                Err(e) => problems.push(format!(
                    "{}: chain does not verify against {}: {}",
                    cert_path.display(),
                    ca_path.display(),
                    webpki_reason(&e)
                )),
            }
            if let Some(ip) = opts.ip {
                if let Err(e) = ee.verify_is_valid_for_subject_name(&ServerName::from(ip)) {
                    problems.push(format!(
                        "{}: not valid for IP {ip}: {}",
                        cert_path.display(),
                        webpki_reason(&e)
                    ));
                }
            }
        }
    }

    Ok(CheckReport {
        cert: cert_path,
        ca: ca_path,
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        sans,
        eku,
        not_before: rfc3339(nb),
        not_after: rfc3339(na),
        days_left: (na - now).whole_days(),
        chain_verifies,
        problems,
    })
}
