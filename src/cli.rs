//! Command-line dispatch: `latchkey daemon|check|knock|keygen`, and the knockd/knock
//! personalities.
//!
//! Every command line is declared with argh (`#[derive(FromArgs)]` subcommand structs beside
//! the code that uses them: `daemon_cli`, `fwknop::cli`, `client::args`, `client`). argh reads one option per word, so [`getopt`]
//! first rewrites the getopt forms that knockd, knock and fwknop users type (`-vD`, `-ieth0`,
//! `--config=FILE`, `-p1234`). It needs one fact per command, which options take a value: each
//! command says so in its [`Getopt`] impl, and a unit test checks that against the argh
//! declaration itself (`ArgsInfo`), so the two cannot drift apart. (Asking `ArgsInfo` at run
//! time would work too, but it links every option's description twice: bytes the mips
//! router build does not have.)
//!
//! The binary answers to four names. Run as `knockd` it is `latchkey daemon`; run as `knock`
//! or `fwknopd` it is `latchkey knock` or `latchkey fwknopd`; so a symlink lets existing
//! scripts and init files keep working.

use argh::{CommandInfo, EarlyExit, FromArgs, SubCommand};

/// Version string shown by `--version` and `-V`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Writes `text` whole to standard output (`fd` 1) or standard error (2), straight to the
/// descriptor. Not `print!`/`eprintln!`: std's locked, buffered streams cost 3 KB on mips for
/// a handful of lines, and a closed stream is no reason to panic (the text is then lost).
#[cfg(all(unix, not(test)))]
pub fn write_to(fd: i32, text: &str) {
    let mut b = text.as_bytes();
    while !b.is_empty() {
        // SAFETY: writes from a live slice of its own length.
        let n = unsafe { libc::write(fd, b.as_ptr().cast(), b.len()) };
        if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        if n <= 0 {
            return;
        }
        b = b.get(n as usize..).unwrap_or_default();
    }
}

/// [`write_to`] on Windows (and in unit tests, whose output the harness captures), through
/// std's streams.
#[cfg(any(not(unix), test))]
pub fn write_to(fd: i32, text: &str) {
    if fd == 1 {
        print!("{text}")
    } else {
        eprint!("{text}")
    }
}

/// `text` on standard output.
pub fn say(text: &str) {
    write_to(1, text)
}

/// `text` and a newline on standard error.
pub fn complain(text: &str) {
    write_to(2, &format!("{text}\n"))
}

/// One subcommand: its name and one-line description come from its argh declaration
/// (`#[argh(subcommand, name = ...)]` and the doc comment), `run` parses the rest of the line
/// with its argh struct and runs it.
struct Sub {
    /// argh's `SubCommand::COMMAND` of the command's struct.
    info: &'static CommandInfo,
    /// Parses (printing help or the mistake) and runs; gets "latchkey NAME" and the words
    /// after NAME.
    run: fn(&str, &[&str]) -> i32,
}

/// The subcommands, in the order `--help` lists them. The daemon's exist on Linux only, the
/// client's with the `client` feature, fwknopd's with the `fwknopd` feature.
///
/// A table rather than argh's `#[argh(subcommand)] enum`: the enum's parser and its generated
/// help cost about 5 KB on mips, where the daemon has 250,000 bytes in all.
const SUBS: &[Sub] = &[
    #[cfg(target_os = "linux")]
    Sub {
        info: <crate::daemon_cli::DaemonArgs as SubCommand>::COMMAND,
        run: |prog, args| parse(prog, args).map_or_else(|c| c, |a| crate::daemon_cli::run(prog, a)),
    },
    #[cfg(all(target_os = "linux", feature = "fwknopd"))]
    Sub {
        info: <crate::fwknop::cli::FwknopdArgs as SubCommand>::COMMAND,
        run: |prog, args| parse(prog, args).map_or_else(|c| c, crate::fwknop::cli::run),
    },
    #[cfg(target_os = "linux")]
    Sub {
        info: <crate::daemon_cli::CheckArgs as SubCommand>::COMMAND,
        run: |prog, args| {
            parse(prog, args).map_or_else(|c| c, |a| crate::daemon_cli::check(prog, a))
        },
    },
    #[cfg(feature = "client")]
    Sub {
        info: <crate::client::args::KnockArgs as SubCommand>::COMMAND,
        run: |prog, args| parse(prog, args).map_or_else(|c| c, |a| crate::client::run(prog, a)),
    },
    #[cfg(feature = "client")]
    Sub {
        info: <crate::client::KeygenArgs as SubCommand>::COMMAND,
        run: |prog, args| parse(prog, args).map_or_else(|c| c, crate::client::keygen),
    },
];

/// `latchkey --help`: the subcommands as argh declares them.
fn usage() -> String {
    let mut s = String::from("Usage: latchkey [-V] <command> [--help | <options>]\n\n");
    for sub in SUBS {
        s.push_str("  ");
        s.push_str(sub.info.name);
        s.push_str(&"         "[sub.info.name.len().min(8)..]);
        s.push_str(sub.info.description);
        s.push('\n');
    }
    s.push_str("\nRun as knockd, knock or fwknopd (a symlink) it is that command.");
    s
}

/// The program as C's `main` (see `src/main.rs`): what of std's runtime start-up matters to
/// latchkey, then [`run`] on the arguments.
///
/// std's start-up (its stack-overflow handler, thread bookkeeping, argument store and exit
/// cleanup) is 7 KB of the mips build's 250,000-byte budget. Of it, two things are kept, as
/// std does them: descriptors 0 to 2 are open (on /dev/null when a supervisor closed one;
/// otherwise the first file or socket opened would become "stderr"), and SIGPIPE is ignored
/// (a reader that went away is an error to handle, not a reason to die; commands get it back
/// at its default). Arguments that are not UTF-8 are taken with U+FFFD in place.
///
/// # Safety
/// `argv` must hold `argc` valid C strings, as C's runtime passes them to `main`.
#[cfg(unix)]
pub unsafe fn c_main(argc: libc::c_int, argv: *const *const libc::c_char) -> libc::c_int {
    for fd in 0..3 {
        // SAFETY: F_GETFD on any number only reads; open with a valid C string.
        unsafe {
            if libc::fcntl(fd, libc::F_GETFD) == -1
                && std::io::Error::last_os_error().raw_os_error() == Some(libc::EBADF)
                && libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) != fd
            {
                libc::abort();
            }
        }
    }
    // SAFETY: setting a disposition, no handler.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let args: Vec<String> = (0..argc.max(0) as usize)
        .map(|i| {
            // SAFETY: argv[i] for i < argc is a valid C string (the caller's contract).
            let arg = unsafe { std::ffi::CStr::from_ptr(*argv.add(i)) };
            arg.to_string_lossy().into_owned()
        })
        .collect();
    run(&args)
}

/// Runs the program for `args` (argv, including argv[0]) and returns the exit status.
pub fn run(args: &[String]) -> i32 {
    let argv0 = args.first().map(String::as_str).unwrap_or("latchkey");
    let name = argv0.rsplit(['/', '\\']).next().unwrap_or(argv0);
    let name = name.strip_suffix(".exe").unwrap_or(name);
    let rest: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
    // The personalities: knock, knockd and fwknopd are the subcommand of the same name.
    let by_name = |n: &str| SUBS.iter().find(|s| s.info.name == n);
    let personality = match name {
        "knockd" => by_name("daemon"),
        "knock" | "fwknopd" => by_name(name),
        _ => None,
    };
    if let Some(sub) = personality {
        return (sub.run)(name, &rest);
    }
    let Some((&cmd, args)) = rest.split_first() else {
        complain(&usage());
        return 2;
    };
    match cmd {
        "-V" | "--version" | "version" => {
            say(&format!("latchkey {VERSION}\n"));
            0
        }
        "-h" | "--help" | "help" => {
            say(&format!("{}\n", usage()));
            0
        }
        _ => match by_name(cmd) {
            Some(sub) => (sub.run)(&format!("latchkey {cmd}"), args),
            None => {
                complain(&format!(
                    "latchkey: unknown command '{cmd}' (see latchkey --help)"
                ));
                2
            }
        },
    }
}

/// A command line as [`getopt`] needs to know it: the options that take a value.
pub trait Getopt: FromArgs {
    /// Short letters of the options that take a value (getopt's optstring, without colons).
    const SHORT_VALUED: &'static str;
    /// Long names, without `--`, of the options that take a value.
    const LONG_VALUED: &'static [&'static str];
}

/// Parses `args` (after the program or command name) into `T`, getopt forms first.
///
/// `--help` prints `T`'s help and gives `Err(0)`; a mistake prints one line,
/// `PROG: what was wrong (see PROG --help)`, and gives `Err(2)`.
pub fn parse<T: Getopt>(prog: &str, args: &[&str]) -> Result<T, i32> {
    parse_quiet(prog, args).map_err(|exit| report(prog, exit))
}

/// [`parse`] without the printing: argh's early exit (help text, or what was wrong) as is.
pub fn parse_quiet<T: Getopt>(prog: &str, args: &[&str]) -> Result<T, EarlyExit> {
    let words = getopt(T::SHORT_VALUED, T::LONG_VALUED, args);
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    // argh joins the command name's words with spaces: "latchkey knock" can stay one word.
    T::from_args(&[prog], &words)
}

/// Prints an early exit: help on stdout (status 0), a mistake as one line (status 2).
fn report(prog: &str, exit: EarlyExit) -> i32 {
    if exit.status.is_ok() {
        say(&exit.output);
        return 0;
    }
    complain(&format!("{prog}: {} (see --help)", exit.output.trim_end()));
    2
}

/// `T`'s help text, as `--help` prints it.
pub fn help<T: FromArgs>(prog: &str) -> String {
    match T::from_args(&[prog], &["--help"]) {
        Ok(_) => String::new(),
        Err(exit) => exit.output.trim_end().to_string(),
    }
}

/// Rewrites getopt forms into argh's one-option-per-word form; `short` and `long_names` are
/// the command's options that take a value ([`Getopt`]):
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
pub fn getopt(short: &str, long_names: &[&str], args: &[&str]) -> Vec<String> {
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
            let valued = long_names.contains(&name);
            if valued && long.contains('=') {
                out.push(arg[..2 + name.len()].to_string()); // `--name` of `--name=value`
                out.push(value.to_string());
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
                out.push(['-', c].iter().collect());
                if short.contains(c) {
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

#[cfg(test)]
mod tests;
