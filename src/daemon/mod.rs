//! The daemon's loop: one thread, no async runtime. It sleeps in poll(2) on the capture
//! sockets (one per interface, see [`listen`]), a signalfd and a netlink socket, until a
//! packet, a signal, an interface change or the next deadline (an attempt's window, a grant's
//! stop time, a capture retry) — never on a fixed tick.
//!
//! Signals are received as data through the signalfd, so no work ever happens in a signal
//! handler: SIGHUP reloads (parse first; on an error the old config stays), SIGTERM/SIGINT
//! close the open doors and exit, SIGUSR1 logs the counters, SIGCHLD reaps commands.

mod actions;
mod listen;
mod spa;

use crate::capture::filter;
use crate::config::{self, Config, Door};
use crate::grant::Grants;
use crate::iface::Watch;
use crate::packet::{self, Dropped};
use crate::runner::{Job, Kind, Runner};
use crate::tracker::{Rules, Tracker};
use crate::{logging, state};
use actions::Actions;
pub use actions::Counters;
use listen::{Doors, Fatal, Interfaces};
use log::{debug, error, info, warn};
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// What the command line decided, beyond the config file.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Interfaces given with `-i` (win over the config's `Interface`); empty if none.
    pub interfaces: Vec<String>,
    /// Ignore IPv6 (`-4`).
    pub ipv4_only: bool,
    /// Log file given with `-g` (wins over the config's `LogFile`).
    pub log_file: Option<std::path::PathBuf>,
    /// Set when run as fwknopd: the fwknopd.conf and access.conf to read again on SIGHUP.
    pub fwknop: Option<(std::path::PathBuf, Option<std::path::PathBuf>)>,
}

/// Runs the daemon until SIGTERM/SIGINT (exit 0) or a fatal error (exit 1).
pub fn run(cfg: Config, settings: Settings) -> i32 {
    match Daemon::new(cfg, settings) {
        Ok(mut d) => d.run(),
        Err(e) => {
            error!("cannot start: {e}");
            1
        }
    }
}

struct Daemon {
    tracker: Tracker,
    act: Actions,
    ifaces: Interfaces,
    state_file: std::path::PathBuf,
    watch: Watch,
    signals: OwnedFd,
    /// poll(2)'s array, refilled in place each round (capacity kept: no allocation).
    fds: Vec<libc::pollfd>,
    spa: spa::Spa,
}

/// Batches read per wake-up when poll says packets are waiting (256 packets).
const READ_BATCHES: usize = 16;
/// Batches read after a nap under a flood: everything that gathered, up to 4096 packets (a
/// few milliseconds of work), so the reads always outpace the flood they pace.
const NAP_BATCHES: usize = 256;

fn rules(o: &config::Options) -> Rules {
    Rules {
        sweep_guard: o.sweep_guard,
        sweep_window: o.sweep_window,
        tolerate_repeats: o.tolerate_repeats,
    }
}

/// The interfaces to watch: `-i` (each may be given more than once), else the config's
/// `Interface` list, else `eth0`, as knockd.
fn interfaces_of(cfg: &Config, s: &Settings) -> Vec<String> {
    let mut v = if !s.interfaces.is_empty() {
        s.interfaces.clone()
    } else if !cfg.options.interfaces.is_empty() {
        cfg.options.interfaces.clone()
    } else {
        vec!["eth0".to_string()]
    };
    let mut seen = Vec::new();
    v.retain(|n| {
        let new = !seen.contains(n);
        seen.push(n.clone());
        new
    });
    v
}

fn signalfd() -> io::Result<OwnedFd> {
    // SAFETY: sigset manipulation on a local set, then signalfd on it; results checked.
    unsafe {
        // A SIGCHLD inherited as ignored (`trap '' CHLD`, some supervisors) makes the kernel
        // reap children itself and send no SIGCHLD: the runner would never see a command end
        // and, after MaxChildren commands, would run nothing again.
        if libc::signal(libc::SIGCHLD, libc::SIG_DFL) == libc::SIG_ERR {
            return Err(io::Error::last_os_error());
        }
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [
            libc::SIGHUP,
            libc::SIGTERM,
            libc::SIGINT,
            libc::SIGUSR1,
            libc::SIGCHLD,
        ] {
            libc::sigaddset(&mut set, s);
        }
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

impl Daemon {
    fn new(cfg: Config, settings: Settings) -> io::Result<Daemon> {
        let signals = signalfd()?;
        let watch = Watch::open()?;
        let o = &cfg.options;
        let tracker = Tracker::new(rules(o), o.max_attempts, cfg.doors.len());
        let grants = Grants::new(o.max_grants);
        let runner = Runner::new(o.max_children, o.command_timeout, o.max_grants);
        let names = interfaces_of(&cfg, &settings);
        let state_file = o
            .state_file
            .clone()
            .unwrap_or_else(|| state::default_path(&names.join("+")));
        // fwknopd's ENABLE_DIGEST_PERSISTENCE N leaves no file: the cache is in memory only.
        let replay_file = match settings.fwknop {
            Some(_) => o.spa_replay_file.clone(),
            None => Some(o.spa_replay_file.clone().unwrap_or_else(|| {
                let mut p = state_file.clone().into_os_string();
                p.push(".spa-replay");
                p.into()
            })),
        };
        let spa = spa::Spa::new(&cfg, replay_file);
        let mut d = Daemon {
            tracker,
            act: Actions {
                cfg,
                settings,
                grants,
                runner,
                counters: Counters::default(),
                doors_changed: false,
                grants_changed: false,
                exiting: false,
                burned: Vec::new(),
            },
            fds: Vec::with_capacity(names.len() + 2),
            ifaces: Interfaces::new(&names),
            state_file,
            watch,
            signals,
            spa,
        };
        d.recover();
        Ok(d)
    }

    /// Binds, re-binds or releases the interfaces as they are now, with filters for their
    /// current addresses and the current doors (`force`: also those waiting to retry).
    fn refresh(&mut self, force: bool) -> Result<(), Fatal> {
        let cfg = &self.act.cfg;
        let spa = spa::Spa::ports(cfg);
        let doors = Doors {
            doors: &cfg.doors,
            rules: rules(&cfg.options),
            ipv6: !self.act.settings.ipv4_only,
            spa: &spa,
        };
        self.ifaces.refresh(&doors, Instant::now(), force)
    }

    /// Logs a failure that waiting will not fix, closes what is open, and gives the exit status.
    fn fatal(&mut self, f: Fatal) -> i32 {
        error!("{}", f.0);
        self.shutdown();
        1
    }

    /// Takes over the grants a previous run left open (see [`state`]): each one is kept as it
    /// was recorded; one that does not fit the table is closed at once.
    fn recover(&mut self) {
        let now = Instant::now();
        for r in state::load(&self.state_file) {
            let door = Rc::new(Door {
                name: r.door,
                sequence: config::Sequence::new(),
                one_time: None,
                seq_timeout: Duration::from_secs(1),
                cmd_timeout: r.left,
                start: None,
                start6: None,
                stop: Some(r.stop),
                stop6: None,
                flags: Default::default(),
                target: None,
            });
            let act = &mut self.act;
            act.grants_changed = true;
            if act
                .grants
                .adopt(door.clone(), r.src, now + r.left)
                .is_some()
            {
                info!(
                    "{}: {}: grant left open by a previous run, closing in {} s",
                    r.src,
                    door.name,
                    r.left.as_secs()
                );
                continue;
            }
            // No room to wait for its deadline: closing early is the safe side.
            warn!(
                "{}: {}: grant left open by a previous run does not fit MaxGrants ({}); \
                 closing it now",
                r.src, door.name, act.cfg.options.max_grants
            );
            if let Some(stop) = &door.stop {
                let job = Job {
                    grant: 0,
                    kind: Kind::Stop,
                    door: door.name.as_str().into(),
                    cmd: stop.clone(),
                };
                act.runner.submit(job, &mut |_| {});
            }
        }
    }

    fn run(&mut self) -> i32 {
        info!("starting up, listening on {}", self.ifaces.names());
        if let Err(e) = crate::capture::probe() {
            if e.permanent.is_some() {
                return self.fatal(Fatal(format!("cannot capture packets: {e}")));
            }
        }
        if let Err(f) = self.refresh(true) {
            return self.fatal(f);
        }
        loop {
            let now = Instant::now();
            self.tick(now);
            if self.ifaces.next_retry().is_some_and(|t| t <= now) {
                if let Err(f) = self.refresh(false) {
                    return self.fatal(f);
                }
            }
            if self.ifaces.nap_over(now) {
                // A flood: the packets gathered during the nap are read in full batches.
                self.read_all(now);
                continue;
            }
            let timeout = self.next_deadline().map_or(-1, |t| {
                let d = t.saturating_duration_since(Instant::now());
                // Round up, so that we never wake just before the deadline.
                crate::clock::millis_up(d).min(i32::MAX as u64) as i32
            });
            self.fds.clear();
            self.fds.push(pollfd(self.signals.as_raw_fd()));
            self.fds.push(pollfd(self.watch.raw_fd()));
            self.ifaces.poll_fds(&mut self.fds);
            let fds = &mut self.fds;
            // SAFETY: `fds` is a valid array of pollfd for its length.
            let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    error!("poll failed: {e}");
                    return 1;
                }
                continue;
            }
            if self.fds[0].revents != 0 {
                if let Some(code) = self.on_signals() {
                    return code;
                }
            }
            // Addresses first: packets read after this meet the new filter and addresses. A
            // deleted link shows up as a missing index (its socket is dropped); a re-created
            // one has a new index, and gets a new socket.
            if self.fds[1].revents != 0 && self.watch.drain() {
                if let Err(f) = self.refresh(false) {
                    return self.fatal(f);
                }
                for l in &self.ifaces.list {
                    for a in &l.addrs {
                        debug!("address of {}: {a}", l.name);
                    }
                }
            }
            let now = Instant::now();
            let mut n = 0;
            for i in 0..self.ifaces.list.len() {
                if self.fds.get(i + 2).is_some_and(|f| f.revents != 0) {
                    n += self.read_packets(i, now, READ_BATCHES);
                }
            }
            if n > 0 {
                self.ifaces.note_round(n, now);
            }
        }
    }

    /// Reads every interface (after a nap: what gathered, up to [`NAP_BATCHES`] batches each)
    /// and notes the round.
    fn read_all(&mut self, now: Instant) {
        let mut n = 0;
        for i in 0..self.ifaces.list.len() {
            n += self.read_packets(i, now, NAP_BATCHES);
        }
        self.ifaces.note_round(n, now);
    }

    fn next_deadline(&self) -> Option<Instant> {
        [
            self.tracker.next_deadline(),
            self.act.grants.next_deadline(),
            self.ifaces.next_retry(),
            self.ifaces.nap_until(),
            self.act.runner.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Time-driven work: kill commands past their limit, expire attempts, run due stop
    /// commands, rebuild what changed.
    fn tick(&mut self, now: Instant) {
        let act = &mut self.act;
        act.runner.enforce(now);
        self.tracker.expire(now, &mut |e| act.on_event(e, now));
        act.close_due(now);
        if act.doors_changed {
            act.doors_changed = false;
            if let Err(f) = self.refresh(true) {
                // Only a new socket can fail for good, and the sockets in place are kept.
                error!("{}", f.0);
            }
        }
        if self.act.grants_changed {
            self.save_state(now);
        }
    }

    /// Reads what is waiting on interface `i`, at most `batches` batches (so signals and
    /// deadlines are not starved by a flood); returns the packets read.
    fn read_packets(&mut self, i: usize, now: Instant, batches: usize) -> usize {
        let mut total = 0;
        for _ in 0..batches {
            let n = self.ifaces.recv(i, now);
            total += n;
            for j in 0..n {
                self.on_packet(i, j);
            }
            if n < crate::capture::BATCH {
                break;
            }
        }
        total
    }

    /// One packet of the last batch read from interface `i`.
    fn on_packet(&mut self, i: usize, j: usize) {
        let Some((frame, bytes)) = self.ifaces.packet(j) else {
            return;
        };
        // The filter already keeps these out; checked again in case it fell back to less.
        if frame.pkttype >= filter::PACKET_OTHERHOST {
            return;
        }
        let act = &mut self.act;
        act.counters.packets += 1;
        let k = match packet::parse(frame.ethertype, bytes) {
            Ok(k) => k,
            Err(Dropped::Malformed) => {
                act.counters.malformed += 1;
                return;
            }
            Err(_) => return,
        };
        if act.settings.ipv4_only && k.src.is_ipv6() {
            return;
        }
        debug!(
            target: logging::KNOCK,
            "{} {} -> {} port {} flags {:#04x}",
            k.proto.name(),
            k.src,
            k.dst,
            k.port,
            k.flags
        );
        let now = Instant::now();
        self.spa.on_packet(act, frame.ethertype, bytes, &k, now);
        let Some(l) = self.ifaces.list.get(i) else {
            return;
        };
        let addrs = &l.addrs;
        let local = |ip: IpAddr| addrs.contains(&ip);
        let doors = act.cfg.doors.clone(); // a reference count, not a copy
        self.tracker
            .on_knock(&doors, &local, &k, now, &mut |e| act.on_event(e, now));
        if act.doors_changed || act.grants_changed {
            self.tick(now);
        }
    }

    /// Handles every pending signal; `Some(status)` means exit with it.
    fn on_signals(&mut self) -> Option<i32> {
        loop {
            // SAFETY: signalfd_siginfo is plain data; read fills at most its size.
            let mut si: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
            let n = unsafe {
                libc::read(
                    self.signals.as_raw_fd(),
                    &mut si as *mut _ as *mut libc::c_void,
                    std::mem::size_of::<libc::signalfd_siginfo>(),
                )
            };
            if n != std::mem::size_of::<libc::signalfd_siginfo>() as isize {
                return None;
            }
            match si.ssi_signo as i32 {
                libc::SIGCHLD => self.act.reap(Instant::now()),
                libc::SIGUSR1 => {
                    self.collect_drops();
                    self.act.log_counters(&self.tracker)
                }
                libc::SIGHUP => self.reload(),
                libc::SIGTERM | libc::SIGINT => return Some(self.shutdown()),
                _ => {}
            }
        }
    }

    fn collect_drops(&mut self) {
        self.act.counters.kernel_drops += self.ifaces.drops();
    }

    fn reload(&mut self) {
        let path = self.act.cfg.path.clone();
        info!("SIGHUP: reloading {}", path.display());
        logging::reopen();
        let loaded = match &self.act.settings.fwknop {
            #[cfg(feature = "fwknopd")]
            Some((conf, access)) => crate::fwknop::config(conf, access.as_deref()),
            _ => config::load(&path),
        };
        match loaded {
            Ok(new) => {
                self.tracker
                    .reload(rules(&new.options), &self.act.cfg.doors, &new.doors);
                self.act.runner.set_limit(new.options.command_timeout);
                self.act.cfg = new;
                self.act.reapply_burned();
                let names = interfaces_of(&self.act.cfg, &self.act.settings);
                let before = self.ifaces.names();
                self.ifaces.rename(&names);
                if self.ifaces.names() != before {
                    info!("interfaces change from {before} to {}", self.ifaces.names());
                }
                // The sinks follow the new file (`-g` still wins); the syslog ident stays.
                let o = &self.act.cfg.options;
                let file = self.act.settings.log_file.as_ref().or(o.log_file.as_ref());
                if let Err(e) = logging::configure(file.map(|p| p.as_path()), o.use_syslog) {
                    error!("cannot open log file: {e}");
                }
                self.act.doors_changed = true;
                info!("reloaded: {} door(s)", self.act.cfg.doors.len());
            }
            Err(errors) => {
                for e in &errors {
                    error!("{e}");
                }
                error!("configuration has errors; keeping the old one");
            }
        }
    }

    /// SIGTERM/SIGINT: close the open doors (with `CloseOnExit`), give commands a short grace
    /// period, and record in the state file every grant whose stop command has not run, so
    /// that the next start closes it.
    fn shutdown(&mut self) -> i32 {
        self.collect_drops();
        let now = Instant::now();
        let act = &mut self.act;
        if act.cfg.options.close_on_exit {
            let mut ended = Vec::new();
            act.runner.drop_waiting_starts(&mut |d| ended.push(d));
            for d in ended {
                act.settle(d, now);
            }
            let mut open = Vec::new();
            act.grants.take_due(None, &mut |id| open.push(id));
            for id in open {
                if let Some(g) = act.grants.get(id) {
                    info!("{}: {}: closing at shutdown", g.src, g.door.name);
                }
                act.stop(id, now);
            }
        }
        // Written before waiting: if we are killed while waiting, the next start still knows.
        self.save_state(now);
        let act = &mut self.act;
        if act.runner.busy() {
            info!(
                "waiting for {} command(s) (at most {} s)...",
                act.runner.pending(),
                SHUTDOWN_GRACE.as_secs()
            );
        }
        let end = Instant::now() + SHUTDOWN_GRACE;
        while act.runner.busy() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(10));
            let now = Instant::now();
            act.runner.enforce(now);
            act.reap(now);
        }
        act.exiting = true;
        if act.runner.busy() {
            warn!(
                "gave up waiting for {} command(s); killing them, the next start closes what \
                 is left",
                act.runner.pending()
            );
            let mut ended = Vec::new();
            act.runner.kill_all(&mut |d| ended.push(d));
            let now = Instant::now();
            for d in ended {
                act.settle(d, now);
            }
        }
        self.save_state(Instant::now());
        self.act.log_counters(&self.tracker);
        info!("shutting down");
        0
    }

    fn save_state(&mut self, now: Instant) {
        self.act.grants_changed = false;
        if let Err(e) = state::save(&self.state_file, &self.act.grants, now) {
            warn!("cannot write state file {}: {e}", self.state_file.display());
        }
    }
}

/// How long shutdown waits for commands: below procd's default 5 s before its SIGKILL, so
/// the state file is final when the service manager gives up on us.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(4);

fn pollfd(fd: i32) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}
