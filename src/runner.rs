//! Start and stop commands: `/bin/sh -c` children that never block the packet loop.
//!
//! Invariants: at most `max_children` commands run at once; the rest wait in a queue whose
//! length is bounded too (a command that finds it full is refused and logged, never
//! silently lost). Every exit status is logged. Reaping happens when the daemon's loop sees
//! SIGCHLD, never in a signal handler.

use log::{error, info, warn};
use std::collections::VecDeque;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};
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
    running: Vec<(Child, Rc<str>)>,
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
        let child = Command::new("/bin/sh")
            .arg("-c")
            .arg(&job.cmd)
            .stdin(Stdio::null())
            .spawn();
        match child {
            Ok(c) => self.running.push((c, job.door)),
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
            match self.running[i].0.try_wait() {
                Ok(Some(status)) => {
                    let (_, door) = self.running.swap_remove(i);
                    if let Some(code) = status.code() {
                        if code == 0 {
                            info!("{door}: command exited with status 0");
                        } else {
                            self.failures += 1;
                            warn!("{door}: command returned non-zero status code ({code})");
                        }
                    } else {
                        self.failures += 1;
                        let sig = status.signal().unwrap_or(0);
                        warn!("{door}: command killed by signal {sig}");
                    }
                }
                Ok(None) => i += 1,
                Err(e) => {
                    let (_, door) = self.running.swap_remove(i);
                    self.failures += 1;
                    error!("{door}: cannot wait for command: {e}");
                }
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
