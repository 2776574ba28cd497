//! `latchkey fwknopd`, or the binary run as `fwknopd`: fwknopd's command line over
//! latchkey's daemon.
//!
//! Supported: `-f/--foreground`, `-i/--interface IF`, `-c/--config-file FILE`,
//! `-a/--access-file FILE`, `-d/--digest-file FILE` (where latchkey keeps its replay cache),
//! `-p/--pid-file FILE`, `-v/--verbose`, `--syslog-enable`, `-K/--kill` (SIGTERM to the
//! running daemon), `-R/--restart` (SIGHUP: it re-reads its files), `-S/--status`,
//! `-D/--dump-config`, `-k/--key-gen`, `-h/--help`, `-V/--version`. Other fwknopd options
//! are refused by name, so a script never silently gets something else.

use crate::daemon::{self, Settings};
use crate::logging;
use argh::{ArgsInfo, FromArgs};
use log::LevelFilter;
use std::path::PathBuf;

/// serve fwknop SPA clients from fwknopd.conf and access.conf (fwknopd's options;
/// Rijndael + HMAC-SHA256)
#[derive(FromArgs, ArgsInfo, Debug, Default, PartialEq, Eq)]
#[argh(subcommand, name = "fwknopd", help_triggers("-h", "--help"))]
pub struct FwknopdArgs {
    /// stay in the foreground, log to stderr
    #[argh(switch, short = 'f')]
    foreground: bool,
    /// capture on IF (default: PCAP_INTF, else eth0)
    #[argh(option, short = 'i', arg_name = "if")]
    interface: Option<String>,
    /// fwknopd.conf (default /etc/fwknop/fwknopd.conf)
    #[argh(option, short = 'c', long = "config-file", arg_name = "file")]
    config: Option<PathBuf>,
    /// access.conf (default ACCESS_FILE, else /etc/fwknop/access.conf)
    #[argh(option, short = 'a', long = "access-file", arg_name = "file")]
    access: Option<PathBuf>,
    /// replay cache file (latchkey's own format)
    #[argh(option, short = 'd', long = "digest-file", arg_name = "file")]
    digest: Option<PathBuf>,
    /// PID file (default FWKNOP_RUN_DIR/fwknopd.pid)
    #[argh(option, short = 'p', long = "pid-file", arg_name = "file")]
    pid: Option<PathBuf>,
    /// log more (debug)
    #[argh(switch, short = 'v')]
    verbose: bool,
    /// log to syslog in the foreground too
    #[argh(switch, long = "syslog-enable")]
    syslog: bool,
    /// print the configuration as understood and exit
    #[argh(switch, short = 'D', long = "dump-config")]
    dump: bool,
    /// print a new KEY_BASE64 / HMAC_KEY_BASE64 pair and exit
    #[argh(switch, short = 'k', long = "key-gen")]
    keygen: bool,
    /// stop the running fwknopd
    #[argh(switch, short = 'K')]
    kill: bool,
    /// make the running fwknopd re-read its configuration (SIGHUP)
    #[argh(switch, short = 'R')]
    restart: bool,
    /// say whether fwknopd is running
    #[argh(switch, short = 'S')]
    status: bool,
    /// print the version
    #[argh(switch, short = 'V')]
    version: bool,
}

impl crate::cli::Getopt for FwknopdArgs {
    const SHORT_VALUED: &'static str = "icadp";
    const LONG_VALUED: &'static [&'static str] = &[
        "interface",
        "config-file",
        "access-file",
        "digest-file",
        "pid-file",
    ];
}

fn running_pid(pid_file: &std::path::Path) -> Option<libc::pid_t> {
    let pid: libc::pid_t = std::fs::read_to_string(pid_file)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    // SAFETY: signal 0 only checks that the process exists.
    (pid > 0 && unsafe { libc::kill(pid, 0) } == 0).then_some(pid)
}

/// Prints a new key pair in fwknop's `--key-gen` form.
fn keygen() -> i32 {
    use std::io::Read;
    let mut buf = [0u8; 96];
    if let Err(e) = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf)) {
        eprintln!("fwknopd: cannot read /dev/urandom: {e}");
        return 1;
    }
    println!("KEY_BASE64: {}", crate::spa::wire::encode_key(&buf[..32]));
    println!(
        "HMAC_KEY_BASE64: {}",
        crate::spa::wire::encode_key(&buf[32..])
    );
    0
}

/// Runs fwknopd's personality with its parsed command line.
pub fn run(a: FwknopdArgs) -> i32 {
    if a.version {
        println!(
            "fwknopd server 2.6.10 compatible (latchkey {})",
            crate::cli::VERSION
        );
        return 0;
    }
    if a.keygen {
        return keygen();
    }
    logging::init(
        if a.verbose {
            LevelFilter::Debug
        } else {
            LevelFilter::Info
        },
        "fwknopd",
    );
    let conf = a
        .config
        .clone()
        .unwrap_or_else(|| super::DEFAULT_CONF.into());
    let mut cfg = match super::config(&conf, a.access.as_deref()) {
        Ok(c) => c,
        Err(errors) => {
            for e in errors {
                eprintln!("{e}");
            }
            return 1;
        }
    };
    let pid_file = a
        .pid
        .clone()
        .unwrap_or_else(|| cfg.options.pid_file.clone());
    if a.kill || a.restart || a.status {
        let Some(pid) = running_pid(&pid_file) else {
            println!("No running fwknopd detected.");
            return 1;
        };
        if a.status {
            println!("Detected fwknopd is running (pid={pid}).");
            return 0;
        }
        let sig = if a.kill { libc::SIGTERM } else { libc::SIGHUP };
        // SAFETY: plain kill(2) on a pid read from our own PID file.
        if unsafe { libc::kill(pid, sig) } != 0 {
            eprintln!(
                "fwknopd: cannot signal {pid}: {}",
                std::io::Error::last_os_error()
            );
            return 1;
        }
        return 0;
    }
    if let Some(d) = a.digest.clone() {
        cfg.options.spa_replay_file = Some(d);
    }
    if a.dump {
        crate::cli::say(&crate::daemon_cli::describe(&cfg));
        return 0;
    }
    for p in [Some(&pid_file), cfg.options.spa_replay_file.as_ref()]
        .into_iter()
        .flatten()
    {
        if let Some(dir) = p.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
    }
    if let Err(e) = logging::configure(None, a.syslog || !a.foreground) {
        eprintln!("fwknopd: cannot set up logging: {e}");
        return 1;
    }
    if running_pid(&pid_file).is_some_and(|p| p != std::process::id() as libc::pid_t) {
        eprintln!("fwknopd: already running (PID file {})", pid_file.display());
        return 1;
    }
    if !a.foreground {
        if let Err(e) = crate::daemon_cli::daemonize() {
            eprintln!("fwknopd: cannot detach: {e}");
            return 1;
        }
    }
    if let Err(e) = std::fs::write(&pid_file, format!("{}\n", std::process::id())) {
        log::warn!("cannot write PID file {}: {e}", pid_file.display());
    }
    log::info!(
        "Starting fwknopd (latchkey {}): {} stanza(s)",
        crate::cli::VERSION,
        cfg.spa.len()
    );
    let settings = Settings {
        interfaces: a.interface.into_iter().collect(),
        ipv4_only: false,
        log_file: None,
        fwknop: Some((conf, a.access)),
    };
    let code = daemon::run(cfg, settings);
    let _ = std::fs::remove_file(&pid_file);
    code
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::parse;

    #[test]
    fn fwknopd_options_as_getopt_takes_them() {
        let a: FwknopdArgs = parse(
            "fwknopd",
            &[
                "-f",
                "-ieth1",
                "--config-file=/x",
                "-a",
                "/y",
                "-v",
                "--syslog-enable",
            ],
        )
        .unwrap();
        assert!(a.foreground && a.verbose && a.syslog);
        assert_eq!(a.interface.as_deref(), Some("eth1"));
        assert_eq!(a.config, Some(PathBuf::from("/x")));
        assert_eq!(a.access, Some(PathBuf::from("/y")));
        let a: FwknopdArgs = parse("fwknopd", &["-fvKd/run/d", "-p/run/p", "-SRDk"]).unwrap();
        assert!(a.foreground && a.verbose && a.kill);
        assert_eq!(a.digest, Some(PathBuf::from("/run/d")));
        assert_eq!(a.pid, Some(PathBuf::from("/run/p")));
        assert!(a.status && a.restart && a.dump && a.keygen);
        assert_eq!(parse::<FwknopdArgs>("fwknopd", &["-h"]).err(), Some(0));
        // Other fwknopd options are refused by name, never half-honoured.
        assert_eq!(
            parse::<FwknopdArgs>("fwknopd", &["--fw-list"]).err(),
            Some(2)
        );
        assert_eq!(parse::<FwknopdArgs>("fwknopd", &["-i"]).err(), Some(2));
    }
}
