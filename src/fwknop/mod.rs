//! fwknopd's own configuration, read unchanged: `fwknopd.conf` (daemon settings) and
//! `access.conf` (one stanza per `SOURCE` line), turned into SPA doors.
//!
//! Every variable is honoured, ignored with a `FILE:LINE` warning where ignoring it cannot
//! open more than the user meant, or refused with `FILE:LINE: why` where it could (GPG-only
//! stanzas, stanzas without an HMAC key, HMAC digests other than SHA-256, encryption modes
//! other than CBC, remote command execution, NAT). Refusals are errors: the daemon does not
//! start on a config it would serve differently from what it says.
//!
//! Pure: [`parse_conf`] and [`parse_access`] take the text; [`load`] reads the files.

use crate::config::ConfigError;
use crate::spa::door::{Action, Door, Net, Style};
use crate::spa::policy::{parse_ports, Rules};
use crate::spa::{wire, Keys, MAX_ENC_KEY, MAX_HMAC_KEY};
use std::path::{Path, PathBuf};

#[cfg(target_os = "linux")]
pub mod cli;
#[cfg(test)]
mod tests;

/// fwknopd's default config locations.
pub const DEFAULT_CONF: &str = "/etc/fwknop/fwknopd.conf";
/// Default access.conf.
pub const DEFAULT_ACCESS: &str = "/etc/fwknop/access.conf";
/// fwknopd's default SPA port (`udp port 62201`).
pub const DEFAULT_PORT: u16 = 62201;

/// What fwknopd.conf says that latchkey uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// `PCAP_INTF`.
    pub interface: Option<String>,
    /// UDP ports from `PCAP_FILTER` (or `UDPSERV_PORT` with `ENABLE_UDP_SERVER Y`).
    pub ports: Vec<u16>,
    /// `MAX_SPA_PACKET_AGE`, `None` with `ENABLE_SPA_PACKET_AGING N`.
    pub max_age: Option<u32>,
    /// Where the replay cache is kept; `None` with `ENABLE_DIGEST_PERSISTENCE N` (then it is
    /// in memory only).
    pub replay_file: Option<PathBuf>,
    /// `ACCESS_FILE`.
    pub access_file: Option<PathBuf>,
    /// `ACCESS_FOLDER`: every `*.conf` in it, in name order.
    pub access_folder: Option<PathBuf>,
    /// `SYSLOG_IDENTITY`.
    pub syslog_identity: String,
    /// `FWKNOP_PID_FILE`, else `FWKNOP_RUN_DIR/fwknopd.pid`.
    pub pid_file: PathBuf,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            interface: None,
            ports: vec![DEFAULT_PORT],
            max_age: Some(120),
            replay_file: Some(PathBuf::from("/var/run/fwknop/latchkey-replay.cache")),
            access_file: None,
            access_folder: None,
            syslog_identity: "fwknopd".into(),
            pid_file: PathBuf::from("/var/run/fwknop/fwknopd.pid"),
        }
    }
}

/// A whole fwknopd configuration as latchkey serves it.
#[derive(Clone, Debug)]
pub struct Fwknopd {
    /// fwknopd.conf's settings.
    pub settings: Settings,
    /// One door per access.conf stanza, in file order.
    pub doors: Vec<Door>,
    /// Things ignored, each naming its file and line.
    pub warnings: Vec<ConfigError>,
}

struct Report<'a> {
    file: &'a Path,
    errors: Vec<ConfigError>,
    warnings: Vec<ConfigError>,
}

impl Report<'_> {
    fn error(&mut self, line: usize, message: String) {
        self.errors.push(ConfigError {
            file: self.file.to_path_buf(),
            line,
            message,
        });
    }
    fn warn(&mut self, line: usize, message: String) {
        self.warnings.push(ConfigError {
            file: self.file.to_path_buf(),
            line,
            message,
        });
    }
}

/// Splits `NAME value` / `NAME: value` lines; the value ends at `;` (as fwknopd reads it).
fn lines(text: &str) -> impl Iterator<Item = (usize, &str, &str)> {
    text.lines().enumerate().filter_map(|(i, raw)| {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            return None;
        }
        let (name, value) = line
            .split_once(|c: char| c.is_ascii_whitespace())
            .unwrap_or((line, ""));
        let name = name.strip_suffix(':').unwrap_or(name);
        let value = value.split(';').next().unwrap_or("").trim();
        Some((i + 1, name, value))
    })
}

fn yes(value: &str) -> Option<bool> {
    match value.to_ascii_uppercase().as_str() {
        "Y" | "YES" | "1" => Some(true),
        "N" | "NO" | "0" => Some(false),
        _ => None,
    }
}

fn number(value: &str, max: u32) -> Result<u32, String> {
    value
        .parse::<u32>()
        .ok()
        .filter(|&n| n <= max)
        .ok_or_else(|| format!("'{value}': expected a whole number from 0 to {max}"))
}

/// Reads the UDP ports of a simple pcap filter: `[udp] [dst] port N [or …]`. TCP
/// alternatives are dropped with a warning (SPA over TCP is not served); anything else
/// would restrict what fwknopd sees in a way latchkey cannot honour, so it is refused.
fn filter_ports(value: &str) -> Result<(Vec<u16>, bool), String> {
    let lower = value.to_ascii_lowercase();
    let words: Vec<&str> = lower.split_ascii_whitespace().collect();
    let mut ports = Vec::new();
    let mut tcp = false;
    for alt in words.split(|w| *w == "or") {
        let (proto, rest) = match alt {
            ["udp", rest @ ..] => ("udp", rest),
            ["tcp", rest @ ..] => ("tcp", rest),
            rest => ("any", rest),
        };
        let rest = rest.strip_prefix(&["dst"]).unwrap_or(rest);
        let port = match rest {
            ["port", n] => n.parse::<u16>().ok().filter(|&p| p > 0),
            _ => None,
        };
        let Some(port) = port else {
            return Err(format!(
                "PCAP_FILTER '{value}' is not understood; latchkey reads only \
                 'udp [dst] port N [or udp port M ...]' (it captures UDP to those ports itself)"
            ));
        };
        if proto != "tcp" && !ports.contains(&port) {
            ports.push(port);
        }
        tcp |= proto != "udp";
    }
    if ports.is_empty() {
        return Err(format!(
            "PCAP_FILTER '{value}' names no UDP port; latchkey serves SPA over UDP only"
        ));
    }
    Ok((ports, tcp))
}

/// Variables of fwknopd.conf that only change how fwknopd does its own plumbing (capture,
/// iptables chains, NAT, HTTP/TCP transports, logging details): ignored with a warning.
const CONF_IGNORED: &[&str] = &[
    "ENABLE_PCAP_PROMISC",
    "ENABLE_PCAP_ANY_DIRECTION",
    "PCAP_DISPATCH_COUNT",
    "PCAP_LOOP_SLEEP",
    "ENABLE_TCP_SERVER",
    "TCPSERV_PORT",
    "ENABLE_SPA_OVER_HTTP",
    "ENABLE_X_FORWARDED_FOR",
    "ALLOW_ANY_USER_AGENT",
    "ENABLE_IPT_FORWARDING",
    "ENABLE_IPT_LOCAL_NAT",
    "ENABLE_IPT_SNAT",
    "SNAT_TRANSLATE_IP",
    "ENABLE_NAT_DNS",
    "ENABLE_IPT_OUTPUT",
    "ENABLE_IPT_COMMENT_CHECK",
    "ENABLE_RULE_PREPEND",
    "RULES_CHECK_THRESHOLD",
    "ENABLE_DESTINATION_RULE",
    "FLUSH_IPT_AT_INIT",
    "FLUSH_IPT_AT_EXIT",
    "IPT_INPUT_ACCESS",
    "IPT_OUTPUT_ACCESS",
    "IPT_FORWARD_ACCESS",
    "IPT_DNAT_ACCESS",
    "IPT_SNAT_ACCESS",
    "IPT_MASQUERADE_ACCESS",
    "FIREWALL_EXE",
    "FIREWD_DISABLE_CHECK_SUPPORT",
    "IPT_DISABLE_CHECK_SUPPORT",
    "CMD_EXEC_TIMEOUT",
    "SYSLOG_FACILITY",
    "LOCALE",
    "EXIT_AT_INTF_DOWN",
    "ENABLE_NFQ_CAPTURE",
    "NFQ_INTERFACE",
    "NFQ_PORT",
    "NFQ_TABLE",
    "NFQ_CHAIN",
    "NFQ_QUEUE_NUMBER",
    "NFQ_LOOP_SLEEP",
    "GPG_HOME_DIR",
    "GPG_EXE",
    "SUDO_EXE",
    "VERBOSE",
    "FWKNOP_CONF_DIR",
    "ENABLE_EXTERNAL_CMDS",
    "EXTERNAL_CMD_OPEN",
    "EXTERNAL_CMD_CLOSE",
    "EXTERNAL_CMD_ALARM",
    "MAX_SNIFF_BYTES",
];

/// Parses fwknopd.conf text read from `file`.
pub fn parse_conf(
    file: &Path,
    text: &str,
) -> Result<(Settings, Vec<ConfigError>), Vec<ConfigError>> {
    let mut r = Report {
        file,
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let mut s = Settings::default();
    let mut run_dir = PathBuf::from("/var/run/fwknop");
    let mut digest_file: Option<String> = None;
    let mut persist = true;
    let mut aging = true;
    let mut age = 120;
    let (mut udp_server, mut udp_port) = (false, None);
    let mut filter: Option<(usize, Vec<u16>)> = None;
    let mut pid_file: Option<String> = None;
    for (n, name, value) in lines(text) {
        let upper = name.to_ascii_uppercase();
        let bad = |what: &str| format!("{name} '{value}': expected {what}");
        match upper.as_str() {
            "PCAP_INTF" if !value.is_empty() => s.interface = Some(value.to_string()),
            "PCAP_FILTER" => match filter_ports(value) {
                Ok((ports, tcp)) => {
                    if tcp {
                        r.warn(
                            n,
                            format!("{name}: TCP ports ignored; SPA over TCP is not served"),
                        );
                    }
                    filter = Some((n, ports));
                }
                Err(e) => r.error(n, e),
            },
            "ENABLE_UDP_SERVER" => match yes(value) {
                Some(b) => udp_server = b,
                None => r.error(n, bad("Y or N")),
            },
            "UDPSERV_PORT" => match value.parse::<u16>() {
                Ok(p) if p > 0 => udp_port = Some(p),
                _ => r.error(n, bad("a port from 1 to 65535")),
            },
            "ENABLE_SPA_PACKET_AGING" => match yes(value) {
                Some(b) => aging = b,
                None => r.error(n, bad("Y or N")),
            },
            "MAX_SPA_PACKET_AGE" => match number(value, 100_000) {
                Ok(a) => age = a,
                Err(e) => r.error(n, format!("{name}: {e}")),
            },
            "ENABLE_DIGEST_PERSISTENCE" => match yes(value) {
                Some(b) => persist = b,
                None => r.error(n, bad("Y or N")),
            },
            "FWKNOP_RUN_DIR" if !value.is_empty() => run_dir = PathBuf::from(value),
            "DIGEST_FILE" | "DIGEST_DB_FILE" if !value.is_empty() => {
                digest_file = Some(value.to_string())
            }
            "ACCESS_FILE" if !value.is_empty() => s.access_file = Some(PathBuf::from(value)),
            "ACCESS_FOLDER" if !value.is_empty() => s.access_folder = Some(PathBuf::from(value)),
            "SYSLOG_IDENTITY" if !value.is_empty() => s.syslog_identity = value.to_string(),
            "FWKNOP_PID_FILE" if !value.is_empty() => pid_file = Some(value.to_string()),
            _ if CONF_IGNORED.contains(&upper.as_str()) => r.warn(
                n,
                format!("{name}: ignored (fwknopd's own plumbing; latchkey has its own)"),
            ),
            _ => r.warn(
                n,
                format!("{name}: unknown variable, ignored (fwknopd ignores it too)"),
            ),
        }
    }
    if udp_server {
        s.ports = vec![udp_port.unwrap_or(DEFAULT_PORT)];
    } else if let Some((_, ports)) = filter {
        s.ports = ports;
    }
    s.max_age = aging.then_some(age);
    let run = run_dir.to_string_lossy().to_string();
    s.pid_file = pid_file
        .map(|p| PathBuf::from(p.replace("$FWKNOP_RUN_DIR", &run)))
        .unwrap_or_else(|| run_dir.join("fwknopd.pid"));
    s.replay_file = persist.then(|| {
        // Our own file beside fwknopd's digest cache: the format differs, so fwknopd's own
        // file is never overwritten.
        let digest = digest_file
            .map(|d| PathBuf::from(d.replace("$FWKNOP_RUN_DIR", &run_dir.to_string_lossy())))
            .unwrap_or_else(|| run_dir.join("digest.cache"));
        digest.with_file_name("latchkey-replay.cache")
    });
    if r.errors.is_empty() {
        Ok((s, r.warnings))
    } else {
        Err(r.errors)
    }
}

/// A stanza while it is read.
#[derive(Default)]
struct Draft {
    line: usize,
    source: Vec<Net>,
    destination: Vec<Net>,
    key: Option<Vec<u8>>,
    hmac: Option<Vec<u8>>,
    gpg: Option<usize>,
    rules: Rules,
    require_source_set: bool,
    open: Option<String>,
    close: Option<String>,
    timer: Option<u32>,
    fw_timeout: Option<u32>,
}

/// access.conf variables that only matter for features latchkey does not serve, and whose
/// absence cannot open more: ignored with a warning.
const ACCESS_IGNORED: &[&str] = &[
    "CMD_EXEC_USER",
    "CMD_EXEC_GROUP",
    "CMD_SUDO_EXEC_USER",
    "CMD_SUDO_EXEC_GROUP",
    "GPG_HOME_DIR",
    "GPG_EXE",
    "GPG_DECRYPT_ID",
    "GPG_DECRYPT_PW",
    "GPG_ALLOW_NO_PW",
    "GPG_REQUIRE_SIG",
    "GPG_DISABLE_SIG",
    "GPG_IGNORE_SIG_VERIFY_ERROR",
    "GPG_REMOTE_ID",
    "GPG_FINGERPRINT_ID",
    "KEYTYPE",
    "HKEYTYPE",
];

/// Variables that would grant something latchkey never does (remote commands, NAT): a
/// stanza that sets them is refused rather than silently served differently.
const ACCESS_REFUSED: &[(&str, &str)] = &[
    (
        "ENABLE_CMD_EXEC",
        "SPA command messages (remote commands) are never run",
    ),
    (
        "ENABLE_CMD_SUDO_EXEC",
        "SPA command messages (remote commands) are never run",
    ),
    ("FORCE_NAT", "NAT access is not supported"),
    ("FORCE_SNAT", "NAT access is not supported"),
    ("FORCE_MASQUERADE", "NAT access is not supported"),
    ("DISABLE_DNAT", "NAT access is not supported"),
    ("FORWARD_ALL", "NAT access is not supported"),
];

/// fwknop's `MM/DD/YYYY`, as the end of that day (UTC), unix seconds.
fn expire_date(value: &str) -> Option<i64> {
    let mut it = value.split('/');
    let m: i64 = it.next()?.parse().ok()?;
    let d: i64 = it.next()?.parse().ok()?;
    let y: i64 = it.next()?.parse().ok()?;
    if it.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&d) || y < 1970 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + 86_399)
}

impl Report<'_> {
    fn stanza_var(&mut self, d: &mut Draft, n: usize, name: &str, value: &str) {
        let upper = name.to_ascii_uppercase();
        let bad = |what: &str| format!("{name} '{value}': expected {what}");
        if value == "__CHANGEME__" {
            self.error(n, format!("{name} is still the placeholder __CHANGEME__; set a real key (latchkey keygen or fwknop --key-gen makes one)"));
            return;
        }
        match upper.as_str() {
            "DESTINATION" => match Net::parse_list(value) {
                Ok(l) => d.destination = l,
                Err(e) => self.error(n, format!("{name} '{value}': {e}")),
            },
            "KEY" if !value.is_empty() && value.len() <= MAX_ENC_KEY => {
                d.key = Some(value.as_bytes().to_vec())
            }
            "KEY_BASE64" => match wire::decode_key(value, MAX_ENC_KEY) {
                Some(k) => d.key = Some(k),
                None => self.error(n, bad("base64 of 1 to 32 bytes")),
            },
            "KEY" => self.error(n, bad("a passphrase of 1 to 32 bytes")),
            "HMAC_KEY" if !value.is_empty() && value.len() <= MAX_HMAC_KEY => {
                d.hmac = Some(value.as_bytes().to_vec())
            }
            "HMAC_KEY" => self.error(n, bad("a key of 1 to 136 bytes")),
            "HMAC_KEY_BASE64" => match wire::decode_key(value, MAX_HMAC_KEY) {
                Some(k) => d.hmac = Some(k),
                None => self.error(n, bad("base64 of 1 to 136 bytes")),
            },
            "HMAC_DIGEST_TYPE" => {
                if !value.eq_ignore_ascii_case("sha256") {
                    self.error(n, format!("{name} {value}: only SHA256 is supported; MD5, SHA1, SHA384, SHA512, SHA3_256 and SHA3_512 are refused"));
                }
            }
            "ENCRYPTION_MODE" => {
                if !value.eq_ignore_ascii_case("cbc") {
                    self.error(n, format!("{name} {value}: only CBC (fwknop's default) is supported; legacy, ECB, CFB, OFB, CTR and asymmetric (GPG) are refused"));
                }
            }
            "OPEN_PORTS" => match parse_ports(value) {
                Some(p) => d.rules.open_ports = Some(p),
                None => self.error(n, bad("a list like 'tcp/22, udp/53'")),
            },
            "RESTRICT_PORTS" => match parse_ports(value) {
                Some(p) => d.rules.restrict_ports = p,
                None => self.error(n, bad("a list like 'tcp/22, udp/53'")),
            },
            "FW_ACCESS_TIMEOUT" => match number(value, 2 << 22) {
                Ok(t) if t > 0 => d.fw_timeout = Some(t),
                _ => self.error(n, bad("seconds from 1 to 8388608")),
            },
            "MAX_FW_TIMEOUT" => match number(value, 2 << 22) {
                Ok(t) if t > 0 => d.rules.max_timeout = t,
                _ => self.error(n, bad("seconds from 1 to 8388608")),
            },
            "REQUIRE_SOURCE_ADDRESS" | "REQUIRE_SOURCE" => match yes(value) {
                Some(b) => {
                    d.rules.require_source = b;
                    d.require_source_set = true;
                }
                None => self.error(n, bad("Y or N")),
            },
            "REQUIRE_USERNAME" if !value.is_empty() => d.rules.require_user = Some(value.into()),
            "CMD_CYCLE_OPEN" if !value.is_empty() => d.open = Some(value.into()),
            "CMD_CYCLE_CLOSE" if !value.is_empty() => d.close = Some(value.into()),
            "CMD_CYCLE_TIMER" => match number(value, 2 << 22) {
                Ok(t) if t > 0 => d.timer = Some(t),
                _ => self.error(n, bad("seconds from 1 to 8388608")),
            },
            "ACCESS_EXPIRE" => match expire_date(value) {
                Some(t) => d.rules.expires = Some(t),
                None => self.error(n, bad("a date MM/DD/YYYY")),
            },
            "ACCESS_EXPIRE_EPOCH" => match value.parse::<i64>() {
                Ok(t) => d.rules.expires = Some(t),
                Err(_) => self.error(n, bad("unix seconds")),
            },
            _ if upper.starts_with("GPG_") => {
                d.gpg.get_or_insert(n);
                self.warn(n, format!("{name}: GnuPG is not supported; ignored"));
            }
            _ if ACCESS_IGNORED.contains(&upper.as_str()) => {
                self.warn(n, format!("{name}: ignored (not used by latchkey)"))
            }
            _ => {
                if let Some((_, why)) = ACCESS_REFUSED.iter().find(|(v, _)| *v == upper) {
                    if yes(value) != Some(false) {
                        self.error(n, format!("{name} {value}: refused; {why}"));
                    }
                } else {
                    self.warn(
                        n,
                        format!(
                            "{name}: unknown access variable, ignored (fwknopd ignores it too)"
                        ),
                    );
                }
            }
        }
    }

    fn finish(&mut self, d: Draft, index: usize, s: &Settings, doors: &mut Vec<Door>) {
        let n = d.line;
        let (Some(key), Some(hmac)) = (d.key.clone(), d.hmac.clone()) else {
            if d.key.is_none() && d.gpg.is_some() {
                self.error(n, "stanza uses GnuPG only (no KEY/KEY_BASE64): GPG stanzas are not supported; latchkey serves Rijndael with HMAC-SHA256".into());
            } else if d.key.is_none() {
                self.error(
                    n,
                    "stanza has no KEY or KEY_BASE64; expected an encryption key".into(),
                );
            } else {
                self.error(n, "stanza has no HMAC_KEY or HMAC_KEY_BASE64: fwknopd would accept unauthenticated packets, latchkey requires an HMAC key".into());
            }
            return;
        };
        if key == hmac {
            self.error(
                n,
                "the encryption key and the HMAC key are identical; expected two different keys"
                    .into(),
            );
            return;
        }
        let Some(keys) = Keys::new(&key, &hmac) else {
            return;
        };
        let mut rules = d.rules;
        rules.max_age = s.max_age;
        let action = match (d.open, d.close) {
            (Some(open), Some(close)) => {
                let close = (!close.eq_ignore_ascii_case("NONE")).then_some(close);
                if close.is_some() && d.timer.is_none() {
                    self.error(n, "CMD_CYCLE_CLOSE without CMD_CYCLE_TIMER; expected the seconds until the close command runs (or CMD_CYCLE_CLOSE NONE)".into());
                    return;
                }
                rules.timeout = d.timer.unwrap_or(30);
                Action::Commands {
                    open,
                    close,
                    style: Style::Fwknop,
                }
            }
            (Some(_), None) => {
                self.error(n, "CMD_CYCLE_OPEN without CMD_CYCLE_CLOSE; expected a close command or CMD_CYCLE_CLOSE NONE".into());
                return;
            }
            (None, Some(_)) => {
                self.error(n, "CMD_CYCLE_CLOSE without CMD_CYCLE_OPEN".into());
                return;
            }
            (None, None) => {
                rules.timeout = d.fw_timeout.unwrap_or(30);
                Action::Firewall
            }
        };
        if !d.require_source_set {
            self.warn(n, "REQUIRE_SOURCE_ADDRESS not set: a packet asking for 0.0.0.0 opens for its source address (fwknop's default)".into());
        }
        doors.push(Door {
            name: format!("stanza #{index}"),
            ports: s.ports.clone(),
            source: d.source,
            destination: d.destination,
            keys,
            rules,
            action,
        });
    }
}

/// Parses access.conf text read from `file`, with fwknopd.conf's `settings`. `%include`
/// and `%include_folder` are followed through `read` (depth ≤ 3).
pub fn parse_access(
    file: &Path,
    text: &str,
    settings: &Settings,
    read: &dyn Fn(&Path) -> std::io::Result<String>,
) -> Result<(Vec<Door>, Vec<ConfigError>), Vec<ConfigError>> {
    let (doors, errors, warnings) = parse_access_all(file, text, settings, read);
    if errors.is_empty() {
        Ok((doors, warnings))
    } else {
        Err(errors)
    }
}

/// The stanzas that are valid, every error and every warning (tests use the valid ones of
/// a file that also has refused stanzas).
pub(crate) fn parse_access_all(
    file: &Path,
    text: &str,
    settings: &Settings,
    read: &dyn Fn(&Path) -> std::io::Result<String>,
) -> (Vec<Door>, Vec<ConfigError>, Vec<ConfigError>) {
    let mut doors = Vec::new();
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    parse_access_into(
        file,
        text,
        settings,
        read,
        0,
        &mut doors,
        &mut errors,
        &mut warnings,
    );
    (doors, errors, warnings)
}

#[allow(clippy::too_many_arguments)]
fn parse_access_into(
    file: &Path,
    text: &str,
    settings: &Settings,
    read: &dyn Fn(&Path) -> std::io::Result<String>,
    depth: usize,
    doors: &mut Vec<Door>,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<ConfigError>,
) {
    let mut r = Report {
        file,
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let mut draft: Option<Draft> = None;
    let include = |r: &mut Report, n: usize, path: PathBuf, doors: &mut Vec<Door>| {
        if depth >= 3 {
            r.error(
                n,
                "includes nested deeper than 3; expected at most 3 levels".into(),
            );
            return;
        }
        match read(&path) {
            Ok(t) => parse_access_into(
                &path,
                &t,
                settings,
                read,
                depth + 1,
                doors,
                &mut r.errors,
                &mut r.warnings,
            ),
            Err(e) => r.error(n, format!("cannot read {}: {e}", path.display())),
        }
    };
    for (n, name, value) in lines(text) {
        let upper = name.to_ascii_uppercase();
        match upper.as_str() {
            "SOURCE" => {
                if let Some(d) = draft.take() {
                    let i = doors.len() + 1;
                    r.finish(d, i, settings, doors);
                }
                match Net::parse_list(value) {
                    Ok(source) => {
                        draft = Some(Draft {
                            line: n,
                            source,
                            ..Draft::default()
                        })
                    }
                    Err(e) => r.error(n, format!("SOURCE '{value}': {e}")),
                }
            }
            "%INCLUDE" | "%INCLUDE_FOLDER" => {
                if let Some(d) = draft.take() {
                    let i = doors.len() + 1;
                    r.finish(d, i, settings, doors);
                }
                let path = match file.parent() {
                    Some(dir) if Path::new(value).is_relative() => dir.join(value),
                    _ => PathBuf::from(value),
                };
                if upper == "%INCLUDE" {
                    include(&mut r, n, path, doors);
                } else {
                    match std::fs::read_dir(&path) {
                        Ok(rd) => {
                            let mut files: Vec<PathBuf> = rd
                                .flatten()
                                .map(|e| e.path())
                                .filter(|p| p.extension().is_some_and(|x| x == "conf"))
                                .collect();
                            files.sort();
                            for f in files {
                                include(&mut r, n, f, doors);
                            }
                        }
                        Err(e) => r.error(n, format!("cannot read folder {}: {e}", path.display())),
                    }
                }
            }
            "%INCLUDE_KEYS" => r.error(
                n,
                "%include_keys is not supported; put the keys in the stanza or use %include".into(),
            ),
            _ => match draft.as_mut() {
                Some(d) => r.stanza_var(d, n, name, value),
                None => r.warn(
                    n,
                    format!("{name}: outside any stanza (before the first SOURCE line), ignored"),
                ),
            },
        }
    }
    if let Some(d) = draft.take() {
        let i = doors.len() + 1;
        r.finish(d, i, settings, doors);
    }
    errors.append(&mut r.errors);
    warnings.append(&mut r.warnings);
}

/// Reads fwknopd.conf at `conf` (a missing default file means fwknopd's defaults) and the
/// access file (`access` from `-a`, else `ACCESS_FILE`/`ACCESS_FOLDER`, else the default).
pub fn load(conf: &Path, access: Option<&Path>) -> Result<Fwknopd, Vec<ConfigError>> {
    let read = |p: &Path| std::fs::read_to_string(p);
    let io_error = |p: &Path, e: std::io::Error| {
        vec![ConfigError {
            file: p.to_path_buf(),
            line: 0,
            message: format!("cannot read: {e}"),
        }]
    };
    let (settings, mut warnings) = match read(conf) {
        Ok(t) => parse_conf(conf, &t)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && conf == Path::new(DEFAULT_CONF) => {
            (Settings::default(), Vec::new())
        }
        Err(e) => return Err(io_error(conf, e)),
    };
    let mut doors = Vec::new();
    let mut files = Vec::new();
    match (access, &settings.access_folder, &settings.access_file) {
        (Some(a), _, _) => files.push(a.to_path_buf()),
        (None, Some(dir), _) => {
            let rd = std::fs::read_dir(dir).map_err(|e| io_error(dir, e))?;
            let mut v: Vec<PathBuf> = rd
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "conf"))
                .collect();
            v.sort();
            files = v;
        }
        (None, None, Some(f)) => files.push(f.clone()),
        (None, None, None) => files.push(PathBuf::from(DEFAULT_ACCESS)),
    }
    let mut errors = Vec::new();
    for f in &files {
        let text = read(f).map_err(|e| io_error(f, e))?;
        match parse_access(f, &text, &settings, &read) {
            Ok((mut d, mut w)) => {
                doors.append(&mut d);
                warnings.append(&mut w);
            }
            Err(mut e) => errors.append(&mut e),
        }
    }
    if doors.is_empty() && errors.is_empty() {
        errors.push(ConfigError {
            file: files.first().cloned().unwrap_or_default(),
            line: 0,
            message: "no access stanza; expected at least one SOURCE line".into(),
        });
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    // Number stanzas across files, as fwknopd does.
    for (i, d) in doors.iter_mut().enumerate() {
        d.name = format!("stanza #{}", i + 1);
    }
    Ok(Fwknopd {
        settings,
        doors,
        warnings,
    })
}

/// Reads the fwknopd configuration as a latchkey [`crate::config::Config`]: no knock doors,
/// one SPA door per stanza, fwknopd.conf's interface and replay file. Warnings are logged.
pub fn config(
    conf: &Path,
    access: Option<&Path>,
) -> Result<crate::config::Config, Vec<ConfigError>> {
    let f = load(conf, access)?;
    for w in &f.warnings {
        log::warn!("{w}");
    }
    let options = crate::config::Options {
        interfaces: f.settings.interface.iter().cloned().collect(),
        pid_file: f.settings.pid_file.clone(),
        spa_replay_file: f.settings.replay_file.clone(),
        ..Default::default()
    };
    Ok(crate::config::Config {
        path: conf.to_path_buf(),
        options,
        doors: Vec::new().into(),
        spa: f.doors.into_iter().map(std::rc::Rc::new).collect(),
    })
}
