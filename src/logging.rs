//! Where the daemon's messages go: knockd's `LogFile` lines (`[YYYY-MM-DD HH:MM] message`),
//! syslog with `UseSyslog`, and stderr (`-v` for the knock lines, `-D` for debugging).
//!
//! Invariant: logging a line does not allocate; it is formatted into a fixed buffer on the
//! stack (long lines are cut), so the knock path can log its "Stage N" lines freely.

use log::{Level, LevelFilter, Log, Metadata, Record};
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

struct State {
    file: Option<File>,
    path: Option<PathBuf>,
    syslog: bool,
    stderr: LevelFilter,
}

static STATE: Mutex<State> = Mutex::new(State {
    file: None,
    path: None,
    syslog: false,
    stderr: LevelFilter::Warn,
});

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
    log::set_max_level(stderr.max(LevelFilter::Info));
}

/// Sends the knock lines to `path` (appending) and/or syslog under `ident`.
pub fn configure(
    path: Option<&Path>,
    syslog: bool,
    ident: &'static std::ffi::CStr,
) -> std::io::Result<()> {
    let file = match path {
        Some(p) => Some(OpenOptions::new().create(true).append(true).open(p)?),
        None => None,
    };
    if syslog {
        // SAFETY: `ident` is 'static as openlog requires; the flags are plain integers.
        unsafe { libc::openlog(ident.as_ptr(), libc::LOG_PID, libc::LOG_DAEMON) };
    }
    if let Ok(mut s) = STATE.lock() {
        s.file = file;
        s.path = path.map(Path::to_path_buf);
        s.syslog = syslog;
    }
    Ok(())
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
            if s.syslog {
                let prio = match r.level() {
                    Level::Error => libc::LOG_ERR,
                    Level::Warn => libc::LOG_WARNING,
                    _ => libc::LOG_NOTICE,
                };
                let mut c = [0u8; 2049];
                c[..msg.len()].copy_from_slice(msg.as_bytes());
                // SAFETY: `c` is NUL-terminated (msg is at most 2048 bytes); "%s" keeps the
                // message literal.
                unsafe { libc::syslog(prio, c"%s".as_ptr(), c.as_ptr() as *const libc::c_char) };
            }
        }
        if r.level() <= s.stderr {
            let mut line = msg;
            let _ = line.push('\n');
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
    }

    fn flush(&self) {}
}
