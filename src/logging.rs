//! Where the daemon's messages go: knockd's `LogFile` lines (`[YYYY-MM-DD HH:MM] message`),
//! syslog with `UseSyslog`, and stderr (`-v` for the knock lines, `-D` for debugging).
//!
//! Invariants, because lines are logged from the packet path:
//! - Logging a line does not allocate: it is formatted into a fixed buffer on the stack. A
//!   message longer than [`MSG_MAX`] keeps what fits, cut at a character boundary and marked
//!   with [`CUT`].
//! - No sink ever blocks the loop. The log file is opened non-blocking (a FIFO without room
//!   costs lines, not time), the syslog socket is non-blocking (a syslog daemon that stopped
//!   reading fills its queue, then lines are dropped), stderr is written only when poll says
//!   there is room. Each line is one write(2); what a sink could not take is counted and said
//!   on that sink once it takes lines again.
//! - The lines one packet can cause go through token buckets: knock lines (target [`KNOCK`]:
//!   stages, sequence timeouts, wrong knocks, evictions, extensions, repeats) and, apart, open
//!   lines (target [`OPEN`]: `OPEN SESAME`, a full grants table). Each passes [`BURST`] lines
//!   at once, then one per [`REFILL`]. What a bucket holds back is counted and reported with a
//!   "suppressed" line at once and then at most every [`REPORT_EVERY`], so a flood cannot fill
//!   a RAM-backed `/tmp` or push everything else out of the router's log ring. Other lines
//!   (commands, signals, errors) are not limited: they are bounded by the commands the daemon
//!   runs.

use crate::clock::millis;
use log::{Level, LevelFilter, Log, Metadata, Record};
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The log target of knock lines, the per-packet lines about a sequence in progress (stages,
/// timeouts, wrong knocks, evictions, extensions, repeats of an open, and `-D`'s line per
/// packet): `info!(target: logging::KNOCK, ...)`.
pub const KNOCK: &str = "knock";
/// The log target of open lines, one per completed sequence (`OPEN SESAME`, a grants table
/// that is full). Limited on their own, so that a flood of first knocks cannot hide an open,
/// and a flood at a one-step door (where every packet is a completed sequence) is limited too.
pub const OPEN: &str = "open";

/// Lines of one limited kind (knock, open) written back to back before its limit applies.
pub const BURST: u32 = 60;
/// After a burst, one line of that kind per this much time.
pub const REFILL: Duration = Duration::from_secs(1);
/// How often, at most, a "suppressed" line reports the lines held back since the last one.
pub const REPORT_EVERY: Duration = Duration::from_secs(60);

/// A token bucket for one kind of per-packet line, with the count of what it held back. Pure:
/// it is given `now`, so it is tested without waiting.
#[derive(Debug)]
pub struct Limiter {
    /// Lines that may be written now.
    tokens: u32,
    /// The time up to which refills have been credited (a line not yet fully earned is kept
    /// by not moving this past it).
    at: Option<Instant>,
    /// Lines held back since the last report.
    suppressed: u64,
    /// When this round of holding back was announced or last counted; `None` between rounds.
    reported: Option<Instant>,
}

/// What [`Limiter::check`] decided for one line.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Write the line.
    Write,
    /// Drop it.
    Suppress,
}

/// A report [`Limiter::due`] asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Report {
    /// Lines started being held back (said at once).
    Started,
    /// This many were held back since the last report.
    Count(u64),
}

impl Limiter {
    /// A full bucket.
    pub const fn new() -> Limiter {
        Limiter {
            tokens: BURST,
            at: None,
            suppressed: 0,
            reported: None,
        }
    }

    /// Takes a token for one knock line, if there is one.
    pub fn check(&mut self, now: Instant) -> Verdict {
        let at = *self.at.get_or_insert(now);
        let earned = millis(now.saturating_duration_since(at)) / millis(REFILL);
        if earned > 0 {
            let earned = earned.min(BURST as u64) as u32;
            self.tokens = (self.tokens + earned).min(BURST);
            self.at = Some(if self.tokens == BURST {
                now
            } else {
                at + REFILL * earned
            });
        }
        if self.tokens > 0 {
            self.tokens -= 1;
            Verdict::Write
        } else {
            self.suppressed += 1;
            Verdict::Suppress
        }
    }

    /// The report to make now, if one is due: when lines start being held back, at once;
    /// then the count, at most every [`REPORT_EVERY`]. A report period that held nothing back
    /// ends the round, so that the next flood is announced at once again.
    pub fn due(&mut self, now: Instant) -> Option<Report> {
        match self.reported {
            None if self.suppressed > 0 => {
                self.reported = Some(now);
                Some(Report::Started)
            }
            Some(t) if now.saturating_duration_since(t) >= REPORT_EVERY => {
                if self.suppressed == 0 {
                    self.reported = None;
                    return None;
                }
                self.reported = Some(now);
                Some(Report::Count(std::mem::take(&mut self.suppressed)))
            }
            _ => None,
        }
    }

    /// The count held back since the last report, whatever the time (at exit); ends the round.
    pub fn take(&mut self) -> u64 {
        self.reported = None;
        std::mem::take(&mut self.suppressed)
    }
}

impl Default for Limiter {
    fn default() -> Self {
        Limiter::new()
    }
}

/// Lines a sink could not take, reported on it once it takes lines again.
#[derive(Clone, Copy, Debug, Default)]
struct Dropped(u64);

struct Syslog {
    sock: Option<UnixDatagram>,
    /// No reconnect before this time: syslogd may be gone for a while, and each attempt costs
    /// two system calls.
    retry: Option<Instant>,
    dropped: Dropped,
}

struct State {
    file: Option<File>,
    path: Option<PathBuf>,
    file_dropped: Dropped,
    syslog: Option<Syslog>,
    /// The name syslog lines carry (`latchkey`, or `knockd` when run under that name); set
    /// once at start, kept across reloads.
    ident: &'static str,
    stderr: LevelFilter,
    stderr_dropped: Dropped,
    /// The limits on knock lines and open lines.
    knock: Limiter,
    open: Limiter,
}

static STATE: Mutex<State> = Mutex::new(State {
    file: None,
    path: None,
    file_dropped: Dropped(0),
    syslog: None,
    ident: "latchkey",
    stderr: LevelFilter::Warn,
    stderr_dropped: Dropped(0),
    knock: Limiter::new(),
    open: Limiter::new(),
});

/// Where syslogd (and OpenWrt's logd) read from.
const DEV_LOG: &str = "/dev/log";
/// `LOG_DAEMON`, shifted into place.
const FACILITY: u8 = 3 << 3;
/// How long a failed syslog connection is left alone before the next try.
const RECONNECT_EVERY: Duration = Duration::from_secs(1);

struct Logger;
static LOGGER: Logger = Logger;

type Line = heapless::String<2048>;

/// The longest message: a line less room for what a sink adds around it (a timestamp, or
/// syslog's `<PRI>ident[pid]: `, and the newline).
const MSG_MAX: usize = 2048 - 32;
/// The end of a message that was cut to [`MSG_MAX`].
const CUT: &str = " [cut]";

/// Formats a message into a line: what goes past [`MSG_MAX`] is cut off, at a character
/// boundary, and [`CUT`] ends the line (formatting then stops).
struct Cut<'a>(&'a mut Line);

impl std::fmt::Write for Cut<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let line = &mut *self.0;
        if line.len() + s.len() <= MSG_MAX {
            return line.push_str(s).map_err(|_| std::fmt::Error);
        }
        let keep = MSG_MAX - CUT.len();
        let mut end = keep.saturating_sub(line.len()).min(s.len());
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        let _ = line.push_str(&s[..end]);
        let mut end = line.len().min(keep);
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        line.truncate(end);
        let _ = line.push_str(CUT);
        Err(std::fmt::Error)
    }
}

/// Installs the logger. `stderr` is the most detailed level shown on stderr (warnings always
/// are; `-v` adds the knock lines, `-D` debugging); `ident` is the name on syslog lines.
pub fn init(stderr: LevelFilter, ident: &'static str) {
    if let Ok(mut s) = STATE.lock() {
        s.stderr = stderr.max(LevelFilter::Warn);
        s.ident = ident;
    }
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(stderr.max(LevelFilter::Warn));
}

/// Sends the lines to `path` (appending) and/or syslog, under the ident given to [`init`].
/// Called at start and on every reload. If the file cannot be opened, the previous file (if
/// any) stays and the error is returned; the syslog choice is applied either way.
pub fn configure(path: Option<&Path>, syslog: bool) -> std::io::Result<()> {
    let file = path.map(open).transpose();
    let Ok(mut s) = STATE.lock() else {
        return Ok(());
    };
    match (syslog, s.syslog.is_some()) {
        (true, false) => {
            s.syslog = Some(Syslog {
                sock: connect(),
                retry: None,
                dropped: Dropped(0),
            })
        }
        (false, true) => s.syslog = None,
        _ => {}
    }
    let result = match file {
        Ok(f) => {
            s.file = f;
            s.path = path.map(Path::to_path_buf);
            Ok(())
        }
        Err(e) => Err(e),
    };
    // Format the knock lines only when something will take them.
    if s.file.is_some() || s.syslog.is_some() {
        log::set_max_level(s.stderr.max(LevelFilter::Info));
    } else {
        log::set_max_level(s.stderr);
    }
    result
}

/// Opens the log file for appending, non-blocking (only a FIFO or a device cares).
fn open(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
}

fn connect() -> Option<UnixDatagram> {
    let sock = UnixDatagram::unbound().ok()?;
    sock.connect(DEV_LOG).ok()?;
    sock.set_nonblocking(true).ok()?;
    Some(sock)
}

/// Reopens the log file (after logrotate moved it; done on SIGHUP).
pub fn reopen() {
    if let Ok(mut s) = STATE.lock() {
        if let Some(p) = s.path.clone() {
            if let Ok(f) = open(&p) {
                s.file = Some(f);
            }
        }
    }
}

/// Writes the count of lines still held back, whatever the time (at exit).
pub fn flush() {
    if let Ok(mut s) = STATE.lock() {
        for kind in [KNOCK, OPEN] {
            let n = limiter(&mut s, kind).map_or(0, Limiter::take);
            if n > 0 {
                let mut msg = Line::new();
                let _ = write!(msg, "{n} {kind} log lines suppressed (rate limit)");
                emit(&mut s, Level::Warn, &msg);
            }
        }
    }
}

/// The limit that lines of `target` go through, if any.
fn limiter<'a>(s: &'a mut State, target: &str) -> Option<&'a mut Limiter> {
    match target {
        KNOCK => Some(&mut s.knock),
        OPEN => Some(&mut s.open),
        _ => None,
    }
}

/// Writes the report a limit asks for, if any.
fn report(s: &mut State, kind: &str, now: Instant) {
    let Some(report) = limiter(s, kind).and_then(|l| l.due(now)) else {
        return;
    };
    let mut msg = Line::new();
    let _ = match report {
        Report::Started => write!(
            msg,
            "too many {kind} lines: after {BURST} at once, 1 per {} s is logged; \
             the others are suppressed and counted every {} s",
            REFILL.as_secs(),
            REPORT_EVERY.as_secs()
        ),
        Report::Count(n) => write!(
            msg,
            "{n} {kind} log lines suppressed in the last {} s (rate limit)",
            REPORT_EVERY.as_secs()
        ),
    };
    emit(s, Level::Warn, &msg);
}

fn severity(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 5,
        _ => 7,
    }
}

/// One write(2) of the whole line; a short or failed write counts as dropped.
fn write_once(f: &mut File, bytes: &[u8]) -> bool {
    matches!(f.write(bytes), Ok(n) if n == bytes.len())
}

fn file_line(f: &mut File, dropped: &mut Dropped, msg: &str) {
    if dropped.0 > 0 {
        let mut note = Line::new();
        timestamp(&mut note);
        let _ = writeln!(note, "{} log lines could not be written here", dropped.0);
        if !write_once(f, note.as_bytes()) {
            dropped.0 += 1;
            return;
        }
        dropped.0 = 0;
    }
    let mut line = Line::new();
    timestamp(&mut line);
    let _ = line.push_str(msg);
    if line.push('\n').is_err() {
        line.pop();
        let _ = line.push('\n');
    }
    if !write_once(f, line.as_bytes()) {
        dropped.0 += 1;
    }
}

/// Sends one datagram to syslog; on a connection that went away (syslogd restarted) it
/// reconnects, at most once per [`RECONNECT_EVERY`]. Never waits.
fn syslog_send(sl: &mut Syslog, bytes: &[u8], now: Instant) -> bool {
    for _ in 0..2 {
        if let Some(sock) = &sl.sock {
            match sock.send(bytes) {
                Ok(_) => return true,
                // The reader is there but not reading: its queue is full. Drop the line.
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
                Err(_) => sl.sock = None,
            }
        }
        if sl.retry.is_some_and(|t| now < t) {
            return false;
        }
        sl.sock = connect();
        if sl.sock.is_none() {
            sl.retry = Some(now + RECONNECT_EVERY);
            return false;
        }
    }
    false
}

fn syslog_line(sl: &mut Syslog, ident: &str, level: Level, msg: &str, now: Instant) {
    let pid = std::process::id();
    if sl.dropped.0 > 0 {
        let mut note = Line::new();
        let _ = write!(
            note,
            "<{}>{ident}[{pid}]: {} log lines could not be sent to syslog (it was not reading)",
            FACILITY + 4,
            sl.dropped.0
        );
        if !syslog_send(sl, note.as_bytes(), now) {
            sl.dropped.0 += 1;
            return;
        }
        sl.dropped.0 = 0;
    }
    // The classic `<PRI>ident[pid]: message` form, which syslogd, rsyslog and logd all read.
    let mut line = Line::new();
    let _ = write!(
        line,
        "<{}>{ident}[{pid}]: {msg}",
        FACILITY + severity(level)
    );
    if !syslog_send(sl, line.as_bytes(), now) {
        sl.dropped.0 += 1;
    }
}

/// Whether a line can be written to stderr without blocking. A supervisor that stopped
/// reading our stderr (a full pipe) must cost it lines, never stall the packet loop; a line
/// is at most 2 KiB, and POLLOUT on a pipe means at least PIPE_BUF (4 KiB) is free.
fn stderr_has_room() -> bool {
    let mut p = libc::pollfd {
        fd: 2,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: poll on one valid pollfd, no waiting.
    unsafe { libc::poll(&mut p, 1, 0) == 1 && p.revents & libc::POLLOUT != 0 }
}

fn stderr_line(dropped: &mut Dropped, msg: &str) {
    if !stderr_has_room() {
        dropped.0 += 1;
        return;
    }
    // Room for a whole line was checked: the write completes at once, without std's lock.
    let err = |s: &str| crate::cli::write_to(2, s);
    if dropped.0 > 0 {
        let mut note = Line::new();
        let _ = writeln!(
            note,
            "{} log lines could not be written to stderr",
            dropped.0
        );
        err(&note);
        dropped.0 = 0;
    }
    let mut line = Line::new();
    let _ = line.push_str(msg);
    if line.push('\n').is_err() {
        line.pop();
        let _ = line.push('\n');
    }
    err(&line);
}

/// `[YYYY-MM-DD HH:MM] `, as knockd writes it: local time, or UTC without the `local-time`
/// feature (see Cargo.toml).
fn timestamp(line: &mut Line) {
    // SAFETY: time(NULL) and localtime_r/gmtime_r with valid pointers to locals.
    let tm = unsafe {
        let t = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        #[cfg(feature = "local-time")]
        libc::localtime_r(&t, &mut tm);
        #[cfg(not(feature = "local-time"))]
        libc::gmtime_r(&t, &mut tm);
        tm
    };
    let _ = write!(
        line,
        "[{:04}-{:02}-{:02} {:02}:{:02}] ",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min
    );
}

/// Writes one message to every sink that takes its level.
fn emit(s: &mut State, level: Level, msg: &str) {
    if level <= Level::Info {
        let now = Instant::now();
        let State {
            file,
            file_dropped,
            syslog,
            ident,
            ..
        } = s;
        if let Some(f) = file.as_mut() {
            file_line(f, file_dropped, msg);
        }
        if let Some(sl) = syslog.as_mut() {
            syslog_line(sl, ident, level, msg, now);
        }
    }
    if level <= s.stderr {
        stderr_line(&mut s.stderr_dropped, msg);
    }
}

impl Log for Logger {
    fn enabled(&self, m: &Metadata) -> bool {
        m.level() <= log::max_level()
    }

    fn log(&self, r: &Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let Ok(mut s) = STATE.lock() else {
            return;
        };
        let now = Instant::now();
        let verdict = limiter(&mut s, r.target()).map_or(Verdict::Write, |l| l.check(now));
        report(&mut s, KNOCK, now);
        report(&mut s, OPEN, now);
        if verdict == Verdict::Suppress {
            return;
        }
        let mut msg = Line::new();
        let _ = write!(Cut(&mut msg), "{}", r.args());
        emit(&mut s, r.level(), &msg);
    }

    fn flush(&self) {
        flush();
    }
}

#[cfg(test)]
mod tests;
