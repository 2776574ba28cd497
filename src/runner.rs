//! Start and stop commands: `/bin/sh -c` children that never block the packet loop.
//!
//! Invariants: at most `max_children` commands run at once; the rest wait in a queue whose
//! length is bounded too (a command that finds it full is refused and logged, never
//! silently lost). Every exit status is logged. Reaping happens when the daemon's loop sees
//! SIGCHLD, never in a signal handler.

use log::{error, info, warn};
use std::collections::VecDeque;
use std::ffi::CString;
use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// A command to run on behalf of a door.
#[derive(Debug)]
struct Job {
    door: Rc<str>,
    cmd: String,
}

/// The bounded set of running children and the queue in front of it.
pub struct Runner {
    max_children: usize,
    max_queue: usize,
    running: Vec<(libc::pid_t, Rc<str>)>,
    queue: VecDeque<Job>,
    /// Commands that exited non-zero, were killed, could not start or were refused.
    pub failures: u64,
}

impl Runner {
    /// A runner allowing `max_children` at once and `max_queue` waiting.
    pub fn new(max_children: usize, max_queue: usize) -> Runner {
        Runner {
            max_children: max_children.max(1),
            max_queue,
            running: Vec::with_capacity(max_children),
            queue: VecDeque::with_capacity(max_queue),
            failures: 0,
        }
    }

    /// Runs `cmd` for `door` now, or as soon as a child slot is free.
    pub fn submit(&mut self, door: &str, cmd: String) {
        if self.running.len() < self.max_children {
            self.spawn(Job {
                door: door.into(),
                cmd,
            });
        } else if self.queue.len() < self.max_queue {
            self.queue.push_back(Job {
                door: door.into(),
                cmd,
            });
        } else {
            self.failures += 1;
            error!("{door}: too many commands waiting, not running: {cmd}");
        }
    }

    fn spawn(&mut self, job: Job) {
        info!("{}: running command: {}", job.door, job.cmd);
        match spawn_sh(&job.cmd) {
            Ok(pid) => self.running.push((pid, job.door)),
            Err(e) => {
                self.failures += 1;
                error!("{}: command could not start: {e}", job.door);
            }
        }
    }

    /// Collects finished children, logs how they ended, and starts queued commands.
    pub fn reap(&mut self) {
        let mut i = 0;
        while i < self.running.len() {
            let mut status = 0;
            // SAFETY: waitpid on our own child, writing into a local.
            let r = unsafe { libc::waitpid(self.running[i].0, &mut status, libc::WNOHANG) };
            if r == 0 {
                i += 1;
                continue;
            }
            let (_, door) = self.running.swap_remove(i);
            if r < 0 {
                self.failures += 1;
                error!(
                    "{door}: cannot wait for command: {}",
                    io::Error::last_os_error()
                );
            } else if libc::WIFEXITED(status) {
                let code = libc::WEXITSTATUS(status);
                if code == 0 {
                    info!("{door}: command exited with status 0");
                } else {
                    self.failures += 1;
                    warn!("{door}: command returned non-zero status code ({code})");
                }
            } else {
                self.failures += 1;
                let sig = libc::WTERMSIG(status);
                warn!("{door}: command killed by signal {sig}");
            }
        }
        while self.running.len() < self.max_children {
            let Some(job) = self.queue.pop_front() else {
                break;
            };
            self.spawn(job);
        }
    }

    /// Whether any command is running or waiting.
    pub fn busy(&self) -> bool {
        !self.running.is_empty() || !self.queue.is_empty()
    }

    /// Waits (polling) until every command has finished, or `limit` has passed.
    pub fn finish(&mut self, limit: Duration) {
        let end = Instant::now() + limit;
        self.reap();
        while self.busy() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(10));
            self.reap();
        }
        if self.busy() {
            warn!(
                "gave up waiting for {} command(s)",
                self.running.len() + self.queue.len()
            );
        }
    }
}

extern "C" {
    static environ: *const *const libc::c_char;
}

/// Starts `/bin/sh -c cmd` with stdin on /dev/null, the daemon's stdout/stderr, every
/// signal unblocked and SIGPIPE back to its default (the daemon blocks the signals it reads
/// through its signalfd; the command must not inherit that).
fn spawn_sh(cmd: &str) -> io::Result<libc::pid_t> {
    let cmd = CString::new(cmd).map_err(|_| io::Error::other("command contains a NUL byte"))?;
    let argv = [
        c"sh".as_ptr(),
        c"-c".as_ptr(),
        cmd.as_ptr(),
        std::ptr::null(),
    ];
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
        libc::posix_spawnattr_setflags(
            &mut attr,
            (libc::POSIX_SPAWN_SETSIGMASK | libc::POSIX_SPAWN_SETSIGDEF) as libc::c_short,
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
            c"/bin/sh".as_ptr(),
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
    fn children_are_bounded_queued_and_counted() {
        let dir = std::env::temp_dir().join(format!("lk-runner-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut r = Runner::new(1, 2);
        for i in 0..3 {
            let cmd = format!("sleep 0.1; echo {i} >> {}/order", dir.display());
            r.submit("d", cmd);
        }
        assert_eq!(r.running.len(), 1, "one child at a time");
        assert_eq!(r.queue.len(), 2);
        r.submit("d", "true".into());
        assert_eq!(r.failures, 1, "a full queue refuses, and counts it");
        r.finish(Duration::from_secs(5));
        assert!(!r.busy());
        let order = std::fs::read_to_string(dir.join("order")).expect("commands ran");
        assert_eq!(order, "0\n1\n2\n", "queued commands run in order");
        r.submit("d", "exit 3".into());
        r.submit("d", "kill -9 $$".into());
        r.finish(Duration::from_secs(5));
        assert_eq!(r.failures, 3, "a non-zero exit and a signal are failures");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
