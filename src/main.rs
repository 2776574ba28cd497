//! latchkey's entry point: hand the command line to the library, exit with its status.
//!
//! Kept thin on purpose (as ripgrep does): everything testable lives in the library. On Unix
//! this is C's `main` itself, without std's runtime start-up (see `latchkey::cli::c_main` for
//! why, and for what of it is kept).
#![cfg_attr(all(unix, not(test)), no_main)]

#[cfg(all(unix, not(test)))]
#[no_mangle]
extern "C" fn main(argc: libc::c_int, argv: *const *const libc::c_char) -> libc::c_int {
    // SAFETY: argc and argv are what the C runtime hands to main.
    unsafe { latchkey::cli::c_main(argc, argv) }
}

// (Also what `cargo test` builds: its harness brings its own entry point.)
#[cfg(any(not(unix), test))]
fn main() {
    let args: Vec<String> = std::env::args().collect();
    std::process::exit(latchkey::cli::run(&args));
}
