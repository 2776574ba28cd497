//! The knock client (`latchkey knock`, or the binary run as `knock`).
//!
//! `run` turns the command line (and, for `latchkey knock NAME`, a saved host) into a [`Plan`]:
//! one resolved address, the knocks with their protocols, the pause between them and an
//! optional port to check; then it sends the knocks in order and, with a check, probes the port
//! and repeats the whole sequence a few times while the door stays closed.
//!
//! Modules: `args` (command line), `hosts` (saved-hosts file), `sequence` (port syntax),
//! `resolve` (choosing the address), `knock` (sending one knock), `check` (the probe).

mod args;
mod check;
pub mod hosts;
mod knock;
pub mod resolve;
pub mod sequence;

use std::net::SocketAddr;
use std::thread::sleep;
use std::time::Duration;

use args::{Args, Command};
use resolve::Family;
use sequence::Proto;

/// How many times the whole knock is sent when `--check` finds the door closed. A lost UDP
/// knock or a daemon still holding a stale half-sequence from us usually needs one retry.
const CHECK_ATTEMPTS: u32 = 3;

/// Exit status: done (door open, when checked).
const EXIT_OK: i32 = 0;
/// Exit status: the door stayed closed, or a knock could not be sent.
const EXIT_CLOSED: i32 = 1;
/// Exit status: usage or saved-hosts error.
const EXIT_USAGE: i32 = 2;

/// Runs `latchkey knock` with `args` (after the command name); returns the exit status.
///
/// `prog` is the name used in messages: "latchkey knock", or "knock" for the symlink.
pub fn run(prog: &str, args: &[&str]) -> i32 {
    let usage = || args::USAGE.replace("{prog}", prog);
    let a = match args::parse(args) {
        Ok(Command::Run(a)) => a,
        Ok(Command::Help) => {
            println!("{}", usage());
            return EXIT_OK;
        }
        Ok(Command::Version) => {
            println!("{prog} (latchkey {})", crate::cli::VERSION);
            return EXIT_OK;
        }
        // Nothing typed: show how. A mistake: one line saying what is wrong.
        Err(_) if args.is_empty() => {
            eprintln!("{}", usage());
            return EXIT_USAGE;
        }
        Err(e) => {
            eprintln!("{prog}: {e} (see {prog} --help)");
            return EXIT_USAGE;
        }
    };
    if a.list {
        return list(prog, &a);
    }
    let plan = match Plan::build(&a) {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("{prog}: {e}");
            return EXIT_USAGE;
        }
    };
    plan.execute(prog)
}

/// `--list`: saved names, one per line; with `-v` the whole entry and the file it came from.
fn list(prog: &str, a: &Args) -> i32 {
    let files = match hosts::load_all(a.file.as_deref()) {
        Ok(files) => files,
        Err(e) => {
            eprintln!("{prog}: {e}");
            return EXIT_USAGE;
        }
    };
    if files.is_empty() && a.verbose {
        let searched: Vec<String> = hosts::default_paths()
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        eprintln!("{prog}: no saved hosts (looked in {})", searched.join(", "));
    }
    for (i, file) in files.iter().enumerate() {
        if a.verbose {
            println!("# {}", file.path.display());
        }
        for host in &file.hosts {
            // A name an earlier file already defines is never reached: say so rather than hide it.
            let shadowed = files[..i].iter().any(|f| f.find(&host.names[0]).is_some());
            if a.verbose {
                let note = if shadowed { "  (shadowed)" } else { "" };
                println!("{}{note}", host.describe());
            } else if !shadowed {
                println!("{}", host.names.join(" "));
            }
        }
    }
    EXIT_OK
}

/// A knock ready to go: everything resolved and checked.
#[derive(Debug)]
struct Plan {
    /// What the user called the host, for messages.
    host: String,
    /// The one address every knock goes to.
    addr: SocketAddr,
    /// Ports and the protocol each is sent with.
    knocks: Vec<(u16, Proto)>,
    /// Pause between two knocks.
    delay: Duration,
    /// Port to probe afterwards.
    check: Option<u16>,
    verbose: bool,
}

impl Plan {
    /// Combines the command line with the saved host it names (command line wins).
    fn build(a: &Args) -> Result<Plan, String> {
        let host = a.host.clone().unwrap_or_default();
        let default_proto = if a.udp { Proto::Udp } else { Proto::Tcp };
        let (target, seq, delay_ms, family, check) = if a.ports.is_empty() {
            let files = hosts::load_all(a.file.as_deref())?;
            let Some(saved) = files.iter().find_map(|f| f.find(&host)) else {
                return Err(no_saved_host(&host, &files, a.file.is_some()));
            };
            (
                saved.hostname.clone(),
                saved.sequence.clone(),
                a.delay_ms.or(saved.delay_ms),
                a.family.or(saved.family),
                a.check.or(saved.check),
            )
        } else {
            (host.clone(), a.ports.clone(), a.delay_ms, a.family, a.check)
        };
        let addr = resolve::resolve(&target, family.unwrap_or(Family::Any))?;
        Ok(Plan {
            host,
            addr,
            knocks: seq
                .iter()
                .map(|k| (k.port, k.proto_or(default_proto)))
                .collect(),
            delay: Duration::from_millis(delay_ms.unwrap_or(0).into()),
            check,
            verbose: a.verbose,
        })
    }

    /// Sends the sequence once; returns how many knocks could not be sent.
    fn knock_once(&self, prog: &str) -> usize {
        let mut failed = 0;
        for (i, &(port, proto)) in self.knocks.iter().enumerate() {
            // Between knocks only: a pause after the last one would just delay the user.
            if i > 0 && !self.delay.is_zero() {
                sleep(self.delay);
            }
            let to = SocketAddr::new(self.addr.ip(), port);
            if self.verbose {
                println!("hitting {proto} {to}");
            }
            // A failed knock does not stop the sequence: the later ones may still get through
            // (a daemon counts what arrives), and stopping would change the timing.
            if let Err(e) = knock::send(to, proto) {
                failed += 1;
                if self.verbose {
                    eprintln!("{prog}: {proto} knock to {to}: {e}");
                }
            }
        }
        failed
    }

    fn execute(&self, prog: &str) -> i32 {
        if self.verbose && self.addr.ip().to_string() != self.host {
            println!("{} is {}", self.host, self.addr.ip());
        }
        let Some(port) = self.check else {
            let failed = self.knock_once(prog);
            return if failed == 0 { EXIT_OK } else { EXIT_CLOSED };
        };
        let probe = SocketAddr::new(self.addr.ip(), port);
        for attempt in 1..=CHECK_ATTEMPTS {
            self.knock_once(prog);
            match check::probe(probe, check::WINDOW) {
                Ok(()) => {
                    if self.verbose {
                        println!("port {port} is open (attempt {attempt})");
                    }
                    return EXIT_OK;
                }
                Err(e) if self.verbose => {
                    println!("port {port} still closed after attempt {attempt}: {e}")
                }
                Err(_) => {}
            }
        }
        eprintln!(
            "{prog}: {} port {port} still closed after {CHECK_ATTEMPTS} knocks",
            self.host
        );
        EXIT_CLOSED
    }
}

/// The one-line error for a NAME without ports that no saved-hosts file defines.
fn no_saved_host(name: &str, files: &[hosts::HostsFile], explicit: bool) -> String {
    if files.is_empty() && !explicit {
        let searched: Vec<String> = hosts::default_paths()
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        return format!(
            "no ports given and no saved host '{name}' (no saved-hosts file: looked in {})",
            searched.join(", ")
        );
    }
    let read: Vec<String> = files.iter().map(|f| f.path.display().to_string()).collect();
    format!(
        "no ports given and no saved host '{name}' in {}",
        read.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn args(argv: &[&str]) -> Args {
        match args::parse(argv) {
            Ok(Command::Run(a)) => a,
            other => panic!("{other:?}"),
        }
    }

    fn temp_conf(name: &str, text: &str) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!("latchkey-{}-{name}", std::process::id()));
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(text.as_bytes()).unwrap();
        path
    }

    #[test]
    fn command_line_plan() {
        let p = Plan::build(&args(&["-u", "-d", "5", "192.0.2.1", "1", "2:tcp"])).unwrap();
        assert_eq!(p.addr.ip().to_string(), "192.0.2.1");
        assert_eq!(p.knocks, [(1, Proto::Udp), (2, Proto::Tcp)]);
        assert_eq!(p.delay, Duration::from_millis(5));
        assert_eq!(p.check, None);
    }

    #[test]
    fn saved_host_plan_and_overrides() {
        let conf = temp_conf(
            "plan.conf",
            "Host home\n HostName 2001:db8::1\n Sequence 1,2:udp\n Delay 9\n Check 22\n",
        );
        let f = conf.to_str().unwrap();
        let p = Plan::build(&args(&["-F", f, "home"])).unwrap();
        assert_eq!(p.addr.ip().to_string(), "2001:db8::1");
        assert_eq!(p.knocks, [(1, Proto::Tcp), (2, Proto::Udp)]);
        assert_eq!((p.delay, p.check), (Duration::from_millis(9), Some(22)));
        let p = Plan::build(&args(&["-F", f, "-d0", "-c", "2222", "home"])).unwrap();
        assert_eq!((p.delay, p.check), (Duration::ZERO, Some(2222)));
        // The saved family is an IPv6 address: forcing IPv4 must fail, not pick another host.
        assert!(Plan::build(&args(&["-F", f, "-4", "home"])).is_err());
        let e = Plan::build(&args(&["-F", f, "office"])).unwrap_err();
        assert!(e.contains("no saved host 'office'") && e.contains(f), "{e}");
        std::fs::remove_file(conf).unwrap();
    }

    #[test]
    fn missing_file_is_an_error() {
        let e = Plan::build(&args(&["-F", "/nonexistent/knock.conf", "home"])).unwrap_err();
        assert!(e.starts_with("cannot read /nonexistent/knock.conf"), "{e}");
    }
}
