//! Creating the CA and issuing node certificates.

use crate::files::{read_text, write_all, Output};
use crate::{Error, Result, CA_CERT, CA_KEY, NODE_CERT, NODE_KEY};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SignatureAlgorithm,
};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use time::{Duration, OffsetDateTime};

/// Key algorithm of a generated key (RSA keys sign with SHA-256).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum KeyAlg {
    #[default]
    EcdsaP256,
    EcdsaP384,
    Rsa2048,
    Rsa3072,
}

impl KeyAlg {
    fn rcgen(self) -> &'static SignatureAlgorithm {
        match self {
            KeyAlg::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyAlg::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            KeyAlg::Rsa2048 | KeyAlg::Rsa3072 => &rcgen::PKCS_RSA_SHA256,
        }
    }
}

/// Options of [`create_ca`].
#[derive(Clone, Debug)]
pub struct CaOptions {
    pub key: KeyAlg,
    pub days: u32,
    pub common_name: String,
    pub force: bool,
}

impl Default for CaOptions {
    fn default() -> Self {
        CaOptions {
            key: KeyAlg::default(),
            days: crate::DEFAULT_CA_DAYS,
            common_name: "rayward Ray CA".into(),
            force: false,
        }
    }
}

/// Options of [`issue_node`].
#[derive(Clone, Debug)]
pub struct NodeOptions {
    pub key: KeyAlg,
    pub days: u32,
    /// IP SANs; when empty, `pod_ip` is used.
    pub ips: Vec<IpAddr>,
    /// The value of `POD_IP` (passed in, so callers and tests decide where it comes from).
    pub pod_ip: Option<String>,
    pub dns: Vec<String>,
    pub force: bool,
}

impl Default for NodeOptions {
    fn default() -> Self {
        NodeOptions {
            key: KeyAlg::default(),
            days: crate::DEFAULT_NODE_DAYS,
            ips: Vec::new(),
            pod_ip: None,
            dns: Vec::new(),
            force: false,
        }
    }
}

/// Start and end of a certificate's validity: from five minutes ago (clock skew between
/// nodes) for `days`.
fn validity(days: u32) -> Result<(OffsetDateTime, OffsetDateTime)> {
    if days == 0 {
        return Err(Error::Usage("--days must be at least 1".into()));
    }
    let now = OffsetDateTime::now_utc();
    Ok((
        now - Duration::minutes(5),
        now + Duration::days(days.into()),
    ))
}

fn gen_key(alg: KeyAlg) -> Result<KeyPair> {
    let key = match alg {
        KeyAlg::EcdsaP256 | KeyAlg::EcdsaP384 => KeyPair::generate_for(alg.rcgen()),
        KeyAlg::Rsa2048 => KeyPair::generate_rsa_for(alg.rcgen(), rcgen::RsaKeySize::_2048),
        KeyAlg::Rsa3072 => KeyPair::generate_rsa_for(alg.rcgen(), rcgen::RsaKeySize::_3072),
    };
    key.map_err(|e| Error::Usage(format!("cannot generate a key: {e}")))
}

/// Creates `ca.crt` and `ca.key` in `out`. Returns the paths written.
pub fn create_ca(out: &Path, opts: &CaOptions) -> Result<Vec<PathBuf>> {
    let (not_before, not_after) = validity(opts.days)?;
    let key = gen_key(opts.key)?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, opts.common_name.as_str());
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = not_before;
    params.not_after = not_after;
    let cert = params
        .self_signed(&key)
        .map_err(|e| Error::Usage(format!("cannot create the CA certificate: {e}")))?;
    let outputs = vec![
        Output {
            path: out.join(CA_CERT),
            contents: cert.pem().into_bytes(),
            private: false,
        },
        Output {
            path: out.join(CA_KEY),
            contents: key.serialize_pem().into_bytes(),
            private: true,
        },
    ];
    write_all(out, &outputs, opts.force)?;
    Ok(outputs.into_iter().map(|o| o.path).collect())
}

/// A Kubernetes Secret (type Opaque, keys `ca.crt` and `ca.key`) holding the CA in `dir`,
/// for an init container that issues node certificates in each Ray pod.
pub fn ca_secret_yaml(dir: &Path, name: &str, namespace: Option<&str>) -> Result<String> {
    let crt = read_text(&dir.join(CA_CERT))?;
    let key = read_text(&dir.join(CA_KEY))?;
    let mut y = String::from("apiVersion: v1\nkind: Secret\nmetadata:\n");
    y += &format!("  name: {}\n", yaml_str(name));
    if let Some(ns) = namespace {
        y += &format!("  namespace: {}\n", yaml_str(ns));
    }
    y += "type: Opaque\nstringData:\n";
    for (k, v) in [(CA_CERT, &crt), (CA_KEY, &key)] {
        y += &format!("  {k}: |\n");
        for line in v.lines() {
            y += &format!("    {line}\n");
        }
    }
    Ok(y)
}

/// A plain scalar when that is safe, else double-quoted.
fn yaml_str(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if plain && s.parse::<f64>().is_err() {
        s.to_owned()
    } else {
        format!("{s:?}")
    }
}

/// The CA in `ca_dir`: its certificate PEM and key, checked to belong together.
pub(crate) fn load_ca(ca_dir: &Path) -> Result<(String, KeyPair)> {
    let crt_path = ca_dir.join(CA_CERT);
    let key_path = ca_dir.join(CA_KEY);
    let crt = read_text(&crt_path)?;
    let key_pem = read_text(&key_path)?;
    let key = KeyPair::from_pem(&key_pem)
        .map_err(|e| Error::invalid(&key_path, format!("not a usable private key: {e}")))?;
    let parsed = crate::check::parse_cert(&crt_path, crt.as_bytes())?;
    let cert = parsed.cert()?;
    if !cert.is_ca() {
        return Err(Error::invalid(
            &crt_path,
            "not a CA certificate (basicConstraints CA:TRUE missing)",
        ));
    }
    if cert.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
        return Err(Error::invalid(
            &key_path,
            format!("does not belong to {}", crt_path.display()),
        ));
    }
    Ok((crt, key))
}

/// The SANs of a node certificate: the given IPs (else `POD_IP`), 127.0.0.1, localhost,
/// the given names; in that order, without repeats.
pub(crate) fn node_sans(opts: &NodeOptions) -> Result<Vec<SanType>> {
    let mut ips = opts.ips.clone();
    if ips.is_empty() {
        match opts.pod_ip.as_deref().map(str::trim) {
            Some(s) if !s.is_empty() => ips.push(
                s.parse()
                    .map_err(|_| Error::Usage(format!("POD_IP `{s}` is not an IP address")))?,
            ),
            _ => {
                return Err(Error::Usage(
                    "no node IP: pass --ip, or set POD_IP (Ray dials the pod IP, and its \
                     certificate must name it)"
                        .into(),
                ))
            }
        }
    }
    ips.push(IpAddr::from([127, 0, 0, 1]));
    let mut sans: Vec<SanType> = Vec::new();
    for ip in ips {
        let s = SanType::IpAddress(ip);
        if !sans.contains(&s) {
            sans.push(s);
        }
    }
    for name in std::iter::once("localhost").chain(opts.dns.iter().map(String::as_str)) {
        let ia5 = name
            .try_into()
            .map_err(|_| Error::Usage(format!("--dns `{name}` is not a valid DNS name")))?;
        let s = SanType::DnsName(ia5);
        if !sans.contains(&s) {
            sans.push(s);
        }
    }
    Ok(sans)
}

/// The parameters of a node certificate (shared with the tests, which vary them).
pub(crate) fn node_params(opts: &NodeOptions) -> Result<CertificateParams> {
    let (not_before, not_after) = validity(opts.days)?;
    let sans = node_sans(opts)?;
    let mut params = CertificateParams::default();
    let cn = match &sans[0] {
        SanType::IpAddress(ip) => ip.to_string(),
        _ => "ray-node".into(),
    };
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    params.distinguished_name = dn;
    params.subject_alt_names = sans;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    params.not_before = not_before;
    params.not_after = not_after;
    Ok(params)
}

/// Signs `params` with the CA in `ca_dir` and writes `tls.crt`, `tls.key` and `ca.crt`.
pub(crate) fn issue_with(
    ca_dir: &Path,
    out: &Path,
    params: &CertificateParams,
    key: KeyAlg,
    force: bool,
) -> Result<Vec<PathBuf>> {
    if same_dir(ca_dir, out) {
        return Err(Error::Usage(format!(
            "--out {} is the CA folder: the node folder is mounted into Ray pods and must not hold {CA_KEY}",
            out.display()
        )));
    }
    let (ca_pem, ca_key) = load_ca(ca_dir)?;
    let crt_path = ca_dir.join(CA_CERT);
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key)
        .map_err(|e| Error::invalid(&crt_path, format!("cannot be used as issuer: {e}")))?;
    let node_key = gen_key(key)?;
    let cert = params
        .signed_by(&node_key, &issuer)
        .map_err(|e| Error::invalid(&crt_path, format!("cannot sign with this CA: {e}")))?;
    let outputs = vec![
        Output {
            path: out.join(NODE_CERT),
            contents: cert.pem().into_bytes(),
            private: false,
        },
        Output {
            path: out.join(NODE_KEY),
            contents: node_key.serialize_pem().into_bytes(),
            private: true,
        },
        Output {
            path: out.join(CA_CERT),
            contents: ca_pem.into_bytes(),
            private: false,
        },
    ];
    write_all(out, &outputs, force)?;
    Ok(outputs.into_iter().map(|o| o.path).collect())
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Issues a node certificate signed by the CA in `ca_dir` into `out`: `tls.crt`, `tls.key`
/// (0600) and a copy of `ca.crt`. Returns the paths written.
pub fn issue_node(ca_dir: &Path, out: &Path, opts: &NodeOptions) -> Result<Vec<PathBuf>> {
    let params = node_params(opts)?;
    issue_with(ca_dir, out, &params, opts.key, opts.force)
}
