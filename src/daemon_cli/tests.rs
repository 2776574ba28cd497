use super::*;
use crate::cli::parse;

fn daemon(args: &[&str]) -> DaemonArgs {
    parse("knockd", args).unwrap_or_else(|code| panic!("{args:?}: exit {code}"))
}

#[test]
fn knockd_command_line() {
    let d = daemon(&[
        "-i",
        "eth1",
        "-c",
        "/etc/k.conf",
        "-d",
        "-D",
        "-v",
        "-l",
        "-4",
    ]);
    assert_eq!(d.interface, ["eth1"]);
    assert_eq!(d.config, Some(PathBuf::from("/etc/k.conf")));
    assert!(d.daemon && d.debug && d.verbose && d.lookup && d.only_ip_v4 && !d.version);
    let d = daemon(&[
        "--interface",
        "wan",
        "--only-ip-v4",
        "--pidfile",
        "/p",
        "--logfile",
        "/l",
    ]);
    assert_eq!(d.interface, ["wan"]);
    assert!(d.only_ip_v4);
    assert_eq!(
        (d.pidfile, d.logfile),
        (Some("/p".into()), Some("/l".into()))
    );
    assert!(daemon(&["-V"]).version);
    assert_eq!(daemon(&[]), DaemonArgs::default());
}

#[test]
fn knockd_getopt_forms() {
    let d = daemon(&["-dv", "--interface=wan0", "-p/run/k.pid", "-vD"]);
    assert!(d.daemon && d.verbose && d.debug);
    assert_eq!(d.interface, ["wan0"]);
    assert_eq!(d.pidfile, Some(PathBuf::from("/run/k.pid")));
    assert_eq!(daemon(&["-ieth1"]).interface, ["eth1"]);
    // Several interfaces: -i again, or a comma-separated list; each once, in order.
    let m = daemon(&[
        "-i",
        "pppoe-wan",
        "-iwg0",
        "--interface=eth1,eth2",
        "-i",
        "wg0",
    ]);
    assert_eq!(
        interfaces(&m.interface).unwrap(),
        ["pppoe-wan", "wg0", "eth1", "eth2"]
    );
    assert!(interfaces(&["eth0,".to_string()]).is_err());
    let d = daemon(&["--config=/etc/k.conf", "-4l"]);
    assert_eq!(d.config, Some(PathBuf::from("/etc/k.conf")));
    assert!(d.only_ip_v4 && d.lookup);
}

#[test]
fn knockd_help_and_mistakes() {
    // Help wins, wherever it is (exit 0); mistakes exit 2.
    assert_eq!(parse::<DaemonArgs>("knockd", &["-h"]).err(), Some(0));
    assert_eq!(
        parse::<DaemonArgs>("knockd", &["-v", "--help", "-x"]).err(),
        Some(0)
    );
    for bad in [&["-x"][..], &["-i"], &["--daemon=yes"], &["eth0"], &["-vx"]] {
        assert_eq!(parse::<DaemonArgs>("knockd", bad).err(), Some(2), "{bad:?}");
    }
}

#[test]
fn check_command_line() {
    let c: CheckArgs = parse("latchkey check", &["-c", "/etc/x"]).unwrap();
    assert_eq!(c.config, Some(PathBuf::from("/etc/x")));
    let c: CheckArgs = parse("latchkey check", &["-c/etc/y"]).unwrap();
    assert_eq!(c.config, Some(PathBuf::from("/etc/y")));
    assert_eq!(parse::<CheckArgs>("latchkey check", &["-v"]).err(), Some(2));
}
