//! The SPA client: `latchkey knock --spa` sends one fwknop Single Packet Authorization
//! packet (Rijndael + HMAC-SHA256, what fwknopd 2.6 and `latchkey fwknopd` accept), and
//! `latchkey keygen` makes a key pair.
//!
//! The packet itself is built by the pure encoder in `crate::spa::wire`; this module gathers
//! what goes in it from three places, each overriding the one before: a `~/.fwknoprc` stanza
//! (`-n NAME`: its `[default]` stanza, then `[NAME]`), a saved host's fwknop lines, and the
//! command line. The variable names are fwknop's own (`ACCESS`, `KEY_BASE64`, ...), so lines
//! can be pasted between `.fwknoprc`, access.conf and a saved host.
//!
//! Deliberately narrower than fwknop: the HMAC is always on (a packet without one would be
//! accepted by a misconfigured fwknopd from anyone who saw the encryption key go by), the
//! digests are SHA-256, the transport is UDP, and the allow IP is given (`-a`) or "the
//! source" (`-s`), never fetched from a web service.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::spa::{self, wire, Access, Keys, Message};

/// fwknopd's default port (`PCAP_FILTER udp port 62201`).
pub const DEFAULT_PORT: u16 = 62201;
/// Random bytes in a key made by `keygen`, as `fwknop --key-gen`: 32 for AES, 64 for HMAC.
const KEYGEN_LEN: (usize, usize) = (32, 64);
/// Largest client timeout fwknop's decoder takes (`2 << 15`).
const MAX_TIMEOUT: u32 = 65536;

/// A key as written: base64 (`KEY_BASE64`) or a passphrase used byte for byte (`KEY`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyText {
    /// Base64 of the key bytes.
    Base64(String),
    /// The key bytes themselves.
    Raw(String),
}

impl KeyText {
    fn bytes(&self, what: &str, max: usize) -> Result<Vec<u8>, String> {
        match self {
            KeyText::Base64(t) => wire::decode_key(t, max)
                .ok_or_else(|| format!("bad {what} key: expected base64 of 1..{max} bytes")),
            KeyText::Raw(t) if !t.is_empty() && t.len() <= max => Ok(t.as_bytes().to_vec()),
            KeyText::Raw(_) => Err(format!("bad {what} key: expected 1..{max} bytes")),
        }
    }
}

/// SPA settings from one source; `None` = not said there.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// `SPA_SERVER`: the host to send to.
    pub server: Option<String>,
    /// `ACCESS`: `tcp/22[,udp/53...]`.
    pub access: Option<String>,
    /// `ALLOW_IP`: an address, or `0.0.0.0` for `source`.
    pub allow: Option<Ipv4Addr>,
    /// `FW_TIMEOUT`: seconds asked for (0 = the server's default, message type 1).
    pub timeout: Option<u32>,
    /// `SPA_SERVER_PORT`.
    pub port: Option<u16>,
    /// `KEY` / `KEY_BASE64`.
    pub key: Option<KeyText>,
    /// `HMAC_KEY` / `HMAC_KEY_BASE64`.
    pub hmac: Option<KeyText>,
    /// `SPOOF_USER`: the user name written in the packet.
    pub user: Option<String>,
}

impl Settings {
    /// `over`'s values where it has them, else ours.
    pub fn overlay(self, over: Settings) -> Settings {
        Settings {
            server: over.server.or(self.server),
            access: over.access.or(self.access),
            allow: over.allow.or(self.allow),
            timeout: over.timeout.or(self.timeout),
            port: over.port.or(self.port),
            key: over.key.or(self.key),
            hmac: over.hmac.or(self.hmac),
            user: over.user.or(self.user),
        }
    }

    /// Whether any key is set (a saved host with keys is an SPA host).
    pub fn has_key(&self) -> bool {
        self.key.is_some() || self.hmac.is_some()
    }

    /// Takes one fwknop rc variable (name case-insensitive). `Ok(false)`: not an SPA
    /// variable. Variables that would ask for something latchkey does not send (GnuPG, other
    /// digests or modes, NAT, TCP or HTTP transport, no HMAC) are errors, not ignored: the
    /// server would refuse what we send instead.
    pub fn set(&mut self, name: &str, value: &str) -> Result<bool, String> {
        let v = value.trim();
        let yes = v.eq_ignore_ascii_case("y") || v.eq_ignore_ascii_case("yes");
        let must = |ok: bool, want: &str| {
            if ok {
                Ok(true)
            } else {
                Err(format!(
                    "{name} {v}: latchkey sends {want} only (fwknop's Rijndael + HMAC-SHA256 subset)"
                ))
            }
        };
        match name.to_ascii_uppercase().as_str() {
            "SPA_SERVER" => self.server = Some(v.to_string()),
            "ACCESS" => {
                parse_access(v)?;
                self.access = Some(v.to_string());
            }
            "ALLOW_IP" => {
                self.allow = Some(if v.eq_ignore_ascii_case("source") {
                    Ipv4Addr::UNSPECIFIED
                } else if v.eq_ignore_ascii_case("resolve") {
                    return Err(format!(
                        "{name} resolve: asking a web service for the address is not supported; \
                         give the address, or 'source'"
                    ));
                } else {
                    v.parse().map_err(|_| {
                        format!("bad {name} '{v}': expected an IPv4 address or 'source'")
                    })?
                })
            }
            "FW_TIMEOUT" => self.timeout = Some(parse_timeout(v)?),
            "SPA_SERVER_PORT" => {
                self.port = Some(super::sequence::parse_port_number(v, "SPA_SERVER_PORT")?)
            }
            "KEY" => self.key = Some(KeyText::Raw(v.to_string())),
            "KEY_BASE64" => self.key = Some(KeyText::Base64(v.to_string())),
            "HMAC_KEY" => self.hmac = Some(KeyText::Raw(v.to_string())),
            "HMAC_KEY_BASE64" => self.hmac = Some(KeyText::Base64(v.to_string())),
            "SPOOF_USER" => self.user = Some(v.to_string()),
            "USE_HMAC" => return must(yes, "HMAC-authenticated packets (USE_HMAC Y)"),
            "HMAC_DIGEST_TYPE" | "DIGEST_TYPE" => {
                return must(v.eq_ignore_ascii_case("sha256"), "SHA-256")
            }
            "ENCRYPTION_MODE" => return must(v.eq_ignore_ascii_case("cbc"), "CBC"),
            "SPA_SERVER_PROTO" => return must(v.eq_ignore_ascii_case("udp"), "UDP"),
            "USE_GPG" | "USE_GPG_AGENT" => return must(!yes, "Rijndael (not GnuPG)"),
            "NAT_ACCESS" | "NAT_LOCAL" | "NAT_PORT" | "NAT_RAND_PORT" => {
                return must(false, "access messages (no NAT)")
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// Everything one packet needs, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Both keys.
    pub keys: Keys,
    /// What to open.
    pub access: Vec<Access>,
    /// Who to let in; `0.0.0.0` = the packet's source.
    pub allow: Ipv4Addr,
    /// Seconds asked for; 0 = the server's own timeout (type 1).
    pub timeout: u32,
    /// The server's UDP port.
    pub port: u16,
    /// The user name in the packet.
    pub user: String,
}

impl Settings {
    /// Checks that everything a packet needs is there (HMAC key included).
    pub fn request(&self) -> Result<Request, String> {
        let key = self.key.as_ref().ok_or(
            "SPA needs an encryption key (--key-base64-rijndael or --key-rijndael, or KEY_BASE64)",
        )?;
        let hmac = self.hmac.as_ref().ok_or(
            "SPA needs an HMAC key (--key-base64-hmac or --key-hmac, or HMAC_KEY_BASE64): \
             latchkey always authenticates its packets",
        )?;
        let enc = key.bytes("encryption", spa::MAX_ENC_KEY)?;
        let mac = hmac.bytes("HMAC", spa::MAX_HMAC_KEY)?;
        if enc == mac {
            return Err(
                "the encryption and HMAC keys must differ (fwknopd refuses equal ones)".into(),
            );
        }
        let keys = Keys::new(&enc, &mac).ok_or("bad SPA keys")?;
        let access = parse_access(
            self.access
                .as_deref()
                .ok_or("SPA needs the ports to open: -A tcp/22 (or ACCESS)")?,
        )?;
        let allow = self.allow.ok_or(
            "SPA needs the address to let in: -a IP, or -s for the address the packet comes from",
        )?;
        let user = match &self.user {
            Some(u) => u.clone(),
            None => default_user(),
        };
        check_user(&user)?;
        Ok(Request {
            keys,
            access,
            allow,
            timeout: self.timeout.unwrap_or(0),
            port: self.port.unwrap_or(DEFAULT_PORT),
            user,
        })
    }
}

/// Parses `-A`: `tcp/22[,udp/53...]`, at most as many as one packet may carry.
fn parse_access(text: &str) -> Result<Vec<Access>, String> {
    match spa::policy::parse_ports(text) {
        Some(a) if a.len() <= spa::MAX_ACCESS => Ok(a),
        _ => Err(format!(
            "bad access '{text}': expected PROTO/PORT[,PROTO/PORT...] with tcp or udp, \
             at most {} of them",
            spa::MAX_ACCESS
        )),
    }
}

/// Parses a client timeout (`-f`, `FW_TIMEOUT`), 0..65536 seconds as fwknop takes it.
pub fn parse_timeout(text: &str) -> Result<u32, String> {
    text.parse::<u32>()
        .ok()
        .filter(|&t| t <= MAX_TIMEOUT && text.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| format!("bad timeout '{text}': expected seconds, 0..{MAX_TIMEOUT}"))
}

/// The user name fwknop would send: `$USER`, `$LOGNAME` (Windows: `%USERNAME%`), else
/// fwknop's placeholder.
fn default_user() -> String {
    ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|u| check_user(u).is_ok()))
        .unwrap_or_else(|| "NO_USER".to_string())
}

/// fwknop's user-name rule: printable ASCII, no `" / \ [ ] : ; | = , + * ? < >`, and room in
/// the packet.
fn check_user(user: &str) -> Result<(), String> {
    let bad = |c: char| !c.is_ascii_graphic() || "\"/\\[]:;|=,+*?<>".contains(c);
    if user.is_empty() || user.len() > 32 || user.contains(bad) {
        return Err(format!(
            "bad user name '{user}': 1..32 printable characters, none of \" / \\ [ ] : ; | = , + * ? < >"
        ));
    }
    Ok(())
}

/// `n` bytes from the operating system's random source (Linux: getrandom(2); Windows:
/// BCryptGenRandom, which Windows 7 and later and wine have; getrandom 0.3's ProcessPrng
/// is missing from wine, where the Windows client is tested).
fn random(n: usize) -> Result<Vec<u8>, String> {
    let mut buf = vec![0u8; n];
    getrandom::getrandom(&mut buf)
        .map_err(|e| format!("no random numbers from the system: {e}"))?;
    Ok(buf)
}

/// The packet for `r` at wall-clock `now` (unix seconds), with fresh randomness.
pub fn packet(r: &Request, now: i64) -> Result<String, String> {
    let noise = random(16 + 8)?;
    let mut m = Message {
        timestamp: now,
        allow: r.allow,
        client_timeout: r.timeout,
        ..Message::default()
    };
    // fwknop's 16 random decimal digits.
    for (d, b) in m.rand.iter_mut().zip(&noise) {
        *d = b'0' + b % 10;
    }
    let mut salt = [0u8; 8];
    salt.copy_from_slice(&noise[16..]);
    m.user = heapless::String::try_from(r.user.as_str()).map_err(|_| "user name too long")?;
    m.version = heapless::String::try_from(spa::VERSION).map_err(|_| "version")?;
    for a in &r.access {
        m.access.push(*a).map_err(|_| "too many ports")?;
    }
    Ok(wire::encode(&m, &r.keys, salt))
}

/// The wall clock, unix seconds (what the server compares the packet's time with).
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Sends `payload` as one UDP datagram to `to`.
pub fn send(to: SocketAddr, payload: &str) -> std::io::Result<()> {
    let any: SocketAddr = if to.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = UdpSocket::bind(any)?;
    sock.send_to(payload.as_bytes(), to).map(|_| ())
}

/// `latchkey keygen`'s output: a new key pair in the form `fwknop --key-gen` prints, ready
/// for access.conf, `.fwknoprc` and saved hosts.
pub fn keygen() -> Result<String, String> {
    let key = random(KEYGEN_LEN.0)?;
    let hmac = random(KEYGEN_LEN.1)?;
    Ok(format!(
        "KEY_BASE64: {}\nHMAC_KEY_BASE64: {}",
        wire::encode_key(&key),
        wire::encode_key(&hmac)
    ))
}

#[cfg(test)]
mod tests;
