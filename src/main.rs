//! latchkey's entry point: hand the command line to the library, exit with its status.
//!
//! Kept thin on purpose (as ripgrep does): everything testable lives in the library.

fn main() {
    let args: Vec<String> = std::env::args().collect();
    std::process::exit(latchkey::cli::run(&args));
}
