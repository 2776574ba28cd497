//! `latchkey daemon` (knockd's command line) and `latchkey check`.

use crate::config::{self, Config};
use crate::daemon::{self, Settings};
use crate::logging;
use argh::{ArgsInfo, FromArgs};
use log::LevelFilter;
use std::path::{Path, PathBuf};

/// Default config file, as knockd's.
const DEFAULT_CONFIG: &str = "/etc/knockd.conf";

/// watch an interface for knocks and open doors (knockd's options)
#[derive(FromArgs, ArgsInfo, Debug, Default, PartialEq, Eq)]
#[argh(subcommand, name = "daemon", help_triggers("-h", "--help"))]
pub struct DaemonArgs {
    /// interface to listen on (default: the config's Interface, else eth0); give it more
    /// than once, or IF1,IF2, to listen on several
    #[argh(option, short = 'i', arg_name = "if")]
    interface: Vec<String>,
    /// config file (default /etc/knockd.conf)
    #[argh(option, short = 'c', arg_name = "file")]
    config: Option<PathBuf>,
    /// run in the background (writes the PID file)
    #[argh(switch, short = 'd')]
    daemon: bool,
    /// print debugging messages
    #[argh(switch, short = 'D')]
    debug: bool,
    /// be verbose (knock lines on stderr)
    #[argh(switch, short = 'v')]
    verbose: bool,
    /// accepted; no DNS lookups are made
    #[argh(switch, short = 'l')]
    lookup: bool,
    /// ignore IPv6 packets
    #[argh(switch, short = '4', long = "only-ip-v4")]
    only_ip_v4: bool,
    /// PID file (default: the config's PidFile)
    #[argh(option, short = 'p', arg_name = "file")]
    pidfile: Option<PathBuf>,
    /// log file (default: the config's LogFile)
    #[argh(option, short = 'g', arg_name = "file")]
    logfile: Option<PathBuf>,
    /// print the version and exit
    #[argh(switch, short = 'V')]
    version: bool,
}

impl crate::cli::Getopt for DaemonArgs {
    const SHORT_VALUED: &'static str = "icpg";
    const LONG_VALUED: &'static [&'static str] = &["interface", "config", "pidfile", "logfile"];
}

/// print a knockd config's doors as understood, or each mistake as FILE:LINE (exit 1)
#[derive(FromArgs, ArgsInfo, Debug, PartialEq, Eq)]
#[argh(subcommand, name = "check", help_triggers("-h", "--help"))]
pub struct CheckArgs {
    /// config file (default /etc/knockd.conf)
    #[argh(option, short = 'c', arg_name = "file")]
    config: Option<PathBuf>,
}

impl crate::cli::Getopt for CheckArgs {
    const SHORT_VALUED: &'static str = "c";
    const LONG_VALUED: &'static [&'static str] = &["config"];
}

fn load(path: &Path, prog: &str) -> Result<Config, i32> {
    config::load(path).map_err(|errors| {
        for e in &errors {
            crate::cli::complain(&e.to_string());
        }
        crate::cli::complain(&format!(
            "{prog}: {} error(s) in {}",
            errors.len(),
            path.display()
        ));
        1
    })
}

/// Runs `latchkey check`.
pub fn check(prog: &str, a: CheckArgs) -> i32 {
    let path = a.config.unwrap_or_else(|| DEFAULT_CONFIG.into());
    match load(&path, prog) {
        Ok(cfg) => {
            crate::cli::say(&describe(&cfg));
            0
        }
        Err(code) => code,
    }
}

/// The config as understood, for humans (without the `check-listing` feature: only how many
/// doors of each kind).
#[cfg(not(feature = "check-listing"))]
pub fn describe(cfg: &Config) -> String {
    format!(
        "{}: {} door(s), {} SPA door(s)\n",
        cfg.path.display(),
        cfg.doors.len(),
        cfg.spa.len()
    )
}

/// The config as understood, for humans.
#[cfg(feature = "check-listing")]
pub fn describe(cfg: &Config) -> String {
    let o = &cfg.options;
    let yn = |b: bool| if b { "yes" } else { "no" };
    let mut s = format!(
        "{}: {} door(s)\n[options]\n  interface        {}\n  log file         {}\n  syslog           {}\n  pid file         {}\n  sweep guard      {} (window {} ports)\n  tolerate repeats {}\n  extend grants    {}\n  close on exit    {}\n  state file       {}\n  tables           {} attempts, {} grants, {} children\n",
        cfg.path.display(),
        cfg.doors.len(),
        if o.interfaces.is_empty() {
            "(from -i, else eth0)".to_string()
        } else {
            o.interfaces.join(", ")
        },
        o.log_file.as_deref().map_or("(none)".into(), |p| p.display().to_string()),
        yn(o.use_syslog),
        o.pid_file.display(),
        yn(o.sweep_guard),
        o.sweep_window,
        yn(o.tolerate_repeats),
        yn(o.extend_grants),
        yn(o.close_on_exit),
        o.state_file.as_deref().map_or("(per interface, under /var/run)".into(), |p| p.display().to_string()),
        o.max_attempts,
        o.max_grants,
        o.max_children,
    );
    for d in cfg.doors.iter() {
        s.push_str(&describe_door(d));
    }
    for d in cfg.spa.iter() {
        s.push_str(&describe_spa_door(d));
    }
    s
}

/// An SPA door as understood (never its keys).
#[cfg(feature = "check-listing")]
pub fn describe_spa_door(d: &crate::spa::door::Door) -> String {
    use crate::spa::door::Action;
    let list = |v: &[crate::spa::Access]| {
        v.iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let nets = |v: &[crate::spa::door::Net]| {
        v.iter()
            .map(|n| format!("{}/{}", n.addr, n.prefix))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let r = &d.rules;
    let mut s = format!(
        "[{}] (SPA)\n  udp port         {}\n  keys             {} byte key, {} byte HMAC-SHA256 key\n  source           {}\n  open ports       {}\n  restricted ports {}\n  require address  {}\n  require user     {}\n  access time      {} s (client may ask up to {} s)\n  max packet age   {}\n",
        d.name,
        d.ports.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", "),
        d.keys.enc.len(),
        d.keys.hmac.len(),
        nets(&d.source),
        r.open_ports.as_deref().map_or("(any not restricted)".into(), list),
        if r.restrict_ports.is_empty() { "(none)".into() } else { list(&r.restrict_ports) },
        if r.require_source { "yes" } else { "no (0.0.0.0 opens for the sender)" },
        r.require_user.as_deref().unwrap_or("(any)"),
        r.timeout,
        r.max_timeout,
        r.max_age.map_or("(aging off)".into(), |a| format!("{a} s")),
    );
    match &d.action {
        Action::Firewall => s.push_str(
            "  action           latchkey's firewall: OpenWrt helper, else iptables, else nft set\n",
        ),
        Action::Commands { open, close, .. } => s.push_str(&format!(
            "  start_command    {open}\n  stop_command     {}\n",
            close.as_deref().unwrap_or("(none)")
        )),
    }
    s
}

#[cfg(feature = "check-listing")]
fn describe_door(d: &config::Door) -> String {
    let seq: Vec<String> = d.sequence.iter().map(|s| s.to_string()).collect();
    let cmd = |c: &Option<String>, fallback: &str| match c {
        None => fallback.to_string(),
        Some(c) if c.trim().is_empty() => "(disabled)".to_string(),
        Some(c) => c.clone(),
    };
    let mut s = format!("[{}]\n", d.name);
    let seq = if seq.is_empty() {
        "(none left: door closed)".to_string()
    } else {
        seq.join(",")
    };
    s.push_str(&format!("  sequence         {seq}\n"));
    if let Some(one) = &d.one_time {
        s.push_str(&format!(
            "  one-time file    {} (live line {})\n",
            one.path.display(),
            one.line
        ));
    }
    s.push_str(&format!(
        "  seq_timeout      {} s\n  tcpflags         {}\n  target           {}\n  start_command    {}\n  start_command_6  {}\n  cmd_timeout      {} s\n  stop_command     {}\n  stop_command_6   {}\n",
        d.seq_timeout.as_secs(),
        d.flags,
        d.target.map_or("the interface's addresses".into(), |t| t.to_string()),
        cmd(&d.start, "(none)"),
        cmd(&d.start6, "(as IPv4)"),
        d.cmd_timeout.as_secs(),
        cmd(&d.stop, "(none)"),
        cmd(&d.stop6, "(as IPv4)"),
    ));
    s
}

/// The interfaces of every `-i` (each may be a comma-separated list), in order, once each.
fn interfaces(given: &[String]) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for v in given {
        for n in config::interface_list(v)? {
            if !out.contains(&n) {
                out.push(n);
            }
        }
    }
    Ok(out)
}

/// Runs `latchkey daemon` (or `knockd`).
pub fn run(prog: &str, a: DaemonArgs) -> i32 {
    if a.version {
        crate::cli::say(&format!(
            "latchkey {} (knockd-compatible daemon)\n",
            crate::cli::VERSION
        ));
        return 0;
    }
    let interfaces = match interfaces(&a.interface) {
        Ok(v) => v,
        Err(e) => {
            crate::cli::complain(&format!("{prog}: -i: {e}"));
            return 2;
        }
    };
    let level = if a.debug {
        LevelFilter::Debug
    } else if a.verbose {
        LevelFilter::Info
    } else {
        LevelFilter::Warn
    };
    let ident = if prog == "knockd" {
        "knockd"
    } else {
        "latchkey"
    };
    logging::init(level, ident);
    let path = a.config.unwrap_or_else(|| DEFAULT_CONFIG.into());
    let cfg = match load(&path, prog) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let log_file = a.logfile.clone().or_else(|| cfg.options.log_file.clone());
    if let Err(e) = logging::configure(log_file.as_deref(), cfg.options.use_syslog) {
        crate::cli::complain(&format!("{prog}: cannot open log file: {e}"));
        return 1;
    }
    if a.lookup {
        log::info!("-l: DNS names are not looked up (a lookup would stall the packet loop)");
    }
    let pidfile = a
        .pidfile
        .clone()
        .unwrap_or_else(|| cfg.options.pid_file.clone());
    if a.daemon {
        if let Err(e) = daemonize() {
            crate::cli::complain(&format!("{prog}: cannot detach: {e}"));
            return 1;
        }
    }
    if a.daemon || a.pidfile.is_some() {
        if let Err(e) = std::fs::write(&pidfile, format!("{}\n", std::process::id())) {
            log::warn!("cannot write PID file {}: {e}", pidfile.display());
        }
    }
    let settings = Settings {
        interfaces,
        ipv4_only: a.only_ip_v4,
        log_file: a.logfile,
        fwknop: None,
    };
    let code = daemon::run(cfg, settings);
    logging::flush();
    if a.daemon || a.pidfile.is_some() {
        let _ = std::fs::remove_file(&pidfile);
    }
    code
}

/// Detaches from the terminal: fork, new session, cwd /, standard streams to /dev/null.
pub(crate) fn daemonize() -> std::io::Result<()> {
    // SAFETY: the process is single-threaded here; the parent exits at once without running
    // destructors, the child continues with its own copy of everything.
    unsafe {
        match libc::fork() {
            -1 => return Err(std::io::Error::last_os_error()),
            0 => {}
            _ => libc::_exit(0),
        }
        libc::setsid();
        let _ = libc::chdir(c"/".as_ptr());
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            for fd in 0..3 {
                libc::dup2(null, fd);
            }
            if null > 2 {
                libc::close(null);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
