use super::*;
use crate::client::sequence::Proto;

/// The command line as `latchkey knock` reads it; help comes back as `Err("help")`.
fn parse(argv: &[&str]) -> Result<Command, String> {
    match crate::cli::parse_quiet::<KnockArgs>("latchkey knock", argv) {
        Ok(k) => k.check(),
        Err(e) if e.status.is_ok() => Err("help".to_string()),
        Err(e) => Err(e.output),
    }
}

fn run(argv: &[&str]) -> Args {
    match parse(argv) {
        Ok(Command::Run(a)) => *a,
        other => panic!("{argv:?} gave {other:?}"),
    }
}

#[test]
fn knock_command_line() {
    let a = run(&["-u", "-d", "200", "-4", "-v", "host", "1", "2:tcp", "3:udp"]);
    assert!(a.udp && a.verbose);
    assert_eq!(a.delay_ms, Some(200));
    assert_eq!(a.family, Some(Family::V4));
    assert_eq!(a.host.as_deref(), Some("host"));
    let protos: Vec<_> = a.ports.iter().map(|k| k.proto_or(Proto::Udp)).collect();
    assert_eq!(protos, [Proto::Udp, Proto::Tcp, Proto::Udp]);
    assert!(!a.spa.wanted);
}

#[test]
fn getopt_forms() {
    let a = run(&["-uvd200", "h", "1"]);
    assert!(a.udp && a.verbose);
    assert_eq!(a.delay_ms, Some(200));
    assert_eq!(run(&["--delay=50", "h", "1"]).delay_ms, Some(50));
    assert_eq!(run(&["--delay", "50", "h", "1"]).delay_ms, Some(50));
    // Options after the operands, as GNU getopt allows.
    let a = run(&["h", "1", "-6", "--check", "22"]);
    assert_eq!((a.family, a.check), (Some(Family::V6), Some(22)));
    assert_eq!(run(&["-c22", "home"]).check, Some(22));
    assert_eq!(run(&["-F", "f.conf", "home"]).file, Some("f.conf".into()));
    assert_eq!(run(&["-Ff.conf", "home"]).file, Some("f.conf".into()));
    assert_eq!(run(&["-4", "-4", "h", "1"]).family, Some(Family::V4));
}

#[test]
fn double_dash_ends_options() {
    let a = run(&["--", "-weird-host", "1"]);
    assert_eq!(a.host.as_deref(), Some("-weird-host"));
}

#[test]
fn saved_name_and_list() {
    let a = run(&["home"]);
    assert_eq!(a.host.as_deref(), Some("home"));
    assert!(a.ports.is_empty());
    let a = run(&["--list", "-v"]);
    assert!(a.list && a.verbose && a.host.is_none());
}

#[test]
fn help_and_version_win() {
    assert_eq!(parse(&["-h"]), Err("help".to_string()));
    assert_eq!(parse(&["h", "1", "--help"]), Err("help".to_string()));
    assert_eq!(parse(&["-h", "-x", "h"]), Err("help".to_string()));
    assert_eq!(parse(&["-V"]), Ok(Command::Version));
}

#[test]
fn spa_command_line() {
    let a = run(&[
        "--spa",
        "-A",
        "tcp/22,udp/53",
        "-a",
        "192.0.2.2",
        "-f45",
        "-p",
        "62202",
        "--key-base64-rijndael=S0VZ",
        "--key-base64-hmac",
        "SE1BQw==",
        "router",
    ]);
    let s = &a.spa;
    assert!(s.wanted);
    assert_eq!(s.access.as_deref(), Some("tcp/22,udp/53"));
    assert_eq!(s.allow, Some("192.0.2.2".parse().unwrap()));
    assert_eq!((s.fw_timeout, s.port), (Some(45), Some(62202)));
    assert_eq!(s.key_b64.as_deref(), Some("S0VZ"));
    assert_eq!(s.hmac_b64.as_deref(), Some("SE1BQw=="));
    assert_eq!(a.host.as_deref(), Some("router"));
    // fwknop's spellings: -s, passphrase keys, -D for the host, -n alone.
    let a = run(&[
        "--spa",
        "-s",
        "--key-rijndael",
        "k",
        "--key-hmac",
        "h",
        "-D",
        "r",
    ]);
    assert_eq!(a.spa.allow, Some(std::net::Ipv4Addr::UNSPECIFIED));
    assert_eq!(
        (a.spa.key.as_deref(), a.spa.hmac.as_deref()),
        (Some("k"), Some("h"))
    );
    assert_eq!(a.host.as_deref(), Some("r"));
    let a = run(&["-n", "router", "--rc-file", "/tmp/rc"]);
    assert!(a.spa.wanted && a.host.is_none());
    assert_eq!(a.spa.named.as_deref(), Some("router"));
    assert_eq!(a.spa.rc_file, Some("/tmp/rc".into()));
}

#[test]
fn usage_errors() {
    let cases: &[(&[&str], &str)] = &[
        (&[], "missing HOST"),
        (&["-x", "h", "1"], "Unrecognized argument: -x"),
        (&["-ux", "h", "1"], "Unrecognized argument: -x"),
        (&["--bogus", "h", "1"], "Unrecognized argument: --bogus"),
        (&["-d"], "No value provided for option '-d'"),
        (&["-d", "soon", "h", "1"], "bad delay 'soon'"),
        (&["-d", "-5", "h", "1"], "bad delay '-5'"),
        (&["-4", "-6", "h", "1"], "-4 and -6"),
        (&["h", "0"], "bad port '0'"),
        (&["h", "70000"], "bad port '70000'"),
        (&["h", "22:sctp"], "bad protocol 'sctp'"),
        (&["--check", "0", "h"], "bad check port '0'"),
        (&["--list", "home"], "--list takes no host"),
        (&["--udp=yes", "h", "1"], "Unrecognized argument: --udp=yes"),
        (&["--spa", "-a", "2001:db8::2", "h"], "bad allow IP"),
        (&["--spa", "-a", "192.0.2.2", "-s", "h"], "-s and -a"),
        (&["--spa", "-p", "0", "h"], "bad server port '0'"),
        (&["--spa", "h", "22"], "give HOST alone"),
        (&["--spa", "-D", "a", "b"], "-D names the host"),
        (&["-d", "1", "-d", "2", "h", "1"], "duplicate"),
    ];
    for (argv, want) in cases {
        match parse(argv) {
            Err(e) => assert!(e.contains(want), "{argv:?}: got {e:?}, want {want:?}"),
            Ok(c) => panic!("{argv:?} accepted: {c:?}"),
        }
    }
}
