//! The daemon's configuration: knockd's file format, read unchanged, plus a few `[options]`
//! of our own for the deliberate differences and the table sizes.
//!
//! Invariants: a [`Config`] that exists is valid. Every door has a sequence of 1..=32 steps
//! whose ports are 1..=65535, a positive `seq_timeout`, and, if it has a `Target`, a parsed
//! address. Problems are reported as [`ConfigError`]s naming the file and line.

mod onetime;
mod parse;
mod spa;

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

pub use onetime::{mark_used, OneTime};
pub use parse::{parse, parse_sequence};

/// The most knocks a sequence may have (knockd's limit).
pub const MAX_STEPS: usize = 32;

/// Transport protocol of one knock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Proto {
    /// A TCP segment (by default a SYN, see [`TcpFlags`]).
    Tcp,
    /// A UDP datagram.
    Udp,
}

impl Proto {
    /// The name knockd uses in sequences and logs.
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// One knock of a sequence: a protocol and a destination port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Step {
    /// Protocol the knock must use.
    pub proto: Proto,
    /// Destination port, never 0.
    pub port: u16,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.port, self.proto.name())
    }
}

/// A knock sequence: fixed capacity, never allocates.
pub type Sequence = heapless::Vec<Step, MAX_STEPS>;

/// TCP flag bits as they sit in byte 13 of the TCP header.
pub mod flag {
    /// FIN
    pub const FIN: u8 = 0x01;
    /// SYN
    pub const SYN: u8 = 0x02;
    /// RST
    pub const RST: u8 = 0x04;
    /// PSH
    pub const PSH: u8 = 0x08;
    /// ACK
    pub const ACK: u8 = 0x10;
    /// URG
    pub const URG: u8 = 0x20;
    /// Names in knockd's order, for parsing and printing.
    pub const NAMES: [(&str, u8); 6] = [
        ("fin", FIN),
        ("syn", SYN),
        ("rst", RST),
        ("psh", PSH),
        ("ack", ACK),
        ("urg", URG),
    ];
}

/// knockd's `TCPFlags`: bits that must be set and bits that must be clear. A TCP packet that
/// fails the test is not a knock at all for that door: it neither advances nor resets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpFlags {
    /// Flags listed plainly (`syn`).
    pub set: u8,
    /// Flags listed with `!` (`!ack`).
    pub clear: u8,
}

impl TcpFlags {
    /// Whether a TCP header's flag byte passes this door's test.
    pub fn matches(self, flags: u8) -> bool {
        flags & self.set == self.set && flags & self.clear == 0
    }
}

impl fmt::Display for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (name, bit) in flag::NAMES {
            for (mask, bang) in [(self.set, ""), (self.clear, "!")] {
                if mask & bit != 0 {
                    write!(f, "{}{bang}{name}", if first { "" } else { "," })?;
                    first = false;
                }
            }
        }
        if first {
            f.write_str("any")?;
        }
        Ok(())
    }
}

/// The OpenWrt package's firewall helper (fw4 set elements with their own timeout, or
/// iptables + ipset on fw3): UCI doors and the SPA firewall action open through it.
pub const OPENWRT_FW: &str = "/usr/share/latchkey/fw";

/// Whether `cmd` opens through [`OPENWRT_FW`] (`.../fw open IP PROTO PORT SECONDS`): what it
/// opens has a timeout in the kernel, see [`Door::refreshes`].
fn calls_fw_open(cmd: &str) -> bool {
    cmd.match_indices(OPENWRT_FW)
        .any(|(i, _)| cmd[i + OPENWRT_FW.len()..].starts_with(" open "))
}

/// A command as given in the config: absent (fall back, for the `_6` variants), or text that
/// may be empty (empty disables).
pub type Command = Option<String>;

/// One `[section]` other than `[options]`: a door that opens for a knock sequence.
#[derive(Clone, Debug, PartialEq)]
pub struct Door {
    /// Section name, as logged ("openSSH").
    pub name: String,
    /// The live sequence (for one-time doors, the current line of the file; empty when the
    /// file is used up, and then the door is closed for good).
    pub sequence: Sequence,
    /// `One_Time_Sequences` file, if the door uses one.
    pub one_time: Option<OneTime>,
    /// Time allowed for the whole sequence, from the first knock.
    pub seq_timeout: Duration,
    /// Time between the start command and the stop command.
    pub cmd_timeout: Duration,
    /// `Start_Command` (alias `Command`).
    pub start: Command,
    /// `Start_Command_6` (alias `Command_6`), for IPv6 knockers.
    pub start6: Command,
    /// `Stop_Command`.
    pub stop: Command,
    /// `Stop_Command_6`.
    pub stop6: Command,
    /// `TCPFlags`.
    pub flags: TcpFlags,
    /// `Target`: knocks count only when sent to this address instead of the interface's own.
    pub target: Option<IpAddr>,
}

impl Door {
    /// The start command for a knocker of this address family, if any (empty disables).
    pub fn start_for(&self, ip: IpAddr) -> Option<&str> {
        Self::pick(ip, &self.start, &self.start6)
    }

    /// The stop command for a knocker of this address family, if any.
    pub fn stop_for(&self, ip: IpAddr) -> Option<&str> {
        Self::pick(ip, &self.stop, &self.stop6)
    }

    fn pick<'a>(ip: IpAddr, v4: &'a Command, v6: &'a Command) -> Option<&'a str> {
        let cmd = match (ip, v6) {
            (IpAddr::V6(_), Some(c)) => c,
            _ => v4.as_ref()?,
        };
        (!cmd.trim().is_empty()).then_some(cmd.as_str())
    }

    /// Whether a grant of `self` and one of `other` are the same grant for a knocker: the same
    /// door name with the same commands, so extending one stands for running the other. (A
    /// reloaded, unchanged door still finds its grants; a one-time door that moved to its
    /// next sequence too.) Start commands through the firewall helper may differ (an SPA
    /// packet's own timeout), or `self` may have none (a grant taken over from the state
    /// file): such a grant is extended by running `other`'s.
    pub fn same_grant(&self, other: &Door) -> bool {
        let fw = |c: &Command| c.as_deref().is_some_and(calls_fw_open);
        let same = |a: &Command, b: &Command| a == b || fw(b) && (a.is_none() || fw(a));
        self.name == other.name
            && same(&self.start, &other.start)
            && same(&self.start6, &other.start6)
            && self.stop == other.stop
            && self.stop6 == other.stop6
    }

    /// Whether the start command for `ip` calls the OpenWrt package's firewall helper
    /// (its `open`, as UCI doors and the SPA firewall action do): what it opens has a timeout
    /// in the kernel, and running it again (it is idempotent) renews that timeout.
    pub fn refreshes(&self, ip: IpAddr) -> bool {
        self.start_for(ip).is_some_and(calls_fw_open)
    }

    /// Whether a knock attempt on `self` may carry on on `other` after a reload: the same
    /// door with the same sequence and matching rules.
    pub fn same_sequence(&self, other: &Door) -> bool {
        self.name == other.name
            && self.sequence == other.sequence
            && self.seq_timeout == other.seq_timeout
            && self.flags == other.flags
            && self.target == other.target
    }

    /// Whether the door can still be opened (a used-up one-time door cannot).
    pub fn is_live(&self) -> bool {
        !self.sequence.is_empty()
    }
}

/// `[options]`: knockd's own keys plus ours.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// `UseSyslog`
    pub use_syslog: bool,
    /// `LogFile`
    pub log_file: Option<PathBuf>,
    /// `PidFile` (knockd's default `/var/run/knockd.pid`).
    pub pid_file: PathBuf,
    /// `Interface`: one name, or several separated by commas (the command line's `-i` wins);
    /// empty when not given. Each name is a valid interface name (1 to 15 bytes, no `/`,
    /// `:`, `,` or white space).
    pub interfaces: Vec<String>,
    /// `SweepGuard`: TCP probes without ACK to ports near a door's ports, from a source that
    /// is knocking on that door, count as wrong knocks, so a port sweep opens nothing.
    pub sweep_guard: bool,
    /// `SweepWindow`: how many ports on each side of a sequence port the guard watches.
    pub sweep_window: u16,
    /// `TolerateRepeats`: an exact repeat of the knock just accepted is ignored.
    pub tolerate_repeats: bool,
    /// `ExtendGrants`: a knock during a live grant extends it instead of running the start
    /// command again.
    pub extend_grants: bool,
    /// `CloseOnExit`: run the pending stop commands on SIGTERM/SIGINT.
    pub close_on_exit: bool,
    /// `StateFile`: where live grants are recorded so a restart can close what a crash left
    /// open (default: one file per interface and network namespace under /var/run).
    pub state_file: Option<PathBuf>,
    /// `MaxAttempts`: capacity of the table of sequences in progress.
    pub max_attempts: usize,
    /// `MaxGrants`: capacity of the table of open doors waiting for their stop command.
    pub max_grants: usize,
    /// `MaxChildren`: start commands allowed to run at the same time; stop commands have a
    /// pool of the same size of their own, so hung or flooded starts never hold back a stop.
    pub max_children: usize,
    /// `CommandTimeout`: how long a start or stop command may run before it is killed (with
    /// its whole process group) and counted as failed.
    pub command_timeout: Duration,
    /// `SpaReplayFile`: where the SPA replay cache is kept across restarts (default: beside
    /// the state file).
    pub spa_replay_file: Option<PathBuf>,
    /// `SpaReplayEntries`: capacity of the SPA replay cache.
    pub spa_replay_entries: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            use_syslog: false,
            log_file: None,
            pid_file: PathBuf::from("/var/run/knockd.pid"),
            interfaces: Vec::new(),
            sweep_guard: true,
            sweep_window: 16,
            tolerate_repeats: true,
            extend_grants: true,
            close_on_exit: true,
            state_file: None,
            max_attempts: 2048,
            max_grants: 256,
            max_children: 8,
            command_timeout: Duration::from_secs(30),
            spa_replay_file: None,
            spa_replay_entries: 1024,
        }
    }
}

/// A whole, valid configuration. Doors are shared (`Rc`) so a grant can outlive a reload.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file it was read from.
    pub path: PathBuf,
    /// `[options]`
    pub options: Options,
    /// Every door, in file order (shared: the packet loop holds it without copying).
    pub doors: Rc<[Rc<Door>]>,
    /// SPA doors (sections with `SPA_Port`), or fwknopd's access.conf stanzas, in order.
    pub spa: Rc<[Rc<crate::spa::door::Door>]>,
}

/// A configuration mistake, located.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// File the mistake is in.
    pub file: PathBuf,
    /// 1-based line number, 0 when the file as a whole is at fault (unreadable).
    pub line: usize,
    /// What was wrong and what was expected.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Line 0 means the file as a whole (it could not be read); the FILE:LINE shape is
        // kept so that editors and scripts parse every message the same way.
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
    }
}

/// A decimal number of 1 to 19 digits, optionally after a `+` (as `str::parse` takes it);
/// `None` for anything else. The one integer parser of the config files, the state files and
/// SPA messages: a `str::parse` per integer type cost about 1 KB more on mips.
pub fn number(s: &str) -> Option<u64> {
    let d = s.strip_prefix('+').unwrap_or(s).as_bytes();
    if d.is_empty() || d.len() > 19 {
        return None;
    }
    let mut n = 0u64;
    for &c in d {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(c - b'0');
    }
    Some(n)
}

/// Splits a comma-separated list of interface names (`Interface = pppoe-wan, wg0`, `-i`),
/// checking each as the kernel would.
pub fn interface_list(text: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for name in text.split(',').map(str::trim) {
        if name.is_empty() || name.len() > 15 || name == "." || name == ".." {
            return Err(format!(
                "'{name}' is not an interface name; expected names of 1 to 15 characters, \
                 separated by commas"
            ));
        }
        if let Some(c) = name
            .chars()
            .find(|c| c.is_whitespace() || matches!(c, '/' | ':'))
        {
            return Err(format!(
                "interface name '{name}' contains '{c}'; expected names separated by commas"
            ));
        }
        if !out.iter().any(|n| n == name) {
            out.push(name.to_string());
        }
    }
    Ok(out)
}

/// Reads and parses the config file at `path` (and any one-time sequence files it names).
pub fn load(path: &Path) -> Result<Config, Vec<ConfigError>> {
    match std::fs::read(path) {
        Ok(bytes) => parse(path, &String::from_utf8_lossy(&bytes)),
        Err(e) => Err(vec![ConfigError {
            file: path.to_path_buf(),
            line: 0,
            message: format!("cannot read config file: {e}"),
        }]),
    }
}
