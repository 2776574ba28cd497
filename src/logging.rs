//! Where the daemon's messages go: knockd's `LogFile` lines (`[YYYY-MM-DD HH:MM] message`),
//! syslog with `UseSyslog`, and stderr (`-v` for the knock lines, `-D` for debugging).
//!
//! Invariant: logging a line does not allocate; it is formatted into a fixed buffer on the
//! stack (long lines are cut), so the knock path can log its "Stage N" lines freely.

use log::{Level, LevelFilter, Log, Metadata, Record};
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

struct State {
    file: Option<File>,
    path: Option<PathBuf>,
    /// The syslog socket, and the ident to send with each line.
    syslog: Option<(Option<UnixDatagram>, &'static str)>,
    stderr: LevelFilter,
}

static STATE: Mutex<State> = Mutex::new(State {
    file: None,
    path: None,
    syslog: None,
    stderr: LevelFilter::Warn,
});

/// Where syslogd (and OpenWrt's logd) read from.
const DEV_LOG: &str = "/dev/log";
/// `LOG_DAEMON`, shifted into place.
const FACILITY: u8 = 3 << 3;

struct Logger;
static LOGGER: Logger = Logger;

type Line = heapless::String<2048>;

/// Installs the logger. `stderr` is the most detailed level shown on stderr (warnings always
/// are; `-v` adds the knock lines, `-D` debugging).
pub fn init(stderr: LevelFilter) {
    if let Ok(mut s) = STATE.lock() {
        s.stderr = stderr.max(LevelFilter::Warn);
    }
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(stderr.max(LevelFilter::Warn));
}

/// Sends the knock lines to `path` (appending) and/or syslog under `ident`.
pub fn configure(path: Option<&Path>, syslog: bool, ident: &'static str) -> std::io::Result<()> {
    let file = match path {
        Some(p) => Some(OpenOptions::new().create(true).append(true).open(p)?),
        None => None,
    };
    if let Ok(mut s) = STATE.lock() {
        s.file = file;
        s.path = path.map(Path::to_path_buf);
        s.syslog = syslog.then(|| (connect(), ident));
        // Format the knock lines only when something will take them.
        if s.file.is_some() || s.syslog.is_some() {
            log::set_max_level(s.stderr.max(LevelFilter::Info));
        } else {
            log::set_max_level(s.stderr);
        }
    }
    Ok(())
}

fn connect() -> Option<UnixDatagram> {
    let sock = UnixDatagram::unbound().ok()?;
    sock.connect(DEV_LOG).ok()?;
    Some(sock)
}

/// Sends one line to syslog, in the classic `<PRI>ident[pid]: message` form; reconnects
/// once if syslogd was restarted since.
fn send_syslog(conn: &mut Option<UnixDatagram>, ident: &str, level: Level, msg: &str) {
    let sev = match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 5,
        _ => 7,
    };
    let mut line = Line::new();
    let _ = write!(
        line,
        "<{}>{ident}[{}]: {msg}",
        FACILITY + sev,
        std::process::id()
    );
    for _ in 0..2 {
        if let Some(c) = conn.as_ref() {
            if c.send(line.as_bytes()).is_ok() {
                return;
            }
        }
        *conn = connect();
    }
}

/// Reopens the log file (after logrotate moved it; done on SIGHUP).
pub fn reopen() {
    if let Ok(mut s) = STATE.lock() {
        if let Some(p) = s.path.clone() {
            if let Ok(f) = OpenOptions::new().create(true).append(true).open(p) {
                s.file = Some(f);
            }
        }
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

fn timestamp(line: &mut Line) {
    // SAFETY: time(NULL) and localtime_r with valid pointers to locals.
    let tm = unsafe {
        let t = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&t, &mut tm);
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
        let mut msg = Line::new();
        let _ = write!(msg, "{}", r.args());
        if r.level() <= Level::Info {
            if let Some(f) = s.file.as_mut() {
                let mut line = Line::new();
                timestamp(&mut line);
                let _ = line.push_str(&msg);
                let _ = line.push('\n');
                let _ = f.write_all(line.as_bytes());
            }
            if let Some((conn, ident)) = s.syslog.as_mut() {
                send_syslog(conn, ident, r.level(), &msg);
            }
        }
        if r.level() <= s.stderr && stderr_has_room() {
            let mut line = msg;
            let _ = line.push('\n');
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
    }

    fn flush(&self) {}
}
