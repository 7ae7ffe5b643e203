//! Network filter: CIDR allow and deny lists, and the client address behind trusted
//! proxies. `X-Forwarded-For` is read only when the TCP peer is a configured proxy, and
//! then from the right, skipping further trusted proxies, so a client cannot name itself.

use crate::config::{parse_cidrs, NetworkConfig};
use ipnet::IpNet;
use std::net::IpAddr;

#[derive(Debug, Clone, Default)]
pub struct NetFilter {
    allow: Vec<IpNet>,
    deny: Vec<IpNet>,
    trusted: Vec<IpNet>,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    #[error("source address not allowed")]
    Forbidden,
    #[error("malformed X-Forwarded-For from a trusted proxy")]
    BadForwardedFor,
}

fn contains(list: &[IpNet], ip: IpAddr) -> bool {
    let ip = canonical(ip);
    list.iter().any(|n| n.contains(&ip))
}

/// IPv4-mapped IPv6 (`::ffff:10.0.0.1`) is treated as the IPv4 address it carries.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

impl NetFilter {
    pub fn from_config(c: &NetworkConfig) -> Result<NetFilter, String> {
        Ok(NetFilter {
            allow: parse_cidrs("allow", &c.allow)?,
            deny: parse_cidrs("deny", &c.deny)?,
            trusted: parse_cidrs("trusted_proxies", &c.trusted_proxies)?,
        })
    }

    /// The client's address: the peer, or (peer trusted) the right-most untrusted
    /// `X-Forwarded-For` entry. `xff` holds every X-Forwarded-For header value in order.
    pub fn client_ip(&self, peer: IpAddr, xff: &[&str]) -> Result<IpAddr, NetError> {
        let peer = canonical(peer);
        if !contains(&self.trusted, peer) || xff.is_empty() {
            return Ok(peer);
        }
        let mut hops = Vec::new();
        for v in xff {
            for part in v.split(',') {
                let ip: IpAddr = part.trim().parse().map_err(|_| NetError::BadForwardedFor)?;
                hops.push(canonical(ip));
            }
        }
        let mut client = peer;
        for ip in hops.into_iter().rev() {
            client = ip;
            if !contains(&self.trusted, ip) {
                break;
            }
        }
        Ok(client)
    }

    /// Allowed when the allow list is empty or holds the address, and no deny entry does.
    pub fn check(&self, ip: IpAddr) -> Result<(), NetError> {
        if !self.allow.is_empty() && !contains(&self.allow, ip) {
            return Err(NetError::Forbidden);
        }
        if contains(&self.deny, ip) {
            return Err(NetError::Forbidden);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(allow: &[&str], deny: &[&str], trusted: &[&str]) -> NetFilter {
        let s = |l: &[&str]| l.iter().map(|x| x.to_string()).collect();
        NetFilter::from_config(&NetworkConfig {
            allow: s(allow),
            deny: s(deny),
            trusted_proxies: s(trusted),
        })
        .unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn allow_and_deny() {
        let f = filter(&["10.0.0.0/8", "2001:db8::/32"], &["10.9.0.0/16"], &[]);
        assert!(f.check(ip("10.1.2.3")).is_ok());
        assert!(f.check(ip("::ffff:10.1.2.3")).is_ok());
        assert!(f.check(ip("2001:db8::1")).is_ok());
        assert_eq!(f.check(ip("10.9.1.1")), Err(NetError::Forbidden));
        assert_eq!(f.check(ip("192.168.1.1")), Err(NetError::Forbidden));
        let open = filter(&[], &["127.0.0.2"], &[]);
        assert!(open.check(ip("8.8.8.8")).is_ok());
        assert!(open.check(ip("127.0.0.2")).is_err());
    }

    #[test]
    fn forwarded_for_only_from_trusted_peers() {
        let f = filter(&[], &[], &["10.0.0.1", "10.0.0.2"]);
        // Untrusted peer: the header is ignored.
        assert_eq!(f.client_ip(ip("1.2.3.4"), &["9.9.9.9"]), Ok(ip("1.2.3.4")));
        // Trusted peer: right-most untrusted hop, a client-sent left part is ignored.
        assert_eq!(
            f.client_ip(ip("10.0.0.1"), &["6.6.6.6, 5.5.5.5, 10.0.0.2"]),
            Ok(ip("5.5.5.5"))
        );
        assert_eq!(
            f.client_ip(ip("10.0.0.1"), &["6.6.6.6", "5.5.5.5"]),
            Ok(ip("5.5.5.5"))
        );
        assert_eq!(
            f.client_ip(ip("10.0.0.1"), &["5.5.5.5, junk"]),
            Err(NetError::BadForwardedFor)
        );
        assert_eq!(f.client_ip(ip("10.0.0.1"), &[]), Ok(ip("10.0.0.1")));
    }

    #[test]
    fn bad_cidr_is_an_error() {
        let c = NetworkConfig {
            allow: vec!["10.0.0.0/40".into()],
            ..Default::default()
        };
        assert!(NetFilter::from_config(&c)
            .unwrap_err()
            .contains("10.0.0.0/40"));
    }
}
