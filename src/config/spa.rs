//! SPA doors in knockd.conf: a door section with `SPA_Port` (and keys) instead of a
//! `Sequence`, served by `latchkey daemon` beside the knock doors.
//!
//! ```text
//! [ssh-spa]
//!     SPA_Port        = 62201
//!     Key_Base64      = W71GMIGS9Fvy0fWjHOUmThOiYm8VRsnfi7ctLoZnCBI=
//!     HMAC_Key_Base64 = hmfIlOFc+JJkhrxebwuC3cU8...
//!     Open_Ports      = tcp/22
//!     Cmd_Timeout     = 30
//!     Start_Command   = /sbin/iptables -I INPUT 1 -s %IP% -p %PROTO% --dport %PORT% -j ACCEPT
//!     Stop_Command    = /sbin/iptables -D INPUT -s %IP% -p %PROTO% --dport %PORT% -j ACCEPT
//! ```
//!
//! Keys (case-insensitive): `SPA_Port` (required), `Key`/`Key_Base64` and
//! `HMAC_Key`/`HMAC_Key_Base64` (both required, different), `Source`/`Destination`
//! (fwknop's address lists, default ANY), `Open_Ports`/`Restrict_Ports`,
//! `Require_Source_Address` (default yes: a new door does not open for "whoever sent it"),
//! `Require_Username`, `Cmd_Timeout` (seconds granted when the client asks for none, default
//! 30), `Max_Timeout` (ceiling for the client's own, default 300), `Max_Packet_Age` (default
//! 120; 0 turns aging off). Without `Start_Command` a grant opens through latchkey's own
//! firewall action: the OpenWrt helper if installed, else an iptables/ip6tables ACCEPT rule,
//! else an nftables set element with the grant's timeout (`spa::door::NFT`); it is
//! undone at the end.

use crate::spa::door::{Action, Door, Net, Style};
use crate::spa::policy::{parse_ports, Rules};
use crate::spa::{wire, Keys, MAX_ENC_KEY, MAX_HMAC_KEY};

/// The SPA part of a door section while it is read.
#[derive(Default)]
pub(super) struct Draft {
    port: Option<u16>,
    key: Option<Vec<u8>>,
    hmac: Option<Vec<u8>>,
    source: Option<Vec<Net>>,
    destination: Vec<Net>,
    rules: Rules,
    require_source: Option<bool>,
    timeout: Option<u32>,
}

/// Whether `key` (lowercase) is one of the SPA-only keys.
pub(super) fn is_spa_key(key: &str) -> bool {
    matches!(
        key,
        "spa_port"
            | "key"
            | "key_base64"
            | "hmac_key"
            | "hmac_key_base64"
            | "source"
            | "destination"
            | "open_ports"
            | "restrict_ports"
            | "require_source_address"
            | "require_username"
            | "max_timeout"
            | "max_packet_age"
    )
}

fn seconds(value: &str, max: u32) -> Result<u32, &'static str> {
    super::number(value)
        .filter(|&v| v <= u64::from(max))
        .map(|v| v as u32)
        .ok_or("expected a number of seconds (Max_Packet_Age at most 100000)")
}

impl Draft {
    /// Takes one SPA key (lowercase `key`).
    pub(super) fn key(&mut self, key: &str, value: &str) -> Result<(), &'static str> {
        match key {
            "spa_port" => match super::number(value) {
                Some(p) if (1..=65535).contains(&p) => self.port = Some(p as u16),
                _ => return Err("expected a UDP port from 1 to 65535"),
            },
            "key" if !value.is_empty() && value.len() <= MAX_ENC_KEY => {
                self.key = Some(value.as_bytes().to_vec())
            }
            "key" => return Err("expected a passphrase of 1 to 32 bytes"),
            "key_base64" => {
                self.key = Some(
                    wire::decode_key(value, MAX_ENC_KEY)
                        .ok_or("expected base64 of 1 to 32 bytes (latchkey keygen makes one)")?,
                )
            }
            "hmac_key" if !value.is_empty() && value.len() <= MAX_HMAC_KEY => {
                self.hmac = Some(value.as_bytes().to_vec())
            }
            "hmac_key" => return Err("expected a key of 1 to 136 bytes"),
            "hmac_key_base64" => {
                self.hmac = Some(
                    wire::decode_key(value, MAX_HMAC_KEY)
                        .ok_or("expected base64 of 1 to 136 bytes (latchkey keygen makes one)")?,
                )
            }
            "source" => self.source = Some(Net::parse_list(value)?),
            "destination" => self.destination = Net::parse_list(value)?,
            "open_ports" => {
                self.rules.open_ports =
                    Some(parse_ports(value).ok_or("expected a list like 'tcp/22, udp/53'")?)
            }
            "restrict_ports" => {
                self.rules.restrict_ports =
                    parse_ports(value).ok_or("expected a list like 'tcp/22, udp/53'")?
            }
            "require_source_address" => {
                self.require_source = Some(match value.to_ascii_lowercase().as_str() {
                    "yes" | "y" | "on" | "true" | "1" => true,
                    "no" | "n" | "off" | "false" | "0" => false,
                    _ => return Err("expected yes or no"),
                })
            }
            "require_username" if !value.is_empty() => self.rules.require_user = Some(value.into()),
            "max_timeout" => self.rules.max_timeout = seconds(value, 1 << 23)?.max(1),
            "max_packet_age" => {
                let a = seconds(value, 100_000)?;
                self.rules.max_age = (a > 0).then_some(a);
            }
            _ => return Err("expected a value"),
        }
        Ok(())
    }

    /// Notes `Cmd_Timeout`, which for an SPA door is the access time granted.
    pub(super) fn timeout(&mut self, secs: u32) {
        self.timeout = Some(secs);
    }

    /// Builds the door named `name` with the section's commands; the error says what is
    /// missing.
    pub(super) fn finish(
        self,
        name: &str,
        start: Option<&str>,
        stop: Option<&str>,
    ) -> Result<Door, &'static str> {
        let port = self
            .port
            .ok_or("has SPA keys but no SPA_Port; expected 'SPA_Port = 62201'")?;
        let (Some(key), Some(hmac)) = (self.key, self.hmac) else {
            return Err(
                "needs both an encryption key (Key or Key_Base64) and an HMAC key \
                        (HMAC_Key or HMAC_Key_Base64)",
            );
        };
        if key == hmac {
            return Err(
                "the encryption key and the HMAC key are identical; expected two \
                        different keys",
            );
        }
        let keys = Keys::new(&key, &hmac).ok_or("bad key length")?;
        let mut rules = self.rules;
        rules.require_source = self.require_source.unwrap_or(true);
        rules.timeout = self.timeout.unwrap_or(30).max(1);
        let action = match start.map(str::trim).filter(|s| !s.is_empty()) {
            Some(open) => Action::Commands {
                open: open.to_string(),
                close: stop
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from),
                style: Style::Knockd,
            },
            None if stop.is_some_and(|s| !s.trim().is_empty()) => {
                return Err(
                    "has a Stop_Command but no Start_Command; expected both, or \
                            neither for latchkey's own firewall rule",
                )
            }
            None => Action::Firewall,
        };
        Ok(Door {
            name: name.to_string(),
            ports: vec![port],
            source: self.source.unwrap_or_else(|| {
                vec![Net {
                    addr: std::net::IpAddr::from([0, 0, 0, 0]),
                    prefix: 0,
                }]
            }),
            destination: self.destination,
            keys,
            rules,
            action,
        })
    }
}
