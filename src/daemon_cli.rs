//! `latchkey daemon` and `latchkey check`: knockd's command line. Placeholder.

/// Runs the daemon with knockd's options.
pub fn run(prog: &str, _args: &[&str]) -> i32 {
    eprintln!("{prog}: not built yet");
    2
}

/// Parses a config and prints the doors.
pub fn check(prog: &str, _args: &[&str]) -> i32 {
    eprintln!("{prog}: not built yet");
    2
}
