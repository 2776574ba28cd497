//! Knock sequences as people write them: `7000`, `8000:udp`, and knockd's `7000,8000:udp,9000`.
//!
//! The same syntax is accepted on the command line (one port per argument, as `knock` takes
//! them) and in a saved host's `Sequence` (comma-separated, as in knockd.conf), so a sequence
//! can be pasted from the server's config unchanged.

use std::fmt;

/// The transport a knock travels on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    /// One SYN, never a connection.
    Tcp,
    /// One datagram holding one zero byte.
    Udp,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        })
    }
}

/// One element of a sequence. `proto` is `None` when the user wrote a bare port: it then
/// follows `-u` (UDP) or defaults to TCP, exactly as knock decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Knock {
    /// Destination port, 1..=65535.
    pub port: u16,
    /// Protocol written after the colon, if any.
    pub proto: Option<Proto>,
}

impl Knock {
    /// The protocol this knock is sent with when bare ports default to `default`.
    pub fn proto_or(&self, default: Proto) -> Proto {
        self.proto.unwrap_or(default)
    }
}

impl fmt::Display for Knock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.proto {
            Some(p) => write!(f, "{}:{p}", self.port),
            None => write!(f, "{}", self.port),
        }
    }
}

/// Parses a port number, 1..=65535; `what` names it in the error ("port", "check port").
pub fn parse_port_number(text: &str, what: &str) -> Result<u16, String> {
    // Only plain decimal digits: u16::from_str would also take "+22".
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("bad {what} '{text}': expected a number 1..65535"));
    }
    match text.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!("bad {what} '{text}': expected a number 1..65535")),
    }
}

/// Parses one `PORT[:tcp|:udp]` (protocol case-insensitive, as knockd reads it).
pub fn parse_knock(text: &str) -> Result<Knock, String> {
    let text = text.trim();
    let (port, proto) = match text.split_once(':') {
        Some((port, proto)) => (port.trim(), Some(proto.trim())),
        None => (text, None),
    };
    let proto = match proto {
        None => None,
        Some(p) if p.eq_ignore_ascii_case("tcp") => Some(Proto::Tcp),
        Some(p) if p.eq_ignore_ascii_case("udp") => Some(Proto::Udp),
        Some(p) => {
            return Err(format!(
                "bad protocol '{p}' in '{text}': expected tcp or udp"
            ))
        }
    };
    Ok(Knock {
        port: parse_port_number(port, "port")?,
        proto,
    })
}

/// Parses knockd's `Sequence` value: comma-separated knocks, spaces allowed around each.
pub fn parse_list(text: &str) -> Result<Vec<Knock>, String> {
    if text.trim().is_empty() {
        return Err("empty sequence".to_string());
    }
    text.split(',').map(parse_knock).collect()
}

/// Formats a sequence the way `parse_list` reads it back.
pub fn format_list(seq: &[Knock]) -> String {
    let parts: Vec<String> = seq.iter().map(Knock::to_string).collect();
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(port: u16, proto: Option<Proto>) -> Knock {
        Knock { port, proto }
    }

    #[test]
    fn bare_and_suffixed_ports() {
        assert_eq!(parse_knock("7000"), Ok(k(7000, None)));
        assert_eq!(parse_knock("8000:udp"), Ok(k(8000, Some(Proto::Udp))));
        assert_eq!(parse_knock("9000:TCP"), Ok(k(9000, Some(Proto::Tcp))));
        assert_eq!(parse_knock(" 1 : Udp "), Ok(k(1, Some(Proto::Udp))));
        assert_eq!(parse_knock("65535"), Ok(k(65535, None)));
    }

    #[test]
    fn bad_ports_are_rejected_not_zeroed() {
        for bad in ["0", "65536", "", "x", "-1", "+22", "70 00", "7000:", "1e3"] {
            assert!(parse_knock(bad).is_err(), "{bad:?} accepted");
        }
        let e = parse_knock("7000:icmp").unwrap_err();
        assert!(e.contains("icmp") && e.contains("tcp or udp"), "{e}");
        let e = parse_knock("99999").unwrap_err();
        assert!(e.contains("99999") && e.contains("1..65535"), "{e}");
    }

    #[test]
    fn knockd_sequence_lists() {
        assert_eq!(
            parse_list("7000, 8000:udp ,9000:tcp"),
            Ok(vec![
                k(7000, None),
                k(8000, Some(Proto::Udp)),
                k(9000, Some(Proto::Tcp))
            ])
        );
        assert!(parse_list("").is_err());
        assert!(parse_list("7000,,8000").is_err());
        assert!(parse_list("7000,8000,").is_err());
    }

    #[test]
    fn default_protocol_and_round_trip() {
        let seq = parse_list("7000,8000:udp").unwrap();
        assert_eq!(seq[0].proto_or(Proto::Udp), Proto::Udp);
        assert_eq!(seq[1].proto_or(Proto::Tcp), Proto::Udp);
        assert_eq!(format_list(&seq), "7000,8000:udp");
        assert_eq!(parse_list(&format_list(&seq)), Ok(seq));
    }
}
