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
    assert_eq!(d.interface.as_deref(), Some("wan0"));
    assert_eq!(d.pidfile, Some(PathBuf::from("/run/k.pid")));
    assert!(parse_daemon(&["-h"]).unwrap().is_none());
    assert!(parse_daemon(&["-x"]).is_err());
    assert!(parse_daemon(&["-i"]).is_err());
    assert_eq!(
        parse_check(&["-c", "/etc/x"]).unwrap(),
        Some(Some(PathBuf::from("/etc/x")))
    );
}
