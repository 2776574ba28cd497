//! Command-line dispatch: `latchkey daemon|check|knock|keygen`, and the knockd/knock
//! personalities.
//!
//! Every command line is declared with argh (`#[derive(FromArgs)]` structs beside the code that
//! uses them: `daemon_cli`, `client::args`). argh reads one option per word, so [`getopt`]
//! first rewrites the getopt forms that knockd, knock and fwknop users type (`-vD`, `-ieth0`,
//! `--config=FILE`, `-p1234`); it learns which options take a value from the same argh
//! declarations (`ArgsInfo` of each command), so the two never disagree.
//!
//! The binary answers to three names. Run as `knockd` it is `latchkey daemon`; run as `knock`
//! it is `latchkey knock`; so a symlink lets existing scripts and init files keep working.

use argh::{ArgsInfo, EarlyExit, FlagInfo, FlagInfoKind, FromArgs};

/// Version string shown by `--version` and `-V`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// latchkey: a port-knocking daemon (knockd's config and options) and client (knock's options,
/// and fwknop SPA).
#[derive(FromArgs, Debug)]
#[argh(
    help_triggers("-h", "--help", "help"),
    note = "Run as 'knockd' or 'knock' (a symlink, or a copy named knock.exe) it behaves as \
            'latchkey daemon' or 'latchkey knock'."
)]
struct Latchkey {
    /// print the version and exit
    #[argh(switch, short = 'V')]
    version: bool,
    #[argh(subcommand)]
    command: Option<Command>,
}

/// The subcommands; the daemon's exist on Linux only, the client's with the `client` feature.
#[derive(FromArgs, Debug)]
#[argh(subcommand)]
enum Command {
    #[cfg(target_os = "linux")]
    Daemon(crate::daemon_cli::DaemonArgs),
    #[cfg(target_os = "linux")]
    Check(crate::daemon_cli::CheckArgs),
    #[cfg(feature = "client")]
    Knock(crate::client::args::KnockArgs),
    #[cfg(feature = "client")]
    Keygen(crate::client::KeygenArgs),
    Version(VersionArgs),
}

/// print the version and exit
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "version")]
struct VersionArgs {}

/// Runs the program for `args` (argv, including argv[0]) and returns the exit status.
pub fn run(args: &[String]) -> i32 {
    let argv0 = args.first().map(String::as_str).unwrap_or("latchkey");
    let name = argv0.rsplit(['/', '\\']).next().unwrap_or(argv0);
    let name = name.strip_suffix(".exe").unwrap_or(name);
    let rest: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
    match name {
        #[cfg(feature = "client")]
        "knock" => {
            return match parse("knock", &rest) {
                Ok(a) => crate::client::run("knock", a),
                Err(code) => code,
            }
        }
        #[cfg(target_os = "linux")]
        "knockd" => {
            return match parse("knockd", &rest) {
                Ok(a) => crate::daemon_cli::run("knockd", a),
                Err(code) => code,
            }
        }
        #[cfg(all(target_os = "linux", feature = "fwknopd"))]
        "fwknopd" => return crate::fwknop::cli::run(&rest),
        _ => {}
    }
    #[cfg(all(target_os = "linux", feature = "fwknopd"))]
    if rest.first() == Some(&"fwknopd") {
        return crate::fwknop::cli::run(&rest[1..]);
    }
    let top = match parse_top(&rest) {
        Ok(top) => top,
        Err(code) => return code,
    };
    match top.command {
        #[cfg(target_os = "linux")]
        Some(Command::Daemon(a)) => crate::daemon_cli::run("latchkey daemon", a),
        #[cfg(target_os = "linux")]
        Some(Command::Check(a)) => crate::daemon_cli::check("latchkey check", a),
        #[cfg(feature = "client")]
        Some(Command::Knock(a)) => crate::client::run("latchkey knock", a),
        #[cfg(feature = "client")]
        Some(Command::Keygen(a)) => crate::client::keygen(a),
        Some(Command::Version(_)) => version(),
        None if top.version => version(),
        None => {
            eprintln!("{}", help::<Latchkey>("latchkey"));
            2
        }
    }
}

/// The options of subcommand `name`, for [`getopt`].
fn subcommand_flags(name: &str) -> Option<&'static [FlagInfo<'static>]> {
    match name {
        #[cfg(target_os = "linux")]
        "daemon" => Some(crate::daemon_cli::DaemonArgs::get_args_info().flags),
        #[cfg(target_os = "linux")]
        "check" => Some(crate::daemon_cli::CheckArgs::get_args_info().flags),
        #[cfg(feature = "client")]
        "knock" => Some(crate::client::args::KnockArgs::get_args_info().flags),
        _ => None,
    }
}

/// `latchkey [-V] COMMAND OPTIONS...`: the command's getopt forms rewritten for argh.
fn top_words(rest: &[&str]) -> Vec<String> {
    match rest.split_first() {
        Some((cmd, args)) => match subcommand_flags(cmd) {
            Some(flags) => std::iter::once(cmd.to_string())
                .chain(getopt(flags, args))
                .collect(),
            None => getopt(&[], rest),
        },
        None => Vec::new(),
    }
}

/// Parses latchkey's own command line (printing help or the mistake, as [`parse`]).
fn parse_top(rest: &[&str]) -> Result<Latchkey, i32> {
    let words = top_words(rest);
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    Latchkey::from_args(&["latchkey"], &words).map_err(|exit| report("latchkey", exit))
}

/// Prints an early exit: help on stdout (status 0), a mistake as one line (status 2).
fn report(prog: &str, exit: EarlyExit) -> i32 {
    match exit.status {
        Ok(()) => {
            print!("{}", exit.output);
            0
        }
        Err(()) => {
            eprintln!("{prog}: {} (see {prog} --help)", exit.output.trim_end());
            2
        }
    }
}

fn version() -> i32 {
    println!("latchkey {VERSION}");
    0
}

/// Parses `args` (after the program or command name) into `T`, getopt forms first.
///
/// `--help` prints `T`'s help and gives `Err(0)`; a mistake prints one line,
/// `PROG: what was wrong (see PROG --help)`, and gives `Err(2)`.
pub fn parse<T: FromArgs + ArgsInfo>(prog: &str, args: &[&str]) -> Result<T, i32> {
    parse_quiet(prog, args).map_err(|exit| report(prog, exit))
}

/// [`parse`] without the printing: argh's early exit (help text, or what was wrong) as is.
pub fn parse_quiet<T: FromArgs + ArgsInfo>(prog: &str, args: &[&str]) -> Result<T, EarlyExit> {
    let words = getopt(T::get_args_info().flags, args);
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let name: Vec<&str> = prog.split(' ').collect();
    T::from_args(&name, &words)
}

/// `T`'s help text, as `--help` prints it.
pub fn help<T: FromArgs>(prog: &str) -> String {
    let name: Vec<&str> = prog.split(' ').collect();
    match T::from_args(&name, &["--help"]) {
        Ok(_) => String::new(),
        Err(exit) => exit.output.trim_end().to_string(),
    }
}

/// Rewrites getopt forms into argh's one-option-per-word form, using the options `flags`
/// declares (one command's, from its argh declaration):
///
/// - bundled flags `-vD` become `-v -D`; a letter that takes a value takes the rest of the word
///   (`-ieth0`, `-p1234`, `-uvd200` = `-u -v -d 200`) or, at the end of the word, the next word;
/// - `--name=value` becomes `--name value` for an option that takes a value (for a switch it is
///   left alone, for argh to refuse);
/// - `-h` (alone or in a bundle) or `--help` anywhere (not as a value, not after `--`) becomes
///   the only word, so help wins over whatever else is on the line, as in getopt programs.
///
/// A value is never rewritten (`-d -5` keeps `-5` for argh to refuse), nor is anything after
/// `--`. Unknown letters in a bundle are split out too, so argh names the one it does not know.
pub fn getopt(flags: &[FlagInfo], args: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(args.len() + 2);
    let mut it = args.iter();
    while let Some(&arg) = it.next() {
        if arg == "--" {
            out.push(arg.to_string());
            out.extend(it.map(|a| a.to_string()));
            break;
        }
        if arg == "-h" || arg == "--help" {
            return vec!["--help".to_string()];
        } else if let Some(long) = arg.strip_prefix("--") {
            let (name, value) = long.split_once('=').unwrap_or((long, ""));
            let valued = takes_value(flags, |f| f.long.strip_prefix("--") == Some(name));
            if valued && long.contains('=') {
                out.extend([format!("--{name}"), value.to_string()]);
            } else {
                out.push(arg.to_string());
                if valued {
                    out.extend(it.next().map(|v| v.to_string()));
                }
            }
        } else if let Some(shorts) = arg.strip_prefix('-').filter(|s| !s.is_empty()) {
            for (pos, c) in shorts.char_indices() {
                if c == 'h' {
                    return vec!["--help".to_string()]; // `-vh`: help, as a bundled -h
                }
                out.push(format!("-{c}"));
                if takes_value(flags, |f| f.short == Some(c)) {
                    let rest = &shorts[pos + c.len_utf8()..];
                    if rest.is_empty() {
                        out.extend(it.next().map(|v| v.to_string()));
                    } else {
                        out.push(rest.to_string());
                    }
                    break;
                }
            }
        } else {
            out.push(arg.to_string());
        }
    }
    out
}

/// Whether the option that `is` selects exists and takes a value.
fn takes_value(flags: &[FlagInfo], is: impl Fn(&FlagInfo) -> bool) -> bool {
    flags
        .iter()
        .any(|f| is(f) && matches!(f.kind, FlagInfoKind::Option { .. }))
}

#[cfg(test)]
mod tests;
