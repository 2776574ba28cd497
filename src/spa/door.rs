//! An SPA door: where its packets come (UDP port, allowed sources and destinations), the
//! keys that authenticate and decrypt them, the [`Rules`] that decide the grant, and what
//! a grant does (commands, or latchkey's firewall rule).
//!
//! The same type serves an fwknop access.conf stanza and a knockd.conf SPA section; only
//! the command variables differ ([`Style`]). Pure: expansion takes the values as arguments.

use super::policy::{Grant, Rules};
use super::{Access, Keys};
use std::net::IpAddr;

/// An address and prefix length (`ANY` is `0.0.0.0/0`, which also matches IPv6 sources).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Net {
    /// Network address.
    pub addr: IpAddr,
    /// Prefix length, at most 32 (IPv4) or 128 (IPv6).
    pub prefix: u8,
}

impl Net {
    /// Whether `ip` lies in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        if self.prefix == 0 && self.addr.is_unspecified() {
            return true; // ANY
        }
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }

    /// Parses fwknop's list form: `ANY`, `a.b.c.d`, `a.b.c.d/nn`, `a.b.c.d/m.m.m.m`
    /// (IPv6 addresses and prefixes too), comma separated.
    pub fn parse_list(text: &str) -> Result<Vec<Net>, &'static str> {
        let mut out = Vec::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if item.eq_ignore_ascii_case("any") {
                out.push(Net {
                    addr: IpAddr::from([0, 0, 0, 0]),
                    prefix: 0,
                });
                continue;
            }
            let (a, p) = item.split_once('/').unwrap_or((item, ""));
            let addr: IpAddr = a
                .parse()
                .map_err(|_| "not an address; expected ANY, a.b.c.d[/nn] or an IPv6 address")?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let prefix = if p.is_empty() {
                max
            } else if let Some(n) = crate::config::number(p).filter(|&n| n <= 255) {
                n as u8
            } else if let Ok(std::net::IpAddr::V4(m)) = p.parse::<IpAddr>() {
                let m = u32::from(m);
                if m.leading_ones() + m.trailing_zeros() != 32 {
                    return Err("the netmask is not contiguous");
                }
                m.leading_ones() as u8
            } else {
                return Err("bad prefix; expected /nn or /m.m.m.m");
            };
            if prefix > max {
                return Err("prefix longer than the address");
            }
            out.push(Net { addr, prefix });
        }
        if out.is_empty() {
            return Err("empty address list; expected ANY or addresses");
        }
        Ok(out)
    }
}

/// Which variables a door's commands use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// fwknopd's `CMD_CYCLE_*`: `$IP $SRC $PKT_SRC $DST $PORT $PROTO $TIMEOUT $CLIENT_TIMEOUT`
    /// (only with the `fwknopd` feature, the only reader that makes such doors).
    #[cfg(feature = "fwknopd")]
    Fwknop,
    /// knockd.conf: `%IP% %PORT% %PROTO% %TIMEOUT%`.
    Knockd,
}

/// What a grant does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Run `open` for each requested port now and `close` (if any) when the grant ends.
    Commands {
        /// `CMD_CYCLE_OPEN` / `Start_Command`.
        open: String,
        /// `CMD_CYCLE_CLOSE` / `Stop_Command`; `None` for `NONE` or absent.
        close: Option<String>,
        /// Variable syntax.
        style: Style,
    },
    /// latchkey's own firewall rule for the address and port, through the first backend there
    /// is: the OpenWrt helper, iptables/ip6tables (an ACCEPT first in INPUT, deleted when the
    /// grant ends), or nft (a set element the kernel times out, deleted when the grant ends).
    Firewall,
}

/// One SPA door. Invariant (checked by the config readers): it has both keys, and a
/// command door has an open command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Door {
    /// Name in logs: the section name, or `stanza #N` for access.conf.
    pub name: String,
    /// UDP ports its packets are sent to.
    pub ports: Vec<u16>,
    /// Packet sources it serves (`SOURCE`).
    pub source: Vec<Net>,
    /// Packet destinations it serves (`DESTINATION`); empty: any.
    pub destination: Vec<Net>,
    /// Encryption and HMAC keys.
    pub keys: Keys,
    /// Grant decision.
    pub rules: Rules,
    /// What a grant does.
    pub action: Action,
}

/// The values a command's variables take for one port of a grant.
#[derive(Clone, Copy, Debug)]
pub struct Vars {
    /// Address let in.
    pub ip: IpAddr,
    /// Packet source.
    pub pkt_src: IpAddr,
    /// Packet destination.
    pub dst: IpAddr,
    /// This port of the request.
    pub access: Access,
    /// Seconds the grant lasts.
    pub timeout: u32,
    /// The packet's timestamp (fwknop's `$TIMEOUT` is `ts + timeout`).
    pub ts: i64,
}

impl Door {
    /// Whether a packet from `src` to `dst` arriving on UDP `port` is for this door.
    pub fn serves(&self, port: u16, src: IpAddr, dst: IpAddr) -> bool {
        self.ports.contains(&port)
            && self.source.iter().any(|n| n.contains(src))
            && (self.destination.is_empty() || self.destination.iter().any(|n| n.contains(dst)))
    }

    /// The (open, close) commands for one requested port of `g`, expanded.
    pub fn command(
        &self,
        g: &Grant,
        access: Access,
        pkt_src: IpAddr,
        dst: IpAddr,
        ts: i64,
    ) -> (String, Option<String>) {
        let v = Vars {
            ip: g.ip,
            pkt_src,
            dst,
            access,
            timeout: g.timeout,
            ts,
        };
        match &self.action {
            Action::Commands { open, close, style } => (
                expand(open, *style, &v),
                close.as_ref().map(|c| expand(c, *style, &v)),
            ),
            Action::Firewall => {
                let (open, close) = firewall(&v);
                (open, Some(close))
            }
        }
    }

    /// [`Door::command`] for every requested port of `g`, in order.
    pub fn commands(
        &self,
        g: &Grant,
        pkt_src: IpAddr,
        dst: IpAddr,
        ts: i64,
    ) -> Vec<(String, Option<String>)> {
        g.access
            .iter()
            .map(|&a| self.command(g, a, pkt_src, dst, ts))
            .collect()
    }
}

/// Substitutes the variables of `style` in `cmd`.
pub fn expand(cmd: &str, style: Style, v: &Vars) -> String {
    let ip = v.ip.to_string();
    let port = v.access.port.to_string();
    match style {
        #[cfg(feature = "fwknopd")]
        Style::Fwknop => cmd
            .replace("$PKT_SRC", &v.pkt_src.to_string())
            .replace("$CLIENT_TIMEOUT", &v.timeout.to_string())
            .replace(
                "$TIMEOUT",
                &v.ts.saturating_add(i64::from(v.timeout)).to_string(),
            )
            .replace("$IP", &ip)
            .replace("$SRC", &ip)
            .replace("$DST", &v.dst.to_string())
            .replace("$PORT", &port)
            .replace("$PROTO", &v.access.proto_number().to_string()),
        Style::Knockd => cmd
            .replace("%IP%", &ip)
            .replace("%PORT%", &port)
            .replace("%PROTO%", v.access.proto.name())
            .replace("%TIMEOUT%", &v.timeout.to_string()),
    }
}

pub use crate::config::OPENWRT_FW;

/// latchkey's nftables backend, for hosts with `nft` but no iptables: a POSIX sh script run
/// after `set -- open IP PROTO PORT SECONDS` or `set -- close IP PROTO PORT`. One line, as
/// the state file keeps a close command, and short, as the daemon logs it whole when it runs.
///
/// An `accept` in one table does not override a `drop` in another table's base chain at the
/// same hook, so the accept goes where the drop is: in every table (inet, and ip or ip6 by
/// the address) with an `input` base chain whose policy is drop, a set `latchkey4` or
/// `latchkey6` (address . protocol . port, with timeouts) and a rule first in each such chain
/// accepting what is in it. Without such a chain, the same in latchkey's own table
/// `inet latchkey` (chain `input`, priority filter - 1, policy accept). The set is created in
/// the same transaction as the rules, so of parallel starts only one inserts them; when the
/// set exists already (a table flushed by `flush table` keeps its sets), each chain is
/// checked for the rule. The element is then deleted and added again with the grant's timeout
/// in one transaction (an `add` keeps an existing element's timeout), and the kernel removes
/// it by itself when it expires, even if the daemon was killed. Closing deletes the element
/// from every `latchkey4`/`latchkey6` set (added then deleted in one transaction: no error when
/// it already timed out); it fails only when nft does.
#[cfg(feature = "own-firewall")]
pub(crate) const NFT: &str = "case $2 in *:*) f=6;; *) f=4;; esac; \
    command -v nft >/dev/null || { echo \"latchkey: cannot $1 $3/$4 for $2: no \
    /usr/share/latchkey/fw, iptables or nft\" >&2; exit 127; }; \
    e=\"$2 . $3 . $4\" s=${5:-} n=latchkey$f; \
    if [ $1 = close ]; then l=$(nft list sets) || exit 1; \
    S=$(echo \"$l\" | awk -v n=$n '$1==\"table\"{t=$2\" \"$3} $1==\"set\"&&$2==n{print t,n}'); \
    else l=$(nft list chains) || exit 1; \
    c=$(echo \"$l\" | awk -v a=ip${f#4} '$1==\"table\"{y=$2;t=$3} $1==\"chain\"{h=$2} \
    /hook input /&&/policy drop;/&&(y==\"inet\"||y==a){c[y\" \"t]=c[y\" \"t]\" \"h} \
    END{for(k in c)print k c[k]}'); \
    if [ -z \"$c\" ]; then echo \"add table inet latchkey; add chain inet latchkey input \
    { type filter hook input priority filter - 1; policy accept; }\" | nft -f - || exit 1; \
    c=\"inet latchkey input\"; fi; \
    R=\"ip${f#4} saddr . meta l4proto . th dport @$n accept\"; \
    echo \"$c\" | while read -r y t H; do \
    { echo \"create set $y $t $n { type ipv${f}_addr . inet_proto . inet_service; \
    flags timeout; }\"; \
    for h in $H; do echo \"insert rule $y $t $h $R\"; done; } | nft -f - 2>/dev/null || \
    for h in $H; do nft list chain $y $t $h | grep -q \"@$n \" || nft insert rule $y $t $h $R || \
    exit 1; done; done || exit 1; \
    S=$(echo \"$c\" | awk -v n=$n '{print $1,$2,n}'); fi; \
    [ -n \"$S\" ] || exit 0; \
    echo \"$S\" | while read -r t; do echo \"add element $t { $e }; delete element $t { $e }\"; \
    [ -z \"$s\" ] || echo \"add element $t { $e timeout ${s}s }\"; done | nft -f -";

/// latchkey's firewall rule for one port without the `own-firewall` feature (the OpenWrt
/// packages for mips/mipsel, which always install the helper): the helper's `open`/`close`.
#[cfg(not(feature = "own-firewall"))]
pub(super) fn firewall(v: &Vars) -> (String, String) {
    let (ip, proto, port) = (v.ip, v.access.proto.name(), v.access.port);
    (
        format!("exec {OPENWRT_FW} open {ip} {proto} {port} {}", v.timeout),
        format!("exec {OPENWRT_FW} close {ip} {proto} {port}"),
    )
}

/// latchkey's firewall rule for one port: open and close commands, `/bin/sh -c` snippets that
/// take the first backend there is. The OpenWrt helper when installed (its `open`/`close`: a
/// set element the kernel times out even if the daemon dies); else, when the command exists,
/// an iptables/ip6tables ACCEPT inserted first in INPUT (unless it is there already) and
/// deleted at the end; else nft ([`NFT`]: set elements with the kernel's timeout); else the
/// command fails (exit 127) with a message on stderr. Opening twice opens once, and renews
/// the kernel's timeout: the daemon runs it again when the grant is extended.
#[cfg(feature = "own-firewall")]
pub(super) fn firewall(v: &Vars) -> (String, String) {
    let tool = if v.ip.is_ipv6() {
        "ip6tables"
    } else {
        "iptables"
    };
    let (ip, proto, port) = (v.ip, v.access.proto.name(), v.access.port);
    let rule =
        format!("-s {ip} -p {proto} --dport {port} -m comment --comment latchkey-spa -j ACCEPT");
    let fw = OPENWRT_FW;
    let cmd = |op: &str, args: String, ipt: String| {
        format!(
            "if [ -x {fw} ]; then exec {fw} {op} {args}; fi; if command -v {tool} >/dev/null \
             2>&1; then {ipt}; fi; set -- {op} {args}; {NFT}"
        )
    };
    (
        cmd(
            "open",
            format!("{ip} {proto} {port} {}", v.timeout),
            format!(
                "set -- {rule}; {tool} -w -C INPUT \"$@\" 2>/dev/null || exec {tool} -w -I INPUT \
                 1 \"$@\"; exit 0"
            ),
        ),
        cmd(
            "close",
            format!("{ip} {proto} {port}"),
            format!("exec {tool} -w -D INPUT {rule}"),
        ),
    )
}
