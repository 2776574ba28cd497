//! The command line of `latchkey knock`: knock's options, read the way knock's getopt reads
//! them, plus the saved-host options.
//!
//! Hand-written rather than derived with argh because knock users type getopt forms that argh
//! does not accept: bundled flags (`-uv`), attached values (`-d200`, `--delay=200`), digits as
//! flags (`-4`), and options after the host and ports (GNU getopt permutes).

use std::path::PathBuf;

use super::resolve::Family;
use super::sequence::{self, Knock};

/// Everything the user asked for; `None` means "not given" so a saved host's value applies.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Args {
    /// `-u`: bare ports are UDP.
    pub udp: bool,
    /// `-d MS`: pause between knocks.
    pub delay_ms: Option<u32>,
    /// `-4` / `-6`.
    pub family: Option<Family>,
    /// `-v`.
    pub verbose: bool,
    /// `--check PORT`.
    pub check: Option<u16>,
    /// `-F FILE`: the saved-hosts file to use instead of the default ones.
    pub file: Option<PathBuf>,
    /// `-l` / `--list`.
    pub list: bool,
    /// HOST, or the saved NAME when no ports follow.
    pub host: Option<String>,
    /// The knocks given on the command line.
    pub ports: Vec<Knock>,
}

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// `-h`.
    Help,
    /// `-V`.
    Version,
    /// Knock or list.
    Run(Args),
}

/// Usage text; `{prog}` is replaced by the name the program runs under.
pub const USAGE: &str = "usage: {prog} [options] HOST PORT[:tcp|:udp]...
       {prog} [options] NAME          (a saved host)
       {prog} --list [-v] [-F FILE]

options:
  -u, --udp            bare ports are UDP (default TCP)
  -d, --delay MS       wait MS milliseconds between knocks (not after the last)
  -4, --ipv4           knock over IPv4 only
  -6, --ipv6           knock over IPv6 only
  -v, --verbose        say what is sent; report network errors
  -c, --check PORT     after knocking, connect to PORT; repeat the knock if it stays closed
  -F, --file FILE      read saved hosts from FILE
  -l, --list           list saved hosts (with -v: their sequences)
  -V, --version        print the version
  -h, --help           this help

exit status: 0 done (door open with --check), 1 door still closed or a knock could not be
sent, 2 usage or saved-hosts error.
saved hosts: ~/.config/latchkey/knock.conf, then /etc/latchkey/knock.conf";

/// Options that take a value, by short and long name.
const VALUED: &[(char, &str)] = &[('d', "delay"), ('c', "check"), ('F', "file")];
/// Flags, by short and long name.
const FLAGS: &[(char, &str)] = &[
    ('u', "udp"),
    ('4', "ipv4"),
    ('6', "ipv6"),
    ('v', "verbose"),
    ('l', "list"),
    ('V', "version"),
    ('h', "help"),
];

/// Parses the arguments after the command name.
pub fn parse(argv: &[&str]) -> Result<Command, String> {
    let mut a = Args::default();
    let mut positional: Vec<&str> = Vec::new();
    let (mut help, mut version) = (false, false);
    let mut i = 0;
    while i < argv.len() {
        let arg = argv[i];
        i += 1;
        if arg == "--" {
            positional.extend_from_slice(&argv[i..]);
            break;
        }
        // Options as (short letter, attached value or None).
        let mut opts: Vec<(char, Option<String>)> = Vec::new();
        if let Some(long) = arg.strip_prefix("--") {
            let (name, attached) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            if let Some(&(c, _)) = VALUED.iter().find(|(_, l)| *l == name) {
                opts.push((c, attached));
            } else if let Some(&(c, _)) = FLAGS.iter().find(|(_, l)| *l == name) {
                if attached.is_some() {
                    return Err(format!("option --{name} takes no value"));
                }
                opts.push((c, None));
            } else {
                return Err(format!("unknown option '--{name}'"));
            }
        } else if let Some(shorts) = arg.strip_prefix('-').filter(|s| !s.is_empty()) {
            // Bundled flags; a valued letter takes the rest of the word as its value.
            for (pos, c) in shorts.char_indices() {
                if VALUED.iter().any(|(s, _)| *s == c) {
                    let rest = &shorts[pos + c.len_utf8()..];
                    opts.push((c, (!rest.is_empty()).then(|| rest.to_string())));
                    break;
                }
                if !FLAGS.iter().any(|(s, _)| *s == c) {
                    return Err(format!("unknown option '-{c}'"));
                }
                opts.push((c, None));
            }
        } else {
            positional.push(arg);
            continue;
        }
        for (c, attached) in opts {
            let mut value = || -> Result<String, String> {
                if let Some(v) = attached.clone() {
                    return Ok(v);
                }
                let v = argv
                    .get(i)
                    .ok_or_else(|| format!("option -{c} needs a value"))?;
                i += 1;
                Ok(v.to_string())
            };
            match c {
                'u' => a.udp = true,
                'v' => a.verbose = true,
                'l' => a.list = true,
                'h' => help = true,
                'V' => version = true,
                '4' | '6' => {
                    let f = if c == '4' { Family::V4 } else { Family::V6 };
                    if a.family.is_some_and(|old| old != f) {
                        return Err("-4 and -6 exclude each other".to_string());
                    }
                    a.family = Some(f);
                }
                'd' => {
                    let v = value()?;
                    a.delay_ms = Some(v.parse().map_err(|_| {
                        format!("bad delay '{v}': expected milliseconds, 0..4294967295")
                    })?);
                }
                'c' => a.check = Some(sequence::parse_port_number(&value()?, "check port")?),
                'F' => a.file = Some(PathBuf::from(value()?)),
                _ => unreachable!("letters come from VALUED and FLAGS"),
            }
        }
    }
    if help {
        return Ok(Command::Help);
    }
    if version {
        return Ok(Command::Version);
    }
    let mut positional = positional.into_iter();
    a.host = positional.next().map(str::to_string);
    a.ports = positional
        .map(sequence::parse_knock)
        .collect::<Result<_, _>>()?;
    if a.list && a.host.is_some() {
        return Err("--list takes no host or ports".to_string());
    }
    if !a.list && a.host.is_none() {
        return Err("missing HOST and ports (or a saved host NAME)".to_string());
    }
    Ok(Command::Run(a))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::sequence::Proto;

    fn run(argv: &[&str]) -> Args {
        match parse(argv) {
            Ok(Command::Run(a)) => a,
            other => panic!("{argv:?} gave {other:?}"),
        }
    }

    #[test]
    fn knock_command_line() {
        let a = run(&["-u", "-d", "200", "-4", "-v", "host", "1", "2:tcp", "3:udp"]);
        assert!(a.udp && a.verbose);
        assert_eq!(a.delay_ms, Some(200));
        assert_eq!(a.family, Some(Family::V4));
        assert_eq!(a.host.as_deref(), Some("host"));
        let protos: Vec<_> = a.ports.iter().map(|k| k.proto_or(Proto::Udp)).collect();
        assert_eq!(protos, [Proto::Udp, Proto::Tcp, Proto::Udp]);
    }

    #[test]
    fn getopt_forms() {
        let a = run(&["-uvd200", "h", "1"]);
        assert!(a.udp && a.verbose);
        assert_eq!(a.delay_ms, Some(200));
        assert_eq!(run(&["--delay=50", "h", "1"]).delay_ms, Some(50));
        assert_eq!(run(&["--delay", "50", "h", "1"]).delay_ms, Some(50));
        // Options after the operands, as GNU getopt allows.
        let a = run(&["h", "1", "-6", "--check", "22"]);
        assert_eq!((a.family, a.check), (Some(Family::V6), Some(22)));
        assert_eq!(run(&["-c22", "home"]).check, Some(22));
        assert_eq!(run(&["-F", "f.conf", "home"]).file, Some("f.conf".into()));
        assert_eq!(run(&["-4", "-4", "h", "1"]).family, Some(Family::V4));
    }

    #[test]
    fn double_dash_ends_options() {
        let a = run(&["--", "-weird-host", "1"]);
        assert_eq!(a.host.as_deref(), Some("-weird-host"));
    }

    #[test]
    fn saved_name_and_list() {
        let a = run(&["home"]);
        assert_eq!(a.host.as_deref(), Some("home"));
        assert!(a.ports.is_empty());
        let a = run(&["--list", "-v"]);
        assert!(a.list && a.verbose && a.host.is_none());
    }

    #[test]
    fn help_and_version_win() {
        assert_eq!(parse(&["-h"]), Ok(Command::Help));
        assert_eq!(parse(&["h", "1", "--help"]), Ok(Command::Help));
        assert_eq!(parse(&["-V"]), Ok(Command::Version));
    }

    #[test]
    fn usage_errors() {
        let cases: &[(&[&str], &str)] = &[
            (&[], "missing HOST"),
            (&["-x", "h", "1"], "unknown option '-x'"),
            (&["--bogus", "h", "1"], "unknown option '--bogus'"),
            (&["-d"], "option -d needs a value"),
            (&["-d", "soon", "h", "1"], "bad delay 'soon'"),
            (&["-d", "-5", "h", "1"], "bad delay '-5'"),
            (&["-4", "-6", "h", "1"], "-4 and -6"),
            (&["h", "0"], "bad port '0'"),
            (&["h", "70000"], "bad port '70000'"),
            (&["h", "22:sctp"], "bad protocol 'sctp'"),
            (&["--check", "0", "h"], "bad check port '0'"),
            (&["--list", "home"], "--list takes no host"),
            (&["--udp=yes", "h", "1"], "option --udp takes no value"),
        ];
        for (argv, want) in cases {
            match parse(argv) {
                Err(e) => assert!(e.contains(want), "{argv:?}: got {e:?}, want {want:?}"),
                Ok(c) => panic!("{argv:?} accepted: {c:?}"),
            }
        }
    }
}
