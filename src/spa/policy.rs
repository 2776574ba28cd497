//! What an SPA door grants for a decoded [`Message`]: fwknopd's checks in its order (expiry,
//! age, allow IP, username, ports, timeout), without its command-mode quirks: the port lists
//! are enforced and the client timeout is clamped for every kind of action.
//!
//! Pure: the wall-clock `now` (unix seconds) is an argument.

use super::{Access, Message, Refusal};
use std::net::IpAddr;

/// The policy half of a door (an access.conf stanza or a knockd.conf SPA section).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rules {
    /// `OPEN_PORTS`: when set, every requested proto/port must be listed.
    pub open_ports: Option<Vec<Access>>,
    /// `RESTRICT_PORTS`: any requested proto/port listed here is refused.
    pub restrict_ports: Vec<Access>,
    /// `REQUIRE_SOURCE_ADDRESS`: refuse `0.0.0.0` ("the packet's source").
    pub require_source: bool,
    /// `REQUIRE_USERNAME`: exact match on the username the client sent.
    pub require_user: Option<String>,
    /// `FW_ACCESS_TIMEOUT` (or `CMD_CYCLE_TIMER`): seconds granted when the client asks for
    /// none.
    pub timeout: u32,
    /// `MAX_FW_TIMEOUT`: ceiling for a client's own timeout.
    pub max_timeout: u32,
    /// `ACCESS_EXPIRE[_EPOCH]`: unix time after which the door opens nothing.
    pub expires: Option<i64>,
    /// `MAX_SPA_PACKET_AGE`; `None` when aging is off (`ENABLE_SPA_PACKET_AGING N`).
    pub max_age: Option<u32>,
}

impl Default for Rules {
    /// fwknopd's defaults, except `REQUIRE_SOURCE_ADDRESS` which the callers set.
    fn default() -> Self {
        Rules {
            open_ports: None,
            restrict_ports: Vec::new(),
            require_source: false,
            require_user: None,
            timeout: 30,
            max_timeout: 300,
            expires: None,
            max_age: Some(120),
        }
    }
}

/// What a door opens: for `ip`, the `access` pairs, for `timeout` seconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The address let in: the packet's allow IP, or its source for `0.0.0.0`.
    pub ip: IpAddr,
    /// Every requested proto/port (all allowed by the door).
    pub access: heapless::Vec<Access, { super::MAX_ACCESS }>,
    /// Seconds until the door closes again.
    pub timeout: u32,
}

impl Rules {
    /// The wall-clock time until which a packet with timestamp `ts` could still pass the age
    /// check: its replay-cache entry may be forgotten after that, never before.
    pub fn replay_until(&self, ts: i64) -> i64 {
        match self.max_age {
            Some(age) => ts.saturating_add(i64::from(age)),
            None => i64::MAX,
        }
    }

    /// Whether the door is past its `ACCESS_EXPIRE` date (checked before decrypting, as
    /// fwknopd does).
    pub fn expired(&self, now: i64) -> bool {
        self.expires.is_some_and(|e| now > e)
    }

    /// Decides the grant for `m`, received from `src` at wall-clock `now`.
    pub fn decide(&self, m: &Message, src: IpAddr, now: i64) -> Result<Grant, Refusal> {
        if self.expired(now) {
            return Err(Refusal::Expired);
        }
        if let Some(age) = self.max_age {
            let off = m.timestamp.saturating_sub(now);
            if off.unsigned_abs() > u64::from(age) {
                return Err(Refusal::Stale(off));
            }
        }
        let ip = if m.allow.is_unspecified() {
            if self.require_source {
                return Err(Refusal::NeedSourceAddress);
            }
            src
        } else {
            IpAddr::V4(m.allow)
        };
        if let Some(user) = &self.require_user {
            if user.as_str() != m.user.as_str() {
                return Err(Refusal::UserDenied);
            }
        }
        for a in &m.access {
            if self.restrict_ports.contains(a)
                || self
                    .open_ports
                    .as_ref()
                    .is_some_and(|open| !open.contains(a))
            {
                return Err(Refusal::PortDenied);
            }
        }
        let timeout = if m.client_timeout > 0 {
            m.client_timeout.min(self.max_timeout)
        } else {
            self.timeout
        };
        Ok(Grant {
            ip,
            access: m.access.clone(),
            timeout,
        })
    }
}

/// Parses fwknop's port list form, `tcp/22, udp/53` (spaces allowed, case-insensitive).
pub fn parse_ports(text: &str) -> Option<Vec<Access>> {
    let mut out = Vec::new();
    for spec in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (proto, port) = spec.split_once('/')?;
        let proto = match proto.trim().to_ascii_lowercase().as_str() {
            "tcp" => crate::config::Proto::Tcp,
            "udp" => crate::config::Proto::Udp,
            _ => return None,
        };
        let port = crate::config::number(port.trim()).filter(|p| (1..=65535).contains(p))? as u16;
        out.push(Access { proto, port });
    }
    (!out.is_empty()).then_some(out)
}
