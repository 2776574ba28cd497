//! `--check PORT`: did the door open? A real TCP connect to the protected port.
//!
//! The daemon runs its command a moment after the last knock arrives, so one connect right
//! away can lose that race. The probe therefore keeps trying for a short window: a refused
//! connect (the firewall's REJECT) is retried every 100 ms, and a silent one (DROP) waits at
//! most a second before the next try, so a rule that appears mid-wait is still seen quickly.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// How long one probe keeps trying after a knock before the knock is repeated.
pub const WINDOW: Duration = Duration::from_secs(2);

const PER_CONNECT: Duration = Duration::from_secs(1);
const PAUSE: Duration = Duration::from_millis(100);

/// Tries to connect to `addr` until it works or `window` has passed; returns the last error.
pub fn probe(addr: SocketAddr, window: Duration) -> io::Result<()> {
    let deadline = Instant::now() + window;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        // The stream is dropped at once: the connection was only a question.
        let err = match TcpStream::connect_timeout(&addr, left.clamp(PAUSE, PER_CONNECT)) {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(err);
        }
        sleep(left.min(PAUSE));
        if Instant::now() >= deadline {
            return Err(err);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn open_port_answers_at_once() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let t = Instant::now();
        probe(l.local_addr().unwrap(), WINDOW).unwrap();
        assert!(t.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn closed_port_gives_up_after_the_window() {
        // Bind then drop: the port is closed, so every connect is refused.
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let t = Instant::now();
        assert!(probe(addr, Duration::from_millis(300)).is_err());
        let took = t.elapsed();
        assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(2));
    }
}
