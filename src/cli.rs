//! Command-line dispatch: `latchkey daemon|check|knock`, and the knockd/knock personalities.
//!
//! The binary answers to three names. Run as `knockd` it is `latchkey daemon`; run as `knock`
//! it is `latchkey knock`; so a symlink lets existing scripts and init files keep working.

/// Version string shown by `--version` and `-V`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[cfg(all(target_os = "linux", feature = "fwknopd"))]
const COMMANDS: &str = "  daemon   watch an interface for knocks and open doors (knockd's options)
  fwknopd  serve fwknop SPA clients from fwknopd.conf/access.conf (fwknopd's options)
  check    parse a knockd config and print the doors as understood
  knock    send a knock sequence to a host (knock's options, plus saved hosts)

  Run as 'knockd', 'knock' or 'fwknopd' (a symlink) it behaves as 'latchkey daemon',
  'latchkey knock' or 'latchkey fwknopd'.";

#[cfg(all(target_os = "linux", not(feature = "fwknopd")))]
const COMMANDS: &str = "  daemon   watch an interface for knocks and open doors (knockd's options)
  check    parse a knockd config and print the doors as understood
  knock    send a knock sequence to a host (knock's options, plus saved hosts)

  Run as 'knockd' or 'knock' (a symlink) it behaves as 'latchkey daemon' or 'latchkey knock'.";

#[cfg(not(target_os = "linux"))]
const COMMANDS: &str =
    "  knock    send a knock sequence to a host (knock's options, plus saved hosts)

  Run as 'knock' (a copy named knock.exe) it behaves as 'latchkey knock'.";

fn usage() -> String {
    format!("usage: latchkey <command> [options]\n\ncommands:\n{COMMANDS}\n\n  latchkey --version | --help")
}

/// Runs the program for `args` (argv, including argv[0]) and returns the exit status.
pub fn run(args: &[String]) -> i32 {
    let argv0 = args.first().map(String::as_str).unwrap_or("latchkey");
    let name = argv0.rsplit(['/', '\\']).next().unwrap_or(argv0);
    let name = name.strip_suffix(".exe").unwrap_or(name);
    let rest: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
    match name {
        #[cfg(feature = "client")]
        "knock" => return crate::client::run("knock", &rest),
        #[cfg(target_os = "linux")]
        "knockd" => return crate::daemon_cli::run("knockd", &rest),
        #[cfg(all(target_os = "linux", feature = "fwknopd"))]
        "fwknopd" => return crate::fwknop::cli::run(&rest),
        _ => {}
    }
    let Some((cmd, rest)) = rest.split_first() else {
        eprintln!("{}", usage());
        return 2;
    };
    match *cmd {
        #[cfg(feature = "client")]
        "knock" => crate::client::run("latchkey knock", rest),
        #[cfg(target_os = "linux")]
        "daemon" => crate::daemon_cli::run("latchkey daemon", rest),
        #[cfg(all(target_os = "linux", feature = "fwknopd"))]
        "fwknopd" => crate::fwknop::cli::run(rest),
        #[cfg(target_os = "linux")]
        "check" => crate::daemon_cli::check("latchkey check", rest),
        "-V" | "--version" | "version" => {
            println!("latchkey {VERSION}");
            0
        }
        "-h" | "--help" | "help" => {
            println!("{}", usage());
            0
        }
        other => {
            eprintln!("latchkey: unknown command '{other}'\n{}", usage());
            2
        }
    }
}
