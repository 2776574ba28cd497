//! fwknopd.conf: the daemon's settings (interface, SPA port, run directory, replay cache,
//! packet age), each variable honoured, ignored with a warning, or refused.

use super::*;

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
