use super::*;

/// `getopt` with the options of subcommand `name`, as `run` hands them to argh.
fn norm(name: &str, args: &[&str]) -> Vec<String> {
    fn of<T: Getopt>(args: &[&str]) -> Vec<String> {
        getopt(T::SHORT_VALUED, T::LONG_VALUED, args)
    }
    match name {
        #[cfg(target_os = "linux")]
        "daemon" => of::<crate::daemon_cli::DaemonArgs>(args),
        #[cfg(feature = "client")]
        "knock" => of::<crate::client::args::KnockArgs>(args),
        _ => panic!("no subcommand {name}"),
    }
}

/// Each command's `Getopt` says exactly what its argh declaration says: the same options
/// take a value (short letters and long names).
#[test]
fn getopt_tables_match_the_argh_declarations() {
    use argh::{ArgsInfo, FlagInfoKind};
    fn check<T: Getopt + ArgsInfo>() {
        let info = T::get_args_info();
        let valued = || {
            info.flags
                .iter()
                .filter(|f| matches!(f.kind, FlagInfoKind::Option { .. }))
        };
        let mut short: Vec<char> = valued().filter_map(|f| f.short).collect();
        let mut want: Vec<char> = T::SHORT_VALUED.chars().collect();
        short.sort_unstable();
        want.sort_unstable();
        assert_eq!(
            short, want,
            "{}: short options that take a value",
            info.name
        );
        let mut long: Vec<&str> = valued().map(|f| f.long.trim_start_matches('-')).collect();
        let mut want = T::LONG_VALUED.to_vec();
        long.sort_unstable();
        want.sort_unstable();
        assert_eq!(long, want, "{}: long options that take a value", info.name);
    }
    #[cfg(target_os = "linux")]
    {
        check::<crate::daemon_cli::DaemonArgs>();
        check::<crate::daemon_cli::CheckArgs>();
    }
    #[cfg(all(target_os = "linux", feature = "fwknopd"))]
    check::<crate::fwknop::cli::FwknopdArgs>();
    #[cfg(feature = "client")]
    {
        check::<crate::client::args::KnockArgs>();
        check::<crate::client::KeygenArgs>();
    }
}

#[cfg(target_os = "linux")]
#[test]
fn getopt_splits_knockds_forms() {
    // Bundled flags, attached values, --long=value.
    assert_eq!(
        norm(
            "daemon",
            &["-vD", "-ieth0", "--config=/etc/k.conf", "-p1234"]
        ),
        [
            "-v",
            "-D",
            "-i",
            "eth0",
            "--config",
            "/etc/k.conf",
            "-p",
            "1234"
        ]
    );
    // A valued letter inside a bundle takes the rest of the word.
    assert_eq!(norm("daemon", &["-dvieth1"]), ["-d", "-v", "-i", "eth1"]);
    // daemon's -d is a flag (knock's takes a value): each command its own options.
    assert_eq!(norm("daemon", &["-d4"]), ["-d", "-4"]);
    assert_eq!(norm("daemon", &["-v", "--help", "-x"]), ["--help"]);
    assert_eq!(norm("daemon", &["-vh"]), ["--help"]);
}

#[cfg(feature = "client")]
#[test]
fn getopt_splits_knock_and_fwknop_forms() {
    assert_eq!(norm("knock", &["-d4"]), ["-d", "4"]);
    assert_eq!(
        norm("knock", &["-uvd200", "h", "1"]),
        ["-u", "-v", "-d", "200", "h", "1"]
    );
    // fwknop's: -p62201, --fw-timeout=45, -Atcp/22.
    assert_eq!(
        norm(
            "knock",
            &["--spa", "-p62201", "--fw-timeout=45", "-Atcp/22", "h"]
        ),
        [
            "--spa",
            "-p",
            "62201",
            "--fw-timeout",
            "45",
            "-A",
            "tcp/22",
            "h"
        ]
    );
}

#[cfg(feature = "client")]
#[test]
fn getopt_leaves_values_and_operands_alone() {
    // A value that looks like options is not rewritten, with or without '='.
    assert_eq!(norm("knock", &["-d", "-uv"]), ["-d", "-uv"]);
    assert_eq!(norm("knock", &["--delay", "-5"]), ["--delay", "-5"]);
    assert_eq!(norm("knock", &["--delay=-5"]), ["--delay", "-5"]);
    assert_eq!(
        norm("knock", &["-d", "-h"]),
        ["-d", "-h"],
        "a value, not help"
    );
    // A switch's '=value' is not split: argh then refuses the whole word.
    assert_eq!(norm("knock", &["--udp=yes"]), ["--udp=yes"]);
    // Nothing after `--`.
    assert_eq!(
        norm("knock", &["--", "-uv", "--x=1"]),
        ["--", "-uv", "--x=1"]
    );
    // Unknown letters are split out so argh can name the one it does not know.
    assert_eq!(norm("knock", &["-uZ"]), ["-u", "-Z"]);
    // Help wins, wherever it is.
    assert_eq!(norm("knock", &["-u", "h", "1", "-h"]), ["--help"]);
}

#[test]
fn subcommands_come_from_their_argh_declarations() {
    let names: Vec<&str> = SUBS.iter().map(|s| s.info.name).collect();
    #[cfg(target_os = "linux")]
    assert!(names.contains(&"daemon") && names.contains(&"check"));
    #[cfg(all(target_os = "linux", feature = "fwknopd"))]
    assert!(names.contains(&"fwknopd"));
    #[cfg(feature = "client")]
    assert!(names.contains(&"knock") && names.contains(&"keygen"));
    let help = usage();
    for sub in SUBS {
        assert!(help.contains(sub.info.name) && help.contains(sub.info.description));
    }
}

#[test]
fn top_level_and_personalities() {
    let run = |v: &[&str]| run(&v.iter().map(|a| a.to_string()).collect::<Vec<_>>());
    assert_eq!(run(&["latchkey", "-V"]), 0);
    assert_eq!(run(&["latchkey", "--version"]), 0);
    assert_eq!(run(&["latchkey", "version"]), 0);
    assert_eq!(run(&["latchkey", "--help"]), 0);
    assert_eq!(run(&["latchkey"]), 2);
    assert_eq!(run(&["latchkey", "nope"]), 2);
    #[cfg(target_os = "linux")]
    {
        assert_eq!(run(&["latchkey", "daemon", "-V"]), 0);
        assert_eq!(run(&["latchkey", "daemon", "-vx"]), 2);
        assert_eq!(run(&["latchkey", "check", "--help"]), 0);
        assert_eq!(run(&["/usr/sbin/knockd", "-V"]), 0);
        assert_eq!(run(&["knockd", "-x"]), 2);
    }
    #[cfg(all(target_os = "linux", feature = "fwknopd"))]
    {
        assert_eq!(run(&["/usr/sbin/fwknopd", "-V"]), 0);
        assert_eq!(run(&["latchkey", "fwknopd", "--fw-list"]), 2);
    }
    #[cfg(feature = "client")]
    {
        assert_eq!(run(&["knock", "-V"]), 0);
        assert_eq!(run(&["C:\\bin\\knock.exe", "--version"]), 0);
        assert_eq!(run(&["knock", "-4", "-6", "h", "1"]), 2);
        assert_eq!(run(&["latchkey", "knock", "-h"]), 0);
        assert_eq!(run(&["latchkey", "keygen", "x"]), 2);
    }
}
