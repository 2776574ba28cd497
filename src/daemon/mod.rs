//! The daemon's loop: one thread, no async runtime. It sleeps in poll(2) on the capture
//! socket, a signalfd and a netlink socket, until a packet, a signal, an interface change or
//! the next deadline (an attempt's window or a grant's stop time) — never on a fixed tick.
//!
//! Signals are received as data through the signalfd, so no work ever happens in a signal
//! handler: SIGHUP reloads (parse first; on an error the old config stays), SIGTERM/SIGINT
//! close the open doors and exit, SIGUSR1 logs the counters, SIGCHLD reaps commands.

mod actions;
mod spa;

use crate::capture::{filter, Capture};
use crate::config::{self, Config, Door};
use crate::grant::Grants;
use crate::iface::{self, Addrs, Watch};
use crate::packet::{self, Dropped};
use crate::runner::{Job, Kind, Runner};
use crate::tracker::{Rules, Tracker};
use crate::{logging, state};
use actions::Actions;
pub use actions::Counters;
use log::{debug, error, info, warn};
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// What the command line decided, beyond the config file.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Interface given with `-i` (wins over the config's `Interface`).
    pub interface: Option<String>,
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
    iface: String,
    state_file: std::path::PathBuf,
    capture: Option<Capture>,
    addrs: Addrs,
    prog: Vec<filter::Insn>,
    watch: Watch,
    signals: OwnedFd,
    buf: Box<[u8; 4096]>,
    spa: spa::Spa,
}

fn rules(o: &config::Options) -> Rules {
    Rules {
        sweep_guard: o.sweep_guard,
        sweep_window: o.sweep_window,
        tolerate_repeats: o.tolerate_repeats,
    }
}

fn interface_of(cfg: &Config, s: &Settings) -> String {
    s.interface
        .clone()
        .or_else(|| cfg.options.interface.clone())
        .unwrap_or_else(|| "eth0".into())
}

fn signalfd() -> io::Result<OwnedFd> {
    // SAFETY: sigset manipulation on a local set, then signalfd on it; results checked.
    unsafe {
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
        let iface = interface_of(&cfg, &settings);
        let state_file = o
            .state_file
            .clone()
            .unwrap_or_else(|| state::default_path(&iface));
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
            iface,
            state_file,
            capture: None,
            addrs: Addrs::new(),
            prog: Vec::new(),
            watch,
            signals,
            buf: Box::new([0; 4096]),
            spa,
        };
        d.prog = d.build_filter();
        d.recover();
        Ok(d)
    }

    fn build_filter(&self) -> Vec<filter::Insn> {
        let cfg = &self.act.cfg;
        let mut ports = filter::ports(&cfg.doors, &rules(&cfg.options));
        ports.spa = spa::Spa::ports(cfg);
        filter::program(&ports, !self.act.settings.ipv4_only)
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

    /// Binds the capture to the interface as it is now; `false` if it does not exist.
    fn attach(&mut self) -> bool {
        let Some(index) = iface::index(&self.iface) else {
            if self.capture.take().is_some() {
                warn!(
                    "interface {} is gone; waiting for it to come back",
                    self.iface
                );
            }
            self.addrs.clear();
            return false;
        };
        self.addrs = iface::addresses(&self.iface);
        if self.capture.as_ref().is_some_and(|c| c.ifindex == index) {
            return true;
        }
        match Capture::open(index, &self.prog) {
            Ok(c) => {
                info!("listening on {} (index {index})", self.iface);
                self.capture = Some(c);
                true
            }
            Err(e) => {
                error!("cannot capture on {}: {e}", self.iface);
                false
            }
        }
    }

    fn run(&mut self) -> i32 {
        info!("starting up, listening on {}", self.iface);
        if !self.attach() {
            warn!(
                "interface {} does not exist yet; waiting for it",
                self.iface
            );
        }
        debug!("filter: {} instructions", self.prog.len());
        loop {
            let now = Instant::now();
            self.tick(now);
            let timeout = self.next_deadline().map_or(-1, |t| {
                let d = t.saturating_duration_since(Instant::now());
                // Round up, so that we never wake just before the deadline.
                (d.as_micros().div_ceil(1000)).min(i32::MAX as u128) as i32
            });
            let mut fds = [
                pollfd(self.signals.as_raw_fd()),
                pollfd(self.watch.raw_fd()),
                pollfd(self.capture.as_ref().map_or(-1, Capture::raw_fd)),
            ];
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
            if fds[0].revents != 0 {
                if let Some(code) = self.on_signals() {
                    return code;
                }
            }
            // A deleted link shows up as a missing index (attach drops the socket); a
            // re-created one has a new index, and attach binds to it.
            if fds[1].revents != 0 && self.watch.drain() {
                self.attach();
                debug!("addresses of {}: {:?}", self.iface, self.addrs);
            }
            if fds[2].revents != 0 {
                self.read_packets();
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        [
            self.tracker.next_deadline(),
            self.act.grants.next_deadline(),
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
            self.prog = self.build_filter();
            if let Some(c) = &self.capture {
                if let Err(e) = c.set_filter(&self.prog) {
                    error!("cannot update the capture filter: {e}");
                }
            }
        }
        if self.act.grants_changed {
            self.save_state(now);
        }
    }

    fn read_packets(&mut self) {
        // A bounded batch, so signals and deadlines are not starved by a flood.
        for _ in 0..256 {
            let Some(cap) = &self.capture else {
                return;
            };
            let frame = match cap.recv(&mut self.buf[..]) {
                Ok(Some(f)) => f,
                Ok(None) => return,
                Err(e) => {
                    // ENETDOWN after the link went down, ENXIO after it vanished: the netlink
                    // watch tells us when to bind again.
                    warn!("capture on {}: {e}", self.iface);
                    if e.raw_os_error() != Some(libc::ENETDOWN) {
                        self.capture = None;
                        self.attach();
                    }
                    return;
                }
            };
            if frame.pkttype == libc::PACKET_OUTGOING {
                continue;
            }
            let act = &mut self.act;
            act.counters.packets += 1;
            let k = match packet::parse(frame.ethertype, &self.buf[..frame.len]) {
                Ok(k) => k,
                Err(Dropped::Malformed) => {
                    act.counters.malformed += 1;
                    continue;
                }
                Err(_) => continue,
            };
            if act.settings.ipv4_only && k.src.is_ipv6() {
                continue;
            }
            debug!(
                "{} {} -> {} port {} flags {:#04x}",
                k.proto.name(),
                k.src,
                k.dst,
                k.port,
                k.flags
            );
            let now = Instant::now();
            self.spa
                .on_packet(act, frame.ethertype, &self.buf[..frame.len], &k, now);
            let addrs = &self.addrs;
            let local = |ip: IpAddr| addrs.contains(&ip);
            let doors = act.cfg.doors.clone(); // a reference count, not a copy
            self.tracker
                .on_knock(&doors, &local, &k, now, &mut |e| act.on_event(e, now));
            if act.doors_changed || act.grants_changed {
                self.tick(now);
            }
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
        if let Some(c) = &self.capture {
            self.act.counters.kernel_drops += c.drops();
        }
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
                let old = std::mem::replace(&mut self.act.cfg, new);
                self.act.reapply_burned();
                let iface = interface_of(&self.act.cfg, &self.act.settings);
                if iface != self.iface {
                    info!("interface changes from {} to {iface}", self.iface);
                    self.iface = iface;
                    self.capture = None;
                }
                let o = &self.act.cfg.options;
                if o.log_file != old.options.log_file && self.act.settings.log_file.is_none() {
                    let ident = "latchkey";
                    if let Err(e) = logging::configure(o.log_file.as_deref(), o.use_syslog, ident) {
                        error!("cannot open log file: {e}");
                    }
                }
                self.act.doors_changed = true;
                self.attach();
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
