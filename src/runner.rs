//! Start and stop commands: `/bin/sh -c` children that never block the packet loop.
//!
//! Invariants:
//! - Start and stop commands have separate pools of `max_children` running children and
//!   separate queues, and a waiting stop is always started before a waiting start: a flood of
//!   start commands, or hung ones, never delays or refuses a stop command.
//! - Nothing here is refused for lack of room: every job belongs to a grant, a grant has at
//!   most one job at a time, and the grant table is bounded, so the queues are too.
//! - Every command has a time limit; past it, its whole process group is killed and the
//!   command counts as failed. The daemon wakes for that deadline ([`Runner::next_deadline`]).
//! - Every exit status is logged. Reaping happens when the daemon's loop sees SIGCHLD (or
//!   polls, at shutdown), never in a signal handler.

use log::{error, info, warn};
use std::collections::VecDeque;
use std::ffi::CString;
use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Which command of a grant a job is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The start command (opens the door).
    Start,
    /// The stop command (closes it).
    Stop,
}

/// A command to run on behalf of a grant.
#[derive(Debug)]
pub struct Job {
    /// The grant it belongs to (0: none).
    pub grant: u32,
    /// Start or stop.
    pub kind: Kind,
    /// The door's name, for the log.
    pub door: Rc<str>,
    /// The command line, already expanded.
    pub cmd: String,
}

/// How a command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It exited with this status.
    Exited(i32),
    /// A signal killed it (not us).
    Signalled(i32),
    /// It outlived its time limit and was killed.
    TimedOut,
    /// It could not be started at all.
    NotStarted,
}

impl Outcome {
    /// Whether the command succeeded (exit status 0).
    pub fn ok(self) -> bool {
        self == Outcome::Exited(0)
    }
}

/// A command that ended, handed back by [`Runner::reap`].
#[derive(Debug)]
pub struct Done {
    /// The grant it belonged to.
    pub grant: u32,
    /// Start or stop.
    pub kind: Kind,
    /// How it ended.
    pub outcome: Outcome,
}

struct Child {
    pid: libc::pid_t,
    job: Job,
    deadline: Instant,
    killed: bool,
}

/// The running children and the queues in front of them.
pub struct Runner {
    max_children: usize,
    limit: Duration,
    running: Vec<Child>,
    starts: VecDeque<Job>,
    stops: VecDeque<Job>,
    /// Commands that exited non-zero, were killed, or could not start.
    pub failures: u64,
}

impl Runner {
    /// A runner allowing `max_children` start commands and as many stop commands at once,
    /// each for at most `limit`; `expected` sizes the queues (the grant table's capacity).
    pub fn new(max_children: usize, limit: Duration, expected: usize) -> Runner {
        let max_children = max_children.max(1);
        Runner {
            max_children,
            limit,
            running: Vec::with_capacity(max_children * 2),
            starts: VecDeque::with_capacity(expected),
            stops: VecDeque::with_capacity(expected),
            failures: 0,
        }
    }

    /// Takes a new time limit (after a reload); it applies to commands started from now on.
    pub fn set_limit(&mut self, limit: Duration) {
        self.limit = limit;
    }

    /// Runs `job` now, or as soon as a child slot of its kind is free. A command that cannot
    /// be started is handed to `done` at once.
    pub fn submit(&mut self, job: Job, done: &mut dyn FnMut(Done)) {
        match job.kind {
            Kind::Start => self.starts.push_back(job),
            Kind::Stop => self.stops.push_back(job),
        }
        self.dispatch(done);
    }

    fn count(&self, kind: Kind) -> usize {
        self.running.iter().filter(|c| c.job.kind == kind).count()
    }

    /// Starts queued commands while their pool has room, stops first.
    fn dispatch(&mut self, done: &mut dyn FnMut(Done)) {
        while self.count(Kind::Stop) < self.max_children {
            let Some(job) = self.stops.pop_front() else {
                break;
            };
            self.spawn(job, done);
        }
        while self.count(Kind::Start) < self.max_children {
            let Some(job) = self.starts.pop_front() else {
                break;
            };
            self.spawn(job, done);
        }
    }

    fn spawn(&mut self, job: Job, done: &mut dyn FnMut(Done)) {
        info!("{}: running command: {}", job.door, job.cmd);
        match spawn_sh(&job.cmd) {
            Ok(pid) => self.running.push(Child {
                pid,
                job,
                deadline: Instant::now() + self.limit,
                killed: false,
            }),
            Err(e) => {
                self.failures += 1;
                error!("{}: command could not start: {e}", job.door);
                done(Done {
                    grant: job.grant,
                    kind: job.kind,
                    outcome: Outcome::NotStarted,
                });
            }
        }
    }

    /// When the earliest running command reaches its time limit.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.running
            .iter()
            .filter(|c| !c.killed)
            .map(|c| c.deadline)
            .min()
    }

    /// Kills (SIGKILL, whole process group) every command past its time limit at `now`. The
    /// kill is reported by [`Runner::reap`] once the child is collected.
    pub fn enforce(&mut self, now: Instant) {
        for c in self.running.iter_mut().filter(|c| !c.killed) {
            if c.deadline <= now {
                warn!(
                    "{}: command still running after {} s, killing it: {}",
                    c.job.door,
                    self.limit.as_secs(),
                    c.job.cmd
                );
                kill_group(c.pid);
                c.killed = true;
            }
        }
    }

    /// Collects finished children, logs how they ended, hands each to `done`, and starts
    /// queued commands.
    pub fn reap(&mut self, done: &mut dyn FnMut(Done)) {
        let mut i = 0;
        while i < self.running.len() {
            let mut status = 0;
            // SAFETY: waitpid on our own child, writing into a local.
            let r = unsafe { libc::waitpid(self.running[i].pid, &mut status, libc::WNOHANG) };
            if r == 0 {
                i += 1;
                continue;
            }
            let c = self.running.swap_remove(i);
            let door = &c.job.door;
            let outcome = if r < 0 {
                // ECHILD: someone else reaped it (SIGCHLD ignored by a parent is reset at
                // start, so this should not happen); its status is lost.
                error!(
                    "{door}: cannot wait for command: {}",
                    io::Error::last_os_error()
                );
                Outcome::Signalled(0)
            } else if c.killed {
                Outcome::TimedOut
            } else if libc::WIFEXITED(status) {
                Outcome::Exited(libc::WEXITSTATUS(status))
            } else {
                Outcome::Signalled(libc::WTERMSIG(status))
            };
            match outcome {
                Outcome::Exited(0) => info!("{door}: command exited with status 0"),
                Outcome::Exited(code) => {
                    warn!("{door}: command returned non-zero status code ({code})")
                }
                Outcome::Signalled(sig) => warn!("{door}: command killed by signal {sig}"),
                Outcome::TimedOut => warn!(
                    "{door}: command killed after its time limit of {} s",
                    self.limit.as_secs()
                ),
                Outcome::NotStarted => {}
            }
            if !outcome.ok() {
                self.failures += 1;
            }
            done(Done {
                grant: c.job.grant,
                kind: c.job.kind,
                outcome,
            });
        }
        self.dispatch(done);
    }

    /// Whether any command is running or waiting.
    pub fn busy(&self) -> bool {
        !self.running.is_empty() || !self.starts.is_empty() || !self.stops.is_empty()
    }

    /// Commands running or waiting.
    pub fn pending(&self) -> usize {
        self.running.len() + self.starts.len() + self.stops.len()
    }

    /// Drops the start commands that have not started yet (shutdown: nothing new opens).
    pub fn drop_waiting_starts(&mut self, done: &mut dyn FnMut(Done)) {
        while let Some(job) = self.starts.pop_front() {
            done(Done {
                grant: job.grant,
                kind: job.kind,
                outcome: Outcome::NotStarted,
            });
        }
    }

    /// Kills every command still running (at exit, after the grace period) and reaps them.
    pub fn kill_all(&mut self, done: &mut dyn FnMut(Done)) {
        for c in &mut self.running {
            kill_group(c.pid);
            c.killed = true;
        }
        for c in self.running.drain(..) {
            let mut status = 0;
            // SAFETY: blocking waitpid on our own, just killed, child.
            unsafe { libc::waitpid(c.pid, &mut status, 0) };
            warn!("{}: command killed at exit: {}", c.job.door, c.job.cmd);
            done(Done {
                grant: c.job.grant,
                kind: c.job.kind,
                outcome: Outcome::TimedOut,
            });
        }
    }
}

/// SIGKILL to the command's process group (it leads its own, see [`spawn_sh`]), so that a
/// pipeline or a sub-shell it started dies with it.
fn kill_group(pid: libc::pid_t) {
    // SAFETY: kill(2) with a negative pid names the process group; no memory involved.
    unsafe {
        if libc::kill(-pid, libc::SIGKILL) != 0 {
            libc::kill(pid, libc::SIGKILL);
        }
    }
}

extern "C" {
    static environ: *const *const libc::c_char;
}

/// The words of `cmd` when a shell would do nothing with it but split it at blanks and run
/// its first word, an absolute path (`/sbin/iptables -I INPUT 1 -s 192.0.2.7 -j ACCEPT`):
/// such a command is executed directly, one exec instead of `/bin/sh`'s and then the
/// command's (about 150 us less per command on the benchmark machine, a third of an SPA
/// grant's cost). Anything a shell would read differently (quotes, `$`, globs, redirections,
/// `;`, `&`, `|`, `~`, `#`, `\`, `=` assignments, parentheses) or a first word that is not an
/// absolute path (a builtin such as `exit`, or a name to look up in PATH) goes to `/bin/sh
/// -c`. One difference remains: a missing program fails to start, where the shell would
/// exit 127; both are a failed command.
pub fn direct_words(cmd: &str) -> Option<Vec<&str>> {
    let plain = |c: char| c.is_ascii_alphanumeric() || " \t_-./:,@%+".contains(c);
    if !cmd.chars().all(plain) {
        return None;
    }
    let words: Vec<&str> = cmd.split_ascii_whitespace().collect();
    words.first().filter(|w| w.starts_with('/'))?;
    Some(words)
}

/// Starts `cmd` (directly when [`direct_words`] allows, else through `/bin/sh -c`) in a
/// process group of its own, with stdin on /dev/null, the daemon's stdout/stderr, every
/// signal unblocked and SIGPIPE back to its default (the daemon blocks the signals it reads
/// through its signalfd; the command must not inherit that).
fn spawn_sh(cmd: &str) -> io::Result<libc::pid_t> {
    let nul = |_| io::Error::other("command contains a NUL byte");
    let words: Vec<CString> = match direct_words(cmd) {
        Some(w) => w.into_iter().map(CString::new).collect::<Result<_, _>>(),
        None => ["/bin/sh", "-c", cmd]
            .into_iter()
            .map(CString::new)
            .collect(),
    }
    .map_err(nul)?;
    let mut argv: Vec<*const libc::c_char> = words.iter().map(|w| w.as_ptr()).collect();
    argv.push(std::ptr::null());
    let check = |r: libc::c_int| {
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::from_raw_os_error(r))
        }
    };
    // SAFETY: the attribute and file-action objects are initialised before use and destroyed
    // after; every pointer handed to posix_spawn outlives the call.
    unsafe {
        let mut attr: libc::posix_spawnattr_t = std::mem::zeroed();
        let mut fa: libc::posix_spawn_file_actions_t = std::mem::zeroed();
        check(libc::posix_spawnattr_init(&mut attr))?;
        check(libc::posix_spawn_file_actions_init(&mut fa))?;
        let mut none: libc::sigset_t = std::mem::zeroed();
        let mut pipe: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigemptyset(&mut pipe);
        libc::sigaddset(&mut pipe, libc::SIGPIPE);
        libc::posix_spawnattr_setsigmask(&mut attr, &none);
        libc::posix_spawnattr_setsigdefault(&mut attr, &pipe);
        libc::posix_spawnattr_setpgroup(&mut attr, 0);
        libc::posix_spawnattr_setflags(
            &mut attr,
            (libc::POSIX_SPAWN_SETSIGMASK
                | libc::POSIX_SPAWN_SETSIGDEF
                | libc::POSIX_SPAWN_SETPGROUP) as libc::c_short,
        );
        libc::posix_spawn_file_actions_addopen(
            &mut fa,
            0,
            c"/dev/null".as_ptr(),
            libc::O_RDONLY,
            0,
        );
        let mut pid: libc::pid_t = 0;
        let r = libc::posix_spawn(
            &mut pid,
            argv[0],
            &fa,
            &attr,
            argv.as_ptr() as *const *mut libc::c_char,
            environ as *const *mut libc::c_char,
        );
        libc::posix_spawn_file_actions_destroy(&mut fa);
        libc::posix_spawnattr_destroy(&mut attr);
        check(r)?;
        Ok(pid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_commands_with_an_absolute_path_run_without_the_shell() {
        assert_eq!(
            direct_words("/sbin/iptables -I INPUT 1 -s 2001:db8::7 -p tcp --dport 22 -j ACCEPT"),
            Some(vec![
                "/sbin/iptables",
                "-I",
                "INPUT",
                "1",
                "-s",
                "2001:db8::7",
                "-p",
                "tcp",
                "--dport",
                "22",
                "-j",
                "ACCEPT"
            ])
        );
        assert_eq!(direct_words(" /bin/true\t"), Some(vec!["/bin/true"]));
        for shell in [
            "iptables -I INPUT",       // looked up in PATH
            "exit 1",                  // a builtin
            "/bin/echo $HOME",         // expansion
            "/bin/echo 'a b'",         // quotes
            "/bin/true; /bin/false",   // a list
            "/bin/echo a > /tmp/x",    // redirection
            "/bin/ls *",               // a glob
            "A=1 /bin/true",           // an assignment
            "/bin/echo ~",             // tilde
            "/bin/true # comment",     // a comment
            "/bin/echo a\\ b",         // an escape
            "/bin/true && /bin/false", // and-or
            "",                        // nothing
        ] {
            assert_eq!(direct_words(shell), None, "{shell}");
        }
    }

    fn job(grant: u32, kind: Kind, cmd: &str) -> Job {
        Job {
            grant,
            kind,
            door: "d".into(),
            cmd: cmd.into(),
        }
    }

    /// Reaps (polling) until nothing is pending or `limit` passed, enforcing time limits.
    fn settle(r: &mut Runner, limit: Duration, out: &mut Vec<Done>) {
        let end = Instant::now() + limit;
        while r.busy() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(10));
            r.enforce(Instant::now());
            r.reap(&mut |d| out.push(d));
        }
    }

    #[test]
    fn starts_are_bounded_queued_in_order_and_counted() {
        let dir = std::env::temp_dir().join(format!("lk-runner-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut out = Vec::new();
        let mut r = Runner::new(1, Duration::from_secs(10), 8);
        for i in 0..3 {
            let cmd = format!("sleep 0.1; echo {i} >> {}/order", dir.display());
            r.submit(job(i + 1, Kind::Start, &cmd), &mut |d| out.push(d));
        }
        assert_eq!(r.running.len(), 1, "one start at a time");
        assert_eq!(r.starts.len(), 2);
        settle(&mut r, Duration::from_secs(5), &mut out);
        let order = std::fs::read_to_string(dir.join("order")).expect("commands ran");
        assert_eq!(order, "0\n1\n2\n", "queued commands run in order");
        assert_eq!(out.len(), 3);
        assert!(out.iter().all(|d| d.outcome.ok()));
        out.clear();
        r.submit(job(7, Kind::Start, "exit 3"), &mut |d| out.push(d));
        r.submit(job(8, Kind::Start, "kill -9 $$"), &mut |d| out.push(d));
        settle(&mut r, Duration::from_secs(5), &mut out);
        assert_eq!(r.failures, 2, "a non-zero exit and a signal are failures");
        assert!(out.contains(&Done {
            grant: 7,
            kind: Kind::Start,
            outcome: Outcome::Exited(3)
        }));
        assert!(out.contains(&Done {
            grant: 8,
            kind: Kind::Start,
            outcome: Outcome::Signalled(9)
        }));
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn hung_starts_never_hold_back_a_stop_and_are_killed_at_their_limit() {
        let mut out = Vec::new();
        let mut r = Runner::new(2, Duration::from_millis(300), 8);
        for g in 1..=4 {
            // The sub-shell's sleep must die with it: the whole group is killed.
            r.submit(job(g, Kind::Start, "sleep 30 & wait"), &mut |d| out.push(d));
        }
        r.submit(job(9, Kind::Stop, "true"), &mut |d| out.push(d));
        assert_eq!(r.count(Kind::Start), 2);
        assert_eq!(
            r.count(Kind::Stop),
            1,
            "the stop runs at once beside hung starts"
        );
        let t0 = Instant::now();
        settle(&mut r, Duration::from_secs(5), &mut out);
        assert!(!r.busy(), "every hung command was killed");
        assert!(t0.elapsed() < Duration::from_secs(3));
        assert_eq!(out[0].grant, 9, "the stop ended first");
        let timed_out = out
            .iter()
            .filter(|d| d.outcome == Outcome::TimedOut)
            .count();
        assert_eq!(timed_out, 4);
    }

    impl PartialEq for Done {
        fn eq(&self, o: &Done) -> bool {
            self.grant == o.grant && self.kind == o.kind && self.outcome == o.outcome
        }
    }
}
