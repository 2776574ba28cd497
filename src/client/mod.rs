//! The knock client (`latchkey knock`, or the binary run as `knock`).
//!
//! `run` turns the command line (and, for `latchkey knock NAME`, a saved host) into a [`Plan`]:
//! one resolved address, the knocks with their protocols, the pause between them and an
//! optional port to check; then it sends the knocks in order and, with a check, probes the port
//! and repeats the whole sequence a few times while the door stays closed.
//!
//! With `--spa` (or `-n NAME`, or a saved host holding fwknop keys) the plan's "knock" is one
//! fwknop SPA packet instead of a sequence; everything else (one address, `--check` and its
//! retries) is the same.
//!
//! Modules: `args` (command line), `hosts` (saved-hosts file), `sequence` (port syntax),
//! `resolve` (choosing the address), `knock` (sending one knock), `check` (the probe), `spa`
//! (SPA settings, packets and keygen), `fwknoprc` (fwknop's rc file).

pub mod args;
mod check;
pub mod fwknoprc;
pub mod hosts;
mod knock;
pub mod resolve;
pub mod sequence;
pub mod spa;

use std::net::SocketAddr;
use std::thread::sleep;
use std::time::Duration;

use argh::{ArgsInfo, FromArgs};
use args::{Args, Command, KnockArgs};
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

/// print a new SPA key pair (as fwknop --key-gen) for access.conf, .fwknoprc or a saved host
#[derive(FromArgs, ArgsInfo, Debug)]
#[argh(subcommand, name = "keygen", help_triggers("-h", "--help"))]
pub struct KeygenArgs {}

impl crate::cli::Getopt for KeygenArgs {
    const SHORT_VALUED: &'static str = "";
    const LONG_VALUED: &'static [&'static str] = &[];
}

/// Runs `latchkey keygen`: 32 random bytes for the encryption key and 64 for the HMAC key,
/// from the operating system, printed in base64.
pub fn keygen(_: KeygenArgs) -> i32 {
    match spa::keygen() {
        Ok(text) => {
            println!("{text}");
            EXIT_OK
        }
        Err(e) => {
            eprintln!("latchkey keygen: {e}");
            EXIT_CLOSED
        }
    }
}

/// Runs `latchkey knock` with its parsed command line; returns the exit status.
///
/// `prog` is the name used in messages: "latchkey knock", or "knock" for the symlink.
pub fn run(prog: &str, parsed: KnockArgs) -> i32 {
    let nothing = parsed == KnockArgs::default();
    let a = match parsed.check() {
        Ok(Command::Run(a)) => *a,
        Ok(Command::Version) => {
            println!("{prog} (latchkey {})", crate::cli::VERSION);
            return EXIT_OK;
        }
        // Nothing typed: show how. A mistake: one line saying what is wrong.
        Err(_) if nothing => {
            eprintln!("{}", crate::cli::help::<KnockArgs>(prog));
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
    /// The one address every knock goes to (with its IPv6 scope id, if any).
    addr: SocketAddr,
    /// Ports and the protocol each is sent with (empty for SPA).
    knocks: Vec<(u16, Proto)>,
    /// Instead of knocks: one SPA packet per attempt.
    spa: Option<spa::Request>,
    /// Pause between two knocks.
    delay: Duration,
    /// Port to probe afterwards.
    check: Option<u16>,
    verbose: bool,
}

/// `addr` with another port; unlike `SocketAddr::new(addr.ip(), port)` it keeps an IPv6
/// address's scope id (`fe80::1%eth0`), without which the kernel cannot send (EINVAL).
fn at(addr: SocketAddr, port: u16) -> SocketAddr {
    let mut to = addr;
    to.set_port(port);
    to
}

/// The SPA settings given on the command line.
fn spa_settings(a: &args::SpaArgs) -> spa::Settings {
    use spa::KeyText;
    spa::Settings {
        server: None,
        access: a.access.clone(),
        allow: a.allow,
        timeout: a.fw_timeout,
        port: a.port,
        key: (a.key_b64.clone().map(KeyText::Base64)).or(a.key.clone().map(KeyText::Raw)),
        hmac: (a.hmac_b64.clone().map(KeyText::Base64)).or(a.hmac.clone().map(KeyText::Raw)),
        user: a.user.clone(),
    }
}

impl Plan {
    /// Combines the command line with the saved host or `.fwknoprc` stanza it names (the
    /// command line wins).
    fn build(a: &Args) -> Result<Plan, String> {
        let default_proto = if a.udp { Proto::Udp } else { Proto::Tcp };
        let mut target = a.host.clone();
        let (mut seq, mut delay_ms, mut family, mut check) =
            (a.ports.clone(), a.delay_ms, a.family, a.check);
        // SPA settings beneath the command line's, when this is an SPA plan.
        let mut spa_base: Option<spa::Settings> = None;
        if let Some(name) = &a.spa.named {
            let path = (a.spa.rc_file.clone())
                .or_else(fwknoprc::default_path)
                .ok_or("no home directory to find .fwknoprc in: give --rc-file FILE")?;
            let rc = fwknoprc::load(&path, name)?;
            target = target.or(rc.server.clone());
            spa_base = Some(rc);
        } else if a.ports.is_empty() {
            let name = a.host.clone().unwrap_or_default();
            let files = hosts::load_all(a.file.as_deref())?;
            match files.iter().find_map(|f| f.find(&name)) {
                Some(saved) => {
                    target = Some(saved.hostname.clone());
                    seq = saved.sequence.clone();
                    delay_ms = delay_ms.or(saved.delay_ms);
                    family = family.or(saved.family);
                    check = check.or(saved.check);
                    if a.spa.wanted || saved.spa.has_key() {
                        spa_base = Some(saved.spa.clone());
                    }
                }
                // `--spa HOST`: a host, not a saved name.
                None if a.spa.wanted => spa_base = Some(spa::Settings::default()),
                None => return Err(no_saved_host(&name, &files, a.file.is_some())),
            }
        }
        let spa = match spa_base {
            Some(base) => Some(base.overlay(spa_settings(&a.spa)).request()?),
            None => None,
        };
        let target = target.ok_or("no host: give HOST (or SPA_SERVER in the stanza)")?;
        let addr = resolve::resolve(&target, family.unwrap_or(Family::Any))?;
        Ok(Plan {
            host: a.host.clone().unwrap_or(target),
            addr,
            knocks: if spa.is_some() {
                Vec::new()
            } else {
                seq.iter()
                    .map(|k| (k.port, k.proto_or(default_proto)))
                    .collect()
            },
            spa,
            delay: Duration::from_millis(delay_ms.unwrap_or(0).into()),
            check,
            verbose: a.verbose,
        })
    }

    /// Sends the sequence (or the SPA packet) once; returns how many packets could not be
    /// sent.
    fn knock_once(&self, prog: &str) -> usize {
        if let Some(r) = &self.spa {
            return self.spa_once(prog, r);
        }
        let mut failed = 0;
        for (i, (to, proto)) in self.targets().into_iter().enumerate() {
            // Between knocks only: a pause after the last one would just delay the user.
            if i > 0 && !self.delay.is_zero() {
                sleep(self.delay);
            }
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

    /// Where each knock goes, in order.
    fn targets(&self) -> Vec<(SocketAddr, Proto)> {
        let to = |&(port, proto): &(u16, Proto)| (at(self.addr, port), proto);
        self.knocks.iter().map(to).collect()
    }

    /// Sends one new SPA packet (fresh salt and timestamp: never a replay of the last one).
    fn spa_once(&self, prog: &str, r: &spa::Request) -> usize {
        let to = at(self.addr, r.port);
        let sent = spa::packet(r, spa::now()).and_then(|p| {
            if self.verbose {
                let access: Vec<String> = r.access.iter().map(|a| a.to_string()).collect();
                let who = if r.allow.is_unspecified() {
                    "the packet's source".to_string()
                } else {
                    r.allow.to_string()
                };
                println!(
                    "sending SPA to udp {to} ({} bytes): open {} for {who}",
                    p.len(),
                    access.join(",")
                );
            }
            spa::send(to, &p).map_err(|e| e.to_string())
        });
        match sent {
            Ok(()) => 0,
            Err(e) => {
                if self.verbose {
                    eprintln!("{prog}: SPA packet to {to}: {e}");
                }
                1
            }
        }
    }

    fn execute(&self, prog: &str) -> i32 {
        if self.verbose && self.addr.ip().to_string() != self.host {
            println!("{} is {}", self.host, self.addr.ip());
        }
        let Some(port) = self.check else {
            let failed = self.knock_once(prog);
            return if failed == 0 { EXIT_OK } else { EXIT_CLOSED };
        };
        let probe = at(self.addr, port);
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
        let parsed: KnockArgs = crate::cli::parse("latchkey knock", argv).unwrap();
        match parsed.check() {
            Ok(Command::Run(a)) => *a,
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

    #[test]
    fn ipv6_scope_id_reaches_every_knock() {
        // fe80::1%1: link-local, interface index 1. Knocks used to drop the scope id, and the
        // kernel refused the TCP knock's connect (EINVAL).
        let p = Plan::build(&args(&["-u", "fe80::1%1", "7000", "8000"])).unwrap();
        assert_eq!(p.addr.to_string(), "[fe80::1%1]:0");
        let to: Vec<String> = p.targets().iter().map(|(a, _)| a.to_string()).collect();
        assert_eq!(to, ["[fe80::1%1]:7000", "[fe80::1%1]:8000"]);
        assert_eq!(
            at(p.addr, 22).to_string(),
            "[fe80::1%1]:22",
            "the --check probe"
        );
        // tests/e2e/client.sh sends real TCP knocks to a link-local address this way.
    }

    #[test]
    fn spa_plans() {
        const K: &str = "W71GMIGS9Fvy0fWjHOUmThOiYm8VRsnfi7ctLoZnCBI=";
        const H: &str = "hmfIlOFc+JJkhrxebwuC3cU8GYXcxvOkzt5VxRp0Ry2erOnlGpB0PY/tzxL+kjIHqiIX977kYCFK+3i9MT9now==";
        // Everything on the command line.
        let p = Plan::build(&args(&[
            "--spa",
            "-A",
            "tcp/22",
            "-s",
            "--key-base64-rijndael",
            K,
            "--key-base64-hmac",
            H,
            "-p",
            "40001",
            "192.0.2.1",
        ]))
        .unwrap();
        let r = p.spa.as_ref().unwrap();
        assert_eq!((r.port, r.allow.is_unspecified()), (40001, true));
        assert!(p.knocks.is_empty());
        // A saved host holding fwknop lines (keygen's `NAME: value` form pastes as is).
        let conf = temp_conf(
            "spa.conf",
            &format!(
                "Host router\n HostName 192.0.2.1\n ACCESS tcp/22\n ALLOW_IP 192.0.2.2\n \
                 KEY_BASE64: {K}\n HMAC_KEY_BASE64: {H}\n FW_TIMEOUT 60\n Check 22\n"
            ),
        );
        let f = conf.to_str().unwrap();
        let p = Plan::build(&args(&["-F", f, "router"])).unwrap();
        let r = p.spa.as_ref().unwrap();
        assert_eq!((r.timeout, r.port, p.check), (60, 62201, Some(22)));
        // The command line wins over the saved host.
        let p = Plan::build(&args(&["-F", f, "-f", "5", "-A", "udp/53", "router"])).unwrap();
        let r = p.spa.unwrap();
        assert_eq!(
            (r.timeout, r.access[0].to_string()),
            (5, "udp/53".to_string())
        );
        std::fs::remove_file(conf).unwrap();
        // -n NAME from an rc file: host from SPA_SERVER, command line over the stanza.
        let rc = temp_conf(
            "fwknoprc",
            &format!("[default]\nSPA_SERVER_PORT 40002\n[router]\nSPA_SERVER 192.0.2.1\nACCESS tcp/22\nALLOW_IP source\nKEY_BASE64 {K}\nHMAC_KEY_BASE64 {H}\n"),
        );
        let rcf = rc.to_str().unwrap();
        let p = Plan::build(&args(&[
            "-n",
            "router",
            "--rc-file",
            rcf,
            "-a",
            "192.0.2.7",
        ]))
        .unwrap();
        let r = p.spa.as_ref().unwrap();
        assert_eq!(p.addr.ip().to_string(), "192.0.2.1");
        assert_eq!(
            (r.port, r.allow.to_string()),
            (40002, "192.0.2.7".to_string())
        );
        let e = Plan::build(&args(&["-n", "office", "--rc-file", rcf])).unwrap_err();
        assert!(e.ends_with("no stanza [office]"), "{e}");
        std::fs::remove_file(rc).unwrap();
        // No HMAC key: refused before anything is sent.
        let e = Plan::build(&args(&[
            "--spa",
            "-A",
            "tcp/22",
            "-s",
            "--key-rijndael",
            "k",
            "h",
        ]))
        .unwrap_err();
        assert!(e.contains("HMAC key"), "{e}");
    }
}
