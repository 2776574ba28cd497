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
use log::LevelFilter;
use std::path::PathBuf;

const USAGE: &str = "usage: fwknopd [options]   (latchkey's fwknopd: Rijndael + HMAC-SHA256 SPA)

  -f, --foreground        stay in the foreground, log to stderr
  -i, --interface IF      capture on IF (default: PCAP_INTF, else eth0)
  -c, --config-file FILE  fwknopd.conf (default /etc/fwknop/fwknopd.conf)
  -a, --access-file FILE  access.conf (default ACCESS_FILE, else /etc/fwknop/access.conf)
  -d, --digest-file FILE  replay cache file (latchkey's own format)
  -p, --pid-file FILE     PID file (default FWKNOP_RUN_DIR/fwknopd.pid)
  -v, --verbose           log more (debug)
      --syslog-enable     log to syslog in the foreground too
  -D, --dump-config       print the configuration as understood and exit
  -k, --key-gen           print a new KEY_BASE64 / HMAC_KEY_BASE64 pair and exit
  -K, --kill              stop the running fwknopd
  -R, --restart           make the running fwknopd re-read its configuration (SIGHUP)
  -S, --status            say whether fwknopd is running
  -V, --version           print the version
  -h, --help              this help";

#[derive(Debug, Default)]
struct Args {
    foreground: bool,
    interface: Option<String>,
    config: Option<PathBuf>,
    access: Option<PathBuf>,
    digest: Option<PathBuf>,
    pid: Option<PathBuf>,
    verbose: bool,
    syslog: bool,
    dump: bool,
    keygen: bool,
    kill: bool,
    restart: bool,
    status: bool,
}

fn parse(args: &[&str]) -> Result<Option<Args>, String> {
    let mut a = Args::default();
    let mut it = args.iter().peekable();
    while let Some(&arg) = it.next() {
        // --name=value and -xVALUE forms, as getopt takes them.
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ if arg.len() > 2 && arg.starts_with('-') && !arg.starts_with("--") => {
                let (f, v) = arg.split_at(2);
                if "icadp".contains(&f[1..]) {
                    (f, Some(v.to_string()))
                } else {
                    return Err(format!("unknown option '{arg}' (give options one by one)"));
                }
            }
            _ => (arg, None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| it.next().map(|s| s.to_string()))
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag {
            "-f" | "--foreground" => a.foreground = true,
            "-i" | "--interface" => a.interface = Some(value(flag)?),
            "-c" | "--config-file" => a.config = Some(value(flag)?.into()),
            "-a" | "--access-file" => a.access = Some(value(flag)?.into()),
            "-d" | "--digest-file" => a.digest = Some(value(flag)?.into()),
            "-p" | "--pid-file" => a.pid = Some(value(flag)?.into()),
            "-v" | "--verbose" => a.verbose = true,
            "--syslog-enable" => a.syslog = true,
            "-D" | "--dump-config" => a.dump = true,
            "-k" | "--key-gen" => a.keygen = true,
            "-K" | "--kill" => a.kill = true,
            "-R" | "--restart" => a.restart = true,
            "-S" | "--status" => a.status = true,
            "-h" | "--help" => return Ok(None),
            "-V" | "--version" => {
                println!(
                    "fwknopd server 2.6.10 compatible (latchkey {})",
                    crate::cli::VERSION
                );
                return Err(String::new());
            }
            other => {
                return Err(format!(
                    "option '{other}' is not supported by latchkey's fwknopd (see --help)"
                ))
            }
        }
    }
    Ok(Some(a))
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

/// Runs fwknopd's personality with `args` (without argv[0]).
pub fn run(args: &[&str]) -> i32 {
    let a = match parse(args) {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{USAGE}");
            return 0;
        }
        Err(e) if e.is_empty() => return 0,
        Err(e) => {
            eprintln!("fwknopd: {e}\n{USAGE}");
            return 1;
        }
    };
    if a.keygen {
        return keygen();
    }
    logging::init(if a.verbose {
        LevelFilter::Debug
    } else {
        LevelFilter::Info
    });
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
        print!("{}", crate::daemon_cli::describe(&cfg));
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
    let ident: &'static str = "fwknopd";
    if let Err(e) = logging::configure(None, a.syslog || !a.foreground, ident) {
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
        interface: a.interface,
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

    #[test]
    fn fwknopd_options_as_getopt_takes_them() {
        let a = parse(&[
            "-f",
            "-ieth1",
            "--config-file=/x",
            "-a",
            "/y",
            "-v",
            "--syslog-enable",
        ])
        .unwrap()
        .unwrap();
        assert!(a.foreground && a.verbose && a.syslog);
        assert_eq!(a.interface.as_deref(), Some("eth1"));
        assert_eq!(a.config, Some(PathBuf::from("/x")));
        assert_eq!(a.access, Some(PathBuf::from("/y")));
        assert!(parse(&["-h"]).unwrap().is_none());
        assert!(parse(&["--fw-list"]).unwrap_err().contains("not supported"));
        assert!(parse(&["-i"]).unwrap_err().contains("needs a value"));
    }
}
