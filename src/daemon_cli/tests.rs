use super::*;

#[test]
fn knockd_getopt_forms() {
    let a = getopt_forms(&[
        "-vD",
        "-ieth1",
        "--config=/etc/k.conf",
        "-h",
        "-4",
        "-c",
        "x",
    ]);
    assert_eq!(
        a,
        [
            "-v",
            "-D",
            "-i",
            "eth1",
            "--config",
            "/etc/k.conf",
            "--help",
            "-4",
            "-c",
            "x"
        ]
    );
    let d = parse_daemon(&["-dv", "--interface=wan0", "-p/run/k.pid"])
        .unwrap()
        .unwrap();
    assert!(d.daemon && d.verbose);
    assert_eq!(d.interfaces, ["wan0"]);
    let m = parse_daemon(&["-i", "pppoe-wan", "-iwg0", "--interface=eth1,eth2"])
        .unwrap()
        .unwrap();
    assert_eq!(m.interfaces, ["pppoe-wan", "wg0", "eth1", "eth2"]);
    assert!(parse_daemon(&["-i", "eth0,"]).is_err());
    assert_eq!(d.pidfile, Some(PathBuf::from("/run/k.pid")));
    assert!(parse_daemon(&["-h"]).unwrap().is_none());
    assert!(parse_daemon(&["-x"]).is_err());
    assert!(parse_daemon(&["-i"]).is_err());
    assert_eq!(
        parse_check(&["-c", "/etc/x"]).unwrap(),
        Some(Some(PathBuf::from("/etc/x")))
    );
}
