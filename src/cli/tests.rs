use super::*;

/// The top-level command line as `run` rewrites it for argh.
fn norm(args: &[&str]) -> Vec<String> {
    top_words(args)
}

#[test]
fn getopt_splits_bundles_and_attached_values() {
    #[cfg(target_os = "linux")]
    {
        // knockd's forms: bundled flags, attached values, --long=value.
        assert_eq!(
            norm(&["daemon", "-vD", "-ieth0", "--config=/etc/k.conf", "-p1234"]),
            [
                "daemon",
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
        assert_eq!(
            norm(&["daemon", "-dvieth1"]),
            ["daemon", "-d", "-v", "-i", "eth1"]
        );
        // daemon's -d is a flag, knock's -d takes a value: each command its own options.
        assert_eq!(norm(&["daemon", "-d4"]), ["daemon", "-d", "-4"]);
    }
    #[cfg(feature = "client")]
    {
        assert_eq!(norm(&["knock", "-d4"]), ["knock", "-d", "4"]);
        assert_eq!(
            norm(&["knock", "-uvd200", "h", "1"]),
            ["knock", "-u", "-v", "-d", "200", "h", "1"]
        );
        // fwknop's: -p62201, --fw-timeout=45, -A tcp/22.
        assert_eq!(
            norm(&[
                "knock",
                "--spa",
                "-p62201",
                "--fw-timeout=45",
                "-Atcp/22",
                "h"
            ]),
            [
                "knock",
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
}

#[cfg(feature = "client")]
#[test]
fn getopt_leaves_values_and_operands_alone() {
    // A value that looks like options is not rewritten, with or without '='.
    assert_eq!(norm(&["knock", "-d", "-uv"]), ["knock", "-d", "-uv"]);
    assert_eq!(
        norm(&["knock", "--delay", "-5"]),
        ["knock", "--delay", "-5"]
    );
    assert_eq!(norm(&["knock", "--delay=-5"]), ["knock", "--delay", "-5"]);
    // A switch's '=value' is not split: argh then refuses the whole word.
    assert_eq!(norm(&["knock", "--udp=yes"]), ["knock", "--udp=yes"]);
    // Nothing after `--`.
    assert_eq!(
        norm(&["knock", "--", "-uv", "--x=1"]),
        ["knock", "--", "-uv", "--x=1"]
    );
    // Unknown letters are split out so argh can name the one it does not know.
    assert_eq!(norm(&["knock", "-uZ"]), ["knock", "-u", "-Z"]);
    // A subcommand's name as an operand is just an operand.
    assert_eq!(norm(&["knock", "knock", "1"]), ["knock", "knock", "1"]);
    // Without a command only -h means anything to latchkey itself.
    assert_eq!(norm(&["-Vh"]), ["--help"]);
    assert_eq!(norm(&["-V", "x"]), ["-V", "x"]);
}

#[test]
fn getopt_help_wins() {
    assert_eq!(norm(&["-h"]), ["--help"]);
    assert_eq!(norm(&["-h", "version"]), ["--help"]);
    #[cfg(feature = "client")]
    {
        assert_eq!(norm(&["knock", "-u", "h", "1", "-h"]), ["knock", "--help"]);
        assert_eq!(
            norm(&["knock", "-d", "-h"]),
            ["knock", "-d", "-h"],
            "a value"
        );
    }
    #[cfg(target_os = "linux")]
    assert_eq!(
        norm(&["daemon", "-v", "--help", "-x"]),
        ["daemon", "--help"]
    );
}

#[test]
fn top_level_command_line() {
    let top = |args: &[&str]| {
        let words = top_words(args);
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        Latchkey::from_args(&["latchkey"], &words)
    };
    assert!(top(&["-V"]).unwrap().version);
    assert!(top(&["--version"]).unwrap().version);
    assert!(matches!(
        top(&["version"]).unwrap().command,
        Some(Command::Version(_))
    ));
    assert!(top(&[]).unwrap().command.is_none());
    let help = top(&["--help"]).unwrap_err();
    assert!(help.status.is_ok() && help.output.contains("Usage: latchkey"));
    #[cfg(feature = "client")]
    assert!(help.output.contains("knock") && help.output.contains("keygen"));
    let bad = top(&["frobnicate"]).unwrap_err();
    assert!(
        bad.status.is_err() && bad.output.contains("frobnicate"),
        "{}",
        bad.output
    );
    #[cfg(target_os = "linux")]
    {
        match top(&["daemon", "-vieth1"]).unwrap().command {
            Some(Command::Daemon(d)) => assert_eq!(d, {
                let d: crate::daemon_cli::DaemonArgs =
                    parse("knockd", &["-v", "-i", "eth1"]).unwrap();
                d
            }),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            top(&["check", "-c/x"]).unwrap().command,
            Some(Command::Check(_))
        ));
        // Help of a subcommand is that subcommand's.
        let h = top(&["daemon", "-h"]).unwrap_err();
        assert!(h.output.contains("Usage: latchkey daemon") && h.output.contains("--interface"));
    }
    #[cfg(feature = "client")]
    {
        assert!(matches!(
            top(&["knock", "-uv", "h", "1"]).unwrap().command,
            Some(Command::Knock(_))
        ));
        assert!(matches!(
            top(&["keygen"]).unwrap().command,
            Some(Command::Keygen(_))
        ));
        assert!(top(&["keygen", "x"]).is_err());
    }
}

#[test]
fn personalities() {
    let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    #[cfg(target_os = "linux")]
    {
        assert_eq!(run(&s(&["/usr/sbin/knockd", "-V"])), 0);
        assert_eq!(run(&s(&["knockd", "-x"])), 2);
    }
    #[cfg(feature = "client")]
    {
        assert_eq!(run(&s(&["knock", "-V"])), 0);
        assert_eq!(run(&s(&["C:\\bin\\knock.exe", "--version"])), 0);
        assert_eq!(run(&s(&["knock", "-4", "-6", "h", "1"])), 2);
    }
    assert_eq!(run(&s(&["latchkey", "-V"])), 0);
    assert_eq!(run(&s(&["latchkey"])), 2);
    assert_eq!(run(&s(&["latchkey", "nope"])), 2);
}
