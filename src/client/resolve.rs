//! Turning a host name into the one address that every knock (and the check) goes to.
//!
//! A name is resolved once. If each knock resolved it again, a name with A and AAAA records
//! could split a sequence across two families, and the daemon would see two half-sequences.
//! Without `-4`/`-6` the first address the resolver returns is used, because that is the one
//! ssh, curl and browsers connect to first (getaddrinfo's RFC 6724 order): opening the door
//! for another address of the same machine would open it for the wrong source.

use std::fmt;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

/// Which address family to knock over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Family {
    /// Whatever the resolver lists first.
    #[default]
    Any,
    /// IPv4 only (`-4`).
    V4,
    /// IPv6 only (`-6`).
    V6,
}

impl Family {
    /// Parses a saved host's `Family`: `4`, `6`, `any`, or ssh's `inet`/`inet6`.
    pub fn parse(text: &str) -> Result<Family, String> {
        match text.to_ascii_lowercase().as_str() {
            "any" => Ok(Family::Any),
            "4" | "inet" | "ipv4" => Ok(Family::V4),
            "6" | "inet6" | "ipv6" => Ok(Family::V6),
            _ => Err(format!("bad family '{text}': expected 4, 6 or any")),
        }
    }

    fn admits(self, ip: &IpAddr) -> bool {
        match self {
            Family::Any => true,
            Family::V4 => ip.is_ipv4(),
            Family::V6 => ip.is_ipv6(),
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::Any => "any",
            Family::V4 => "4",
            Family::V6 => "6",
        })
    }
}

/// Picks the address to use from the resolver's answer, keeping its order.
///
/// The answer's scope id (for link-local IPv6 like `fe80::1%eth0`) is kept, so the knocks leave
/// through the interface the user named.
pub fn pick(addrs: &[SocketAddr], family: Family) -> Option<SocketAddr> {
    addrs.iter().copied().find(|a| family.admits(&a.ip()))
}

/// Resolves `host` (a name, an address, or a bracketed IPv6 address) to one address.
pub fn resolve(host: &str, family: Family) -> Result<SocketAddr, String> {
    // "[2001:db8::1]" is how IPv6 addresses are written next to ports; accept it.
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if bare.is_empty() {
        return Err("empty host name".to_string());
    }
    let addrs: Vec<SocketAddr> = (bare, 0)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve '{host}': {e}"))?
        .collect();
    pick(&addrs, family).ok_or_else(|| match family {
        Family::Any => format!("cannot resolve '{host}': no addresses"),
        Family::V4 => format!("'{host}' has no IPv4 address (-4)"),
        Family::V6 => format!("'{host}' has no IPv6 address (-6)"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        SocketAddr::new(s.parse().unwrap(), 0)
    }

    #[test]
    fn first_answer_wins_unless_forced() {
        let v6_first = [sa("2001:db8::1"), sa("192.0.2.1"), sa("2001:db8::2")];
        assert_eq!(pick(&v6_first, Family::Any), Some(sa("2001:db8::1")));
        assert_eq!(pick(&v6_first, Family::V4), Some(sa("192.0.2.1")));
        assert_eq!(pick(&v6_first, Family::V6), Some(sa("2001:db8::1")));
        let v4_only = [sa("192.0.2.1")];
        assert_eq!(pick(&v4_only, Family::V6), None);
        assert_eq!(pick(&[], Family::Any), None);
    }

    #[test]
    fn literals_resolve_without_dns() {
        assert_eq!(resolve("192.0.2.1", Family::Any), Ok(sa("192.0.2.1")));
        assert_eq!(resolve("2001:db8::1", Family::Any), Ok(sa("2001:db8::1")));
        assert_eq!(resolve("[2001:db8::1]", Family::V6), Ok(sa("2001:db8::1")));
        let e = resolve("192.0.2.1", Family::V6).unwrap_err();
        assert!(e.contains("no IPv6"), "{e}");
        assert!(resolve("", Family::Any).is_err());
        assert!(resolve("[]", Family::Any).is_err());
    }

    #[test]
    fn family_words() {
        assert_eq!(Family::parse("4"), Ok(Family::V4));
        assert_eq!(Family::parse("inet6"), Ok(Family::V6));
        assert_eq!(Family::parse("ANY"), Ok(Family::Any));
        assert!(Family::parse("5").is_err());
    }
}
