//! knockd's config grammar: `[section]` lines, `key = value` lines split at the first `=`,
//! case-insensitive keys, `#` comments only at the start of a line.
//!
//! The parser never stops at the first mistake: it reports every one it finds, each with
//! the file, the line and what was expected, so one `latchkey check` run fixes them all.

use super::{
    flag, onetime, spa, Config, ConfigError, Door, Options, Proto, Sequence, Step, TcpFlags,
};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

/// knockd's defaults for a door.
const SEQ_TIMEOUT: usize = 25;
const CMD_TIMEOUT: usize = 10;

enum Section {
    None,
    Options,
    Door(Box<DoorDraft>),
}

/// A door while its section is being read; checked when the section ends.
struct DoorDraft {
    line: usize,
    door: Door,
    has_sequence: bool,
    /// Set by the first SPA key: the section is an SPA door.
    spa: Option<spa::Draft>,
    /// `Cmd_Timeout` was given (an SPA door's default differs from knockd's).
    cmd_timeout_set: bool,
    /// Another door already has this name (reported at the header); it is not kept.
    duplicate: bool,
}

struct Parser<'a> {
    file: &'a Path,
    errors: Vec<ConfigError>,
    options: Options,
    doors: Vec<Rc<Door>>,
    spa_doors: Vec<Rc<crate::spa::door::Door>>,
    /// Every door section's name and header line so far: a name must be unique, since the
    /// log, the grants and the state file tell doors apart by it.
    names: Vec<(String, usize)>,
}

impl Parser<'_> {
    fn error(&mut self, line: usize, message: String) {
        self.errors.push(ConfigError {
            file: self.file.to_path_buf(),
            line,
            message,
        });
    }

    fn finish_door(&mut self, mut draft: Box<DoorDraft>) {
        if let Some(mut sd) = draft.spa.take() {
            let d = &draft.door;
            if draft.cmd_timeout_set {
                sd.timeout(d.cmd_timeout.as_secs().min(u64::from(u32::MAX)) as u32);
            }
            let result = if draft.has_sequence {
                Err("has both a Sequence and SPA keys; expected one or the other")
            } else if d.start6.is_some() || d.stop6.is_some() {
                Err(
                    "Start_Command_6/Stop_Command_6 are not used by SPA doors; one \
                     Start_Command with %IP% serves both families",
                )
            } else {
                sd.finish(&d.name, d.start.as_deref(), d.stop.as_deref())
            };
            match result {
                Ok(door) if !draft.duplicate => self.spa_doors.push(Rc::new(door)),
                Ok(_) => {}
                Err(e) => self.error(draft.line, format!("SPA door [{}]: {e}", d.name)),
            }
            return;
        }
        if !draft.has_sequence {
            self.error(
                draft.line,
                format!(
                    "door [{}] has no sequence; expected 'Sequence = port[:tcp|:udp],...' \
                     or 'One_Time_Sequences = file'",
                    draft.door.name
                ),
            );
            return;
        }
        if !draft.duplicate {
            self.doors.push(Rc::new(draft.door));
        }
    }

    fn option(&mut self, n: usize, key: &str, value: Option<&str>) {
        let lower = key.to_ascii_lowercase();
        if lower == "usesyslog" {
            match value.map(parse_bool) {
                None => self.options.use_syslog = true,
                Some(Ok(b)) => self.options.use_syslog = b,
                Some(Err(e)) => self.error(n, format!("UseSyslog: {e}")),
            }
            return;
        }
        let Some(value) = value else {
            self.error(n, format!("'{key}' has no value; expected '{key} = value'"));
            return;
        };
        let o = &mut self.options;
        let result: Result<(), String> = match lower.as_str() {
            "logfile" => non_empty(value).map(|v| o.log_file = Some(PathBuf::from(v))),
            "pidfile" => non_empty(value).map(|v| o.pid_file = PathBuf::from(v)),
            "interface" => super::interface_list(value).map(|v| o.interfaces = v),
            "statefile" => non_empty(value).map(|v| o.state_file = Some(PathBuf::from(v))),
            "sweepguard" => parse_bool(value).map(|b| o.sweep_guard = b),
            "toleraterepeats" => parse_bool(value).map(|b| o.tolerate_repeats = b),
            "extendgrants" => parse_bool(value).map(|b| o.extend_grants = b),
            "closeonexit" => parse_bool(value).map(|b| o.close_on_exit = b),
            "sweepwindow" => parse_count(value, 0, 1024).map(|v| o.sweep_window = v as u16),
            "maxattempts" => parse_count(value, 16, 1 << 20).map(|v| o.max_attempts = v),
            "maxgrants" => parse_count(value, 1, 1 << 16).map(|v| o.max_grants = v),
            "maxchildren" => parse_count(value, 1, 1024).map(|v| o.max_children = v),
            "spareplayfile" => non_empty(value).map(|v| o.spa_replay_file = Some(PathBuf::from(v))),
            "spareplayentries" => parse_count(value, 16, 1 << 20).map(|v| o.spa_replay_entries = v),
            "commandtimeout" => parse_count(value, 1, 86_400).map(|s| o.command_timeout = secs(s)),
            _ => Err(format!(
                "unknown option '{key}' in [options]; expected one of UseSyslog, LogFile, \
                 PidFile, Interface (knockd's) or SweepGuard, SweepWindow, TolerateRepeats, \
                 ExtendGrants, CloseOnExit, StateFile, MaxAttempts, MaxGrants, MaxChildren, \
                 CommandTimeout, SpaReplayFile, SpaReplayEntries"
            )),
        };
        if let Err(e) = result {
            self.error(n, format!("{key}: {e}"));
        }
    }

    fn door_key(&mut self, n: usize, draft: &mut DoorDraft, key: &str, value: &str) {
        let lower = key.to_ascii_lowercase();
        if spa::is_spa_key(&lower) {
            if let Err(e) = draft
                .spa
                .get_or_insert_with(Default::default)
                .key(&lower, value)
            {
                self.error(n, format!("{key} = {value}: {e}"));
            }
            return;
        }
        if lower == "cmd_timeout" {
            draft.cmd_timeout_set = true;
        }
        let d = &mut draft.door;
        let result: Result<(), String> = match lower.as_str() {
            "sequence" => {
                // Even a bad sequence is "given": one mistake, one message.
                draft.has_sequence = true;
                parse_sequence(value).map(|s| {
                    if d.one_time.is_none() {
                        d.sequence = s;
                    }
                })
            }
            "one_time_sequences" => match non_empty(value) {
                Err(e) => Err(e),
                Ok(v) => {
                    let path = relative_to(self.file, v);
                    match onetime::OneTime::open(&path) {
                        Ok((one, seq)) => {
                            d.sequence = seq;
                            d.one_time = Some(one);
                            draft.has_sequence = true;
                            Ok(())
                        }
                        Err(mut errs) => {
                            self.errors.append(&mut errs);
                            draft.has_sequence = true;
                            Ok(())
                        }
                    }
                }
            },
            "seq_timeout" | "timeout" => {
                parse_count(value, 1, 86_400 * 365).map(|s| d.seq_timeout = secs(s))
            }
            "cmd_timeout" => parse_count(value, 0, 86_400 * 365).map(|s| d.cmd_timeout = secs(s)),
            "start_command" | "command" => {
                d.start = Some(value.to_string());
                Ok(())
            }
            "start_command_6" | "command_6" => {
                d.start6 = Some(value.to_string());
                Ok(())
            }
            "stop_command" => {
                d.stop = Some(value.to_string());
                Ok(())
            }
            "stop_command_6" => {
                d.stop6 = Some(value.to_string());
                Ok(())
            }
            "tcpflags" => parse_flags(value).map(|f| {
                d.flags.set |= f.set;
                d.flags.clear |= f.clear;
            }),
            "target" => value
                .parse::<IpAddr>()
                .map(|ip| d.target = Some(ip))
                .map_err(|_| format!("'{value}' is not an IP address; expected e.g. 192.0.2.1")),
            _ => Err(format!(
                "unknown key '{key}' in door [{}]; expected one of Sequence, \
                 One_Time_Sequences, Seq_Timeout, Start_Command, Start_Command_6, Stop_Command, \
                 Stop_Command_6, Cmd_Timeout, TCPFlags, Target, or for an SPA door SPA_Port, \
                 Key, Key_Base64, HMAC_Key, HMAC_Key_Base64, Source, Destination, Open_Ports, \
                 Restrict_Ports, Require_Source_Address, Require_Username, Max_Timeout, \
                 Max_Packet_Age",
                d.name
            )),
        };
        if let Err(e) = result {
            self.error(n, format!("{key}: {e}"));
        }
    }
}

/// Parses the text of a knockd config file read from `file` (used for messages and to find
/// one-time sequence files given relative to it).
pub fn parse(file: &Path, text: &str) -> Result<Config, Vec<ConfigError>> {
    let mut p = Parser {
        file,
        errors: Vec::new(),
        options: Options::default(),
        doors: Vec::new(),
        spa_doors: Vec::new(),
        names: Vec::new(),
    };
    let mut section = Section::None;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.contains('\0') {
            // No command, name or key can hold one (a command line is a C string).
            p.error(n, "a NUL byte; expected text".into());
            continue;
        }
        if line.starts_with('[') {
            let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) else {
                p.error(
                    n,
                    format!("'{line}': expected a section header like [openSSH]"),
                );
                continue;
            };
            if let Section::Door(d) = std::mem::replace(&mut section, Section::None) {
                p.finish_door(d);
            }
            let name = name.trim();
            section = if name.is_empty() {
                p.error(
                    n,
                    "empty section name; expected [options] or [doorname]".into(),
                );
                Section::None
            } else if name == "options" {
                Section::Options
            } else {
                let first = p
                    .names
                    .iter()
                    .find(|(seen, _)| seen == name)
                    .map(|&(_, l)| l);
                if let Some(first) = first {
                    // Exact comparison, as knockd compares section names (`[Options]` is a
                    // door, not the options): `[ssh]` and `[SSH]` are two doors.
                    p.error(
                        n,
                        format!(
                            "door [{name}] is already defined at line {first}; expected each \
                             door name once (the log and the grants tell doors apart by name)"
                        ),
                    );
                } else {
                    p.names.push((name.to_string(), n));
                }
                // A duplicate is still read, so that its own mistakes are reported too.
                Section::Door(Box::new(DoorDraft {
                    line: n,
                    has_sequence: false,
                    spa: None,
                    cmd_timeout_set: false,
                    duplicate: first.is_some(),
                    door: new_door(name),
                }))
            };
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (line, None),
        };
        match &mut section {
            Section::None => p.error(
                n,
                format!("'{key}' is outside any section; expected [options] or [doorname] first"),
            ),
            Section::Options => p.option(n, key, value),
            Section::Door(d) => match value {
                Some(v) => p.door_key(n, d, key, v),
                None => p.error(n, format!("'{line}': expected 'key = value'")),
            },
        }
    }
    if let Section::Door(d) = section {
        p.finish_door(d);
    }
    if p.errors.is_empty() {
        Ok(Config {
            path: file.to_path_buf(),
            options: p.options,
            doors: p.doors.into(),
            spa: p.spa_doors.into(),
        })
    } else {
        Err(p.errors)
    }
}

fn new_door(name: &str) -> Door {
    Door {
        name: name.to_string(),
        sequence: Sequence::new(),
        one_time: None,
        seq_timeout: secs(SEQ_TIMEOUT),
        cmd_timeout: secs(CMD_TIMEOUT),
        start: None,
        start6: None,
        stop: None,
        stop6: None,
        flags: TcpFlags::default(),
        target: None,
    }
}

fn secs(s: usize) -> Duration {
    Duration::from_secs(s as u64)
}

/// Parses `port[:tcp|:udp],...` (spaces allowed around items; protocol case-insensitive).
pub fn parse_sequence(value: &str) -> Result<Sequence, String> {
    let mut seq = Sequence::new();
    for item in value.split(',') {
        let item = item.trim();
        let (port, proto) = match item.split_once(':') {
            Some((p, proto)) => (p.trim(), Some(proto.trim())),
            None => (item, None),
        };
        let proto = match proto.map(str::to_ascii_lowercase).as_deref() {
            None | Some("tcp") => Proto::Tcp,
            Some("udp") => Proto::Udp,
            Some(other) => {
                return Err(format!(
                    "bad protocol '{other}' in '{item}'; expected tcp or udp"
                ))
            }
        };
        let port = match super::number(port) {
            Some(p) if (1..=65535).contains(&p) => p as u16,
            _ => {
                return Err(format!(
                    "bad port '{port}' in sequence; expected a number from 1 to 65535"
                ))
            }
        };
        seq.push(Step { proto, port })
            .map_err(|_| format!("more than {} knocks in a sequence", super::MAX_STEPS))?;
    }
    Ok(seq)
}

fn parse_flags(value: &str) -> Result<TcpFlags, String> {
    let mut flags = TcpFlags::default();
    for item in value.split(',') {
        let item = item.trim();
        let (negate, name) = match item.strip_prefix('!') {
            Some(rest) => (true, rest.trim()),
            None => (false, item),
        };
        let Some(&(_, bit)) = flag::NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        else {
            return Err(format!(
                "unknown TCP flag '{item}'; expected fin, syn, rst, psh, ack or urg, \
                 optionally with ! in front"
            ));
        };
        if negate {
            flags.clear |= bit;
        } else {
            flags.set |= bit;
        }
    }
    if flags.set & flags.clear != 0 {
        return Err(format!("'{value}' asks for a flag both set and clear"));
    }
    Ok(flags)
}

fn parse_bool(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "yes" | "on" | "true" | "1" => Ok(true),
        "no" | "off" | "false" | "0" => Ok(false),
        _ => Err(format!("'{value}': expected yes or no")),
    }
}

fn parse_count(value: &str, min: usize, max: usize) -> Result<usize, String> {
    match super::number(value) {
        Some(v) if (min as u64..=max as u64).contains(&v) => Ok(v as usize),
        _ => Err(format!(
            "'{value}': expected a whole number from {min} to {max}"
        )),
    }
}

fn non_empty(value: &str) -> Result<&str, String> {
    if value.is_empty() {
        Err("empty value; expected a value after '='".into())
    } else {
        Ok(value)
    }
}

/// A relative path is looked up beside the config file first (a daemon's working directory
/// is usually `/`), then as knockd does, relative to the working directory.
fn relative_to(config: &Path, value: &str) -> PathBuf {
    let p = Path::new(value);
    match config.parent() {
        Some(dir) if p.is_relative() && (dir.join(p).exists() || !p.exists()) => dir.join(p),
        _ => p.to_path_buf(),
    }
}

#[cfg(test)]
mod tests;
