//! The choices `rayward harden` leaves to the user, with safe defaults.

use rayward_rules::{FixOptions, Settings};
use std::net::IpAddr;
use thiserror::Error;

/// Who may reach the dashboard / Jobs API (8265) and Ray Client (10001) besides the
/// cluster's own pods.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// An address range outside the cluster (`ipBlock.cidr`).
    Cidr(String),
    /// Every pod of the namespaces with these labels (`namespaceSelector.matchLabels`).
    Namespaces(Vec<(String, String)>),
}

/// A `--dashboard-from` value that is neither a CIDR nor a namespace selector.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("`{0}` is neither a CIDR (10.0.0.0/8), a namespace name, nor a namespace label selector (key=value,…)")]
pub struct BadSource(pub String);

/// Checks a CIDR (`10.0.0.0/8`, `fd00::/8`).
pub fn parse_cidr(s: &str) -> Result<String, BadSource> {
    match Source::parse(s)? {
        Source::Cidr(c) => Ok(c),
        Source::Namespaces(_) => Err(BadSource(s.to_string())),
    }
}

impl Source {
    /// Parses `10.0.0.0/8`, `team-a` (a namespace name) or `env=prod,team=a` (namespace
    /// labels).
    pub fn parse(s: &str) -> Result<Source, BadSource> {
        let s = s.trim();
        let bad = || BadSource(s.to_string());
        if let Some((ip, bits)) = s.split_once('/') {
            let ip: IpAddr = ip.parse().map_err(|_| bad())?;
            let bits: u8 = bits.parse().map_err(|_| bad())?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            if bits > max {
                return Err(bad());
            }
            return Ok(Source::Cidr(s.to_string()));
        }
        if s.contains('=') {
            let mut labels = Vec::new();
            for pair in s.split(',') {
                let (k, v) = pair.split_once('=').ok_or_else(bad)?;
                let (k, v) = (k.trim(), v.trim());
                if !rayward_manifest::names::is_label_key(k)
                    || !rayward_manifest::names::is_label_value(v)
                {
                    return Err(bad());
                }
                labels.push((k.to_string(), v.to_string()));
            }
            return Ok(Source::Namespaces(labels));
        }
        if rayward_manifest::names::is_dns_label(s) {
            return Ok(Source::Namespaces(vec![(
                "kubernetes.io/metadata.name".to_string(),
                s.to_string(),
            )]));
        }
        Err(bad())
    }
}

/// Everything harden needs to know.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// What the fixes need (CA Secret, cert image, resource defaults, namespace).
    pub fix: FixOptions,
    /// Rule settings (allowed host paths, registries, …), as for audit.
    pub settings: Settings,
    /// Apply only the fixes that need no choice from the user, and generate no
    /// companions: what the admission webhook may patch in on its own.
    pub safe_only: bool,
    /// Extra sources allowed to reach the dashboard and Ray Client.
    pub dashboard_from: Vec<Source>,
    /// Address ranges the Ray pods may reach besides each other, DNS and (for an
    /// autoscaler) the Kubernetes API: object storage, package indexes (`ipBlock.cidr`,
    /// every port). Default: none.
    pub egress_to: Vec<String>,
    /// Let the rayward gateway's pods (`app.kubernetes.io/name: rayward-gateway`, same
    /// namespace) reach the dashboard.
    pub gateway: bool,
    /// `--workload-identity`: the user's answer to plaintext cloud keys (RW801), see
    /// [`crate::workload_identity`]. `None`: RW801 stays a finding.
    pub workload_identity: Option<crate::workload_identity::WorkloadIdentity>,
    /// `--history STORE_URL`: the history collector in every Ray pod ([`crate::history`]).
    pub history: Option<crate::history::History>,
}

impl Options {
    /// The fixes that need no user choice (securityContext, head ClusterIP, token auth,
    /// K8sJobMode and shutdown, token automount off) and no companions.
    pub fn safe_only() -> Options {
        Options {
            safe_only: true,
            ..Options::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse() {
        assert_eq!(
            Source::parse("10.0.0.0/8"),
            Ok(Source::Cidr("10.0.0.0/8".into()))
        );
        assert_eq!(
            Source::parse("fd00::/8"),
            Ok(Source::Cidr("fd00::/8".into()))
        );
        assert_eq!(
            Source::parse("monitoring"),
            Ok(Source::Namespaces(vec![(
                "kubernetes.io/metadata.name".into(),
                "monitoring".into()
            )]))
        );
        assert_eq!(
            Source::parse("team=a,env=prod"),
            Ok(Source::Namespaces(vec![
                ("team".into(), "a".into()),
                ("env".into(), "prod".into())
            ]))
        );
        for bad in [
            "10.0.0.0/33",
            "10.0.0/8",
            "Not_A_Namespace",
            "a=b c",
            "",
            "=x",
        ] {
            assert!(Source::parse(bad).is_err(), "{bad}");
        }
    }
}
