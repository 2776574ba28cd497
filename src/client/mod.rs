//! The knock client (`latchkey knock`). Placeholder until the client lands.

/// Runs `latchkey knock` with `args` (after the command name); returns the exit status.
pub fn run(prog: &str, _args: &[&str]) -> i32 {
    eprintln!("{prog}: not built yet");
    2
}
