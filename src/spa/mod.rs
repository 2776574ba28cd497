//! Single Packet Authorization, fwknop's wire format: one UDP packet, AES-256-CBC encrypted
//! and HMAC-SHA256 authenticated, carrying a timestamp, the address to let in and the
//! ports it asks for.
//!
//! Pure core, no I/O: [`wire`] turns payload bytes into a [`Message`] (and back, for the
//! client), [`policy`] decides what a door grants for it at a given wall-clock `now`, and
//! [`replay`] remembers what was already seen. The daemon's order for a packet is
//! [`wire::Packet::parse`] → for each door: [`wire::Packet::authentic`] (constant time,
//! before anything is decrypted) → [`replay::Cache::contains`] → [`wire::Packet::decrypt`]
//! → [`replay::Cache::insert`] (also when the policy then refuses, as fwknopd does, so a
//! refused packet cannot be retried) → [`policy::Door::decide`].
//!
//! Supported subset, with reasons: Rijndael (AES-256-CBC) with HMAC-SHA256 only; message
//! types 1 (access) and 3 (access with client timeout); inner digest SHA-256 (fwknop's
//! default). GnuPG, legacy IV mode, HMAC digests other than SHA-256, command and NAT
//! messages are refused.

pub mod door;
pub mod policy;
pub mod replay;
pub mod wire;

#[cfg(test)]
pub(crate) mod tests;

use crate::config::Proto;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

/// Most proto/port pairs one packet may ask for (a longer list is refused as malformed).
pub const MAX_ACCESS: usize = 16;
/// Longest encryption key (AES-256 passphrase or raw key), as in fwknop.
pub const MAX_ENC_KEY: usize = 32;
/// Longest HMAC key fwknop accepts (`MAX_DIGEST_BLOCK_LEN`).
pub const MAX_HMAC_KEY: usize = 136;
/// The protocol version fwknop 2.x clients write.
pub const VERSION: &str = "3.0.0";

/// One requested protocol and port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Access {
    /// `tcp` or `udp`.
    pub proto: Proto,
    /// 1..=65535.
    pub port: u16,
}

impl Access {
    /// The IP protocol number fwknopd substitutes for `$PROTO` (6 or 17).
    pub fn proto_number(self) -> u8 {
        match self.proto {
            Proto::Tcp => 6,
            Proto::Udp => 17,
        }
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.proto.name(), self.port)
    }
}

/// A pair of keys: the Rijndael key (1..=32 bytes, used through `EVP_BytesToKey`) and the
/// HMAC-SHA256 key (1..=136 bytes).
#[derive(Clone, PartialEq, Eq)]
pub struct Keys {
    /// Encryption key bytes, as in `KEY` or decoded `KEY_BASE64`.
    pub enc: heapless::Vec<u8, MAX_ENC_KEY>,
    /// HMAC key bytes, as in `HMAC_KEY` or decoded `HMAC_KEY_BASE64`.
    pub hmac: heapless::Vec<u8, MAX_HMAC_KEY>,
}

impl Keys {
    /// Builds a pair; `None` when a key is empty or too long.
    pub fn new(enc: &[u8], hmac: &[u8]) -> Option<Keys> {
        if enc.is_empty() || hmac.is_empty() {
            return None;
        }
        Some(Keys {
            enc: heapless::Vec::from_slice(enc).ok()?,
            hmac: heapless::Vec::from_slice(hmac).ok()?,
        })
    }
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material (configs are dumped by `check`).
        write!(f, "Keys({} + {} bytes)", self.enc.len(), self.hmac.len())
    }
}

/// A decoded SPA message (what the fields say; nothing is checked against a door yet).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The 16 random ASCII digits.
    pub rand: [u8; 16],
    /// The username the client sent (printable, no fwknop-forbidden characters).
    pub user: heapless::String<48>,
    /// Client's wall-clock time, unix seconds.
    pub timestamp: i64,
    /// Protocol version text, `3.0.0` from fwknop 2.x.
    pub version: heapless::String<8>,
    /// Address to let in; `0.0.0.0` means "the packet's source".
    pub allow: Ipv4Addr,
    /// Requested proto/port pairs, at least one.
    pub access: heapless::Vec<Access, MAX_ACCESS>,
    /// Seconds asked for by the client (message type 3); 0 for type 1.
    pub client_timeout: u32,
}

impl Default for Message {
    /// An empty type-1 message for `0.0.0.0`, version [`VERSION`], to be filled in.
    fn default() -> Self {
        Message {
            rand: [b'0'; 16],
            user: heapless::String::new(),
            timestamp: 0,
            version: heapless::String::try_from(VERSION).unwrap_or_default(),
            allow: Ipv4Addr::UNSPECIFIED,
            access: heapless::Vec::new(),
            client_timeout: 0,
        }
    }
}

/// Why a packet opened nothing. The names are what the daemon logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not a Rijndael SPA packet at all (length, alphabet, structure).
    NotSpa,
    /// The HMAC does not match any door's key (or the packet carries none).
    BadMac,
    /// Authentic, but the encryption key does not decrypt it.
    BadKey,
    /// Decrypted, but a field breaks fwknop's format or the inner digest does not match.
    BadMsg,
    /// Inner digest other than SHA-256 (fwknop's `-m`): outside the subset.
    DigestUnsupported,
    /// Command (0) or NAT (2, 4, 5, 6) message: never honoured.
    TypeUnsupported,
    /// Seen before (in any encoding, from any source).
    Replay,
    /// Timestamp further than the allowed age from now, either way (seconds off).
    Stale(i64),
    /// `0.0.0.0` asked for, but the door requires a real address.
    NeedSourceAddress,
    /// A requested port is restricted or not among the open ones.
    PortDenied,
    /// The username is not the one the door requires.
    UserDenied,
    /// The door's `ACCESS_EXPIRE` date has passed.
    Expired,
    /// The replay cache is full of packets still young enough to be accepted; refusing is
    /// the only safe answer.
    CacheFull,
    /// No door serves this source, destination and port.
    NoDoor,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NotSpa => f.write_str("not-spa"),
            Refusal::BadMac => f.write_str("bad-mac"),
            Refusal::BadKey => f.write_str("bad-key"),
            Refusal::BadMsg => f.write_str("bad-msg"),
            Refusal::DigestUnsupported => f.write_str("digest-unsupported"),
            Refusal::TypeUnsupported => f.write_str("type-unsupported"),
            Refusal::Replay => f.write_str("replay"),
            Refusal::Stale(d) => write!(f, "stale({d:+}s)"),
            Refusal::NeedSourceAddress => f.write_str("need-source-address"),
            Refusal::PortDenied => f.write_str("port-denied"),
            Refusal::UserDenied => f.write_str("user-denied"),
            Refusal::Expired => f.write_str("expired"),
            Refusal::CacheFull => f.write_str("replay-cache-full"),
            Refusal::NoDoor => f.write_str("no-door"),
        }
    }
}

/// A packet that opens a door.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted<'d> {
    /// The door (the first, in order, that accepted it).
    pub door: &'d door::Door,
    /// What it opens.
    pub grant: policy::Grant,
    /// The decoded message.
    pub msg: Message,
}

/// Where a packet came from and went to (IP header and UDP destination port).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wire {
    /// Packet source.
    pub src: IpAddr,
    /// Packet destination.
    pub dst: IpAddr,
    /// UDP destination port.
    pub port: u16,
}

/// Runs one UDP payload through the doors, in order, at wall-clock `now`: the daemon's whole
/// decision. Doors that serve the packet's source, destination and port are tried in turn;
/// for each, the HMAC is checked first (constant time), then the replay cache, then the
/// decryption. The packet's replay key is remembered after its first successful decryption,
/// before the policy checks, so a packet refused for its age or ports cannot be retried; a
/// failure moves on to the next door (fwknopd's stanza order). The refusal returned is the
/// last door's, with that door.
pub fn receive<'d>(
    doors: impl IntoIterator<Item = &'d door::Door>,
    payload: &[u8],
    wire: Wire,
    now: i64,
    cache: &mut replay::Cache,
) -> Result<Accepted<'d>, (Option<&'d door::Door>, Refusal)> {
    if !wire::looks_like_spa(payload) {
        return Err((None, Refusal::NotSpa));
    }
    let pk = wire::Packet::parse(payload).map_err(|e| (None, e))?;
    let mut last: (Option<&door::Door>, Refusal) = (None, Refusal::NoDoor);
    let mut remembered = false;
    for d in doors {
        if !d.serves(wire.port, wire.src, wire.dst) {
            continue;
        }
        if d.rules.expired(now) {
            last = (Some(d), Refusal::Expired);
            continue;
        }
        if !pk.authentic(&d.keys.hmac) {
            last = (Some(d), Refusal::BadMac);
            continue;
        }
        let key = pk.replay_key();
        if !remembered && cache.contains(&key) {
            return Err((Some(d), Refusal::Replay));
        }
        let msg = match pk.decrypt(&d.keys.enc) {
            Ok(m) => m,
            Err(e) => {
                last = (Some(d), e);
                continue;
            }
        };
        if !remembered {
            cache
                .insert(key, d.rules.replay_until(msg.timestamp), now)
                .map_err(|e| (Some(d), e))?;
            remembered = true;
        }
        match d.rules.decide(&msg, wire.src, now) {
            Ok(grant) => {
                return Ok(Accepted {
                    door: d,
                    grant,
                    msg,
                })
            }
            Err(e) => last = (Some(d), e),
        }
    }
    Err(last)
}
