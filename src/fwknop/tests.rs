//! fwknopd.conf / access.conf reading, and the whole decision (config + SPA core) on every
//! vector of the real fwknop 2.6.10 client, with its group's own config files.

use super::*;
use crate::spa::replay::Cache;
use crate::spa::tests::{fixture_dir, vectors};
use crate::spa::{receive, Wire};

fn settings(file: &str) -> Settings {
    let path = fixture_dir().join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    parse_conf(&path, &text).unwrap().0
}

fn doors(file: &str, s: &Settings) -> (Vec<Door>, Vec<ConfigError>) {
    let path = fixture_dir().join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let (d, e, _) = parse_access_all(&path, &text, s, &|p| std::fs::read_to_string(p));
    (d, e)
}

/// latchkey's verdict on every vector; differences from fwknopd 2.6.10 are deliberate:
/// - A06: the client timeout is clamped to MAX_FW_TIMEOUT in command mode too (300, not 5000);
/// - A15, A16: SPA over TCP and HTTP are not captured (ignored; fwknopd accepts);
/// - A18/A19: SPA over IPv6 is served, so A19 (the same packet over IPv4) is a replay;
/// - A21, A22: OPEN_PORTS is enforced in command mode too (fwknopd accepts);
/// - A26: inner SHA-512 digests are outside the subset (fwknopd accepts);
/// - D03: the legacy-IV stanza without HMAC that fwknopd accepts it with is refused at load;
/// - E01: the stanza without HMAC key is refused at load, so no door serves the packet.
const VERDICT: &[(&str, &str)] = &[
    ("A01", "accept 192.0.2.2 20"),
    ("A02", "accept 192.0.2.2 20"),
    ("A03", "accept 192.0.2.2 20"),
    ("A04", "accept 192.0.2.77 20"),
    ("A05", "accept 192.0.2.2 45"),
    ("A06", "accept 192.0.2.2 300"),
    ("A07", "replay"),
    ("A08", "replay"),
    ("A09", "stale(-300s)"),
    ("A10", "replay"),
    ("A11", "stale(+300s)"),
    ("A12", "bad-mac"),
    ("A13", "bad-key"),
    ("A14", "bad-mac"),
    ("A15", "ignored"),
    ("A16", "ignored"),
    ("A17", "accept 192.0.2.2 20"),
    ("A18", "accept 192.0.2.2 20"),
    ("A19", "replay"),
    ("A20", "accept 192.0.2.2 20"),
    ("A21", "port-denied"),
    ("A22", "port-denied"),
    ("A23", "type-unsupported"),
    ("A24", "type-unsupported"),
    ("A25", "bad-mac"),
    ("A26", "digest-unsupported"),
    ("A27", "bad-mac"),
    ("A28", "accept 192.0.2.2 20"),
    ("A29", "replay"),
    ("B01", "need-source-address"),
    ("B02", "accept 192.0.2.2 20"),
    ("C01", "accept 192.0.2.2 30"),
    ("C02", "accept 192.0.2.78 300"),
    ("C03", "port-denied"),
    ("C04", "port-denied"),
    ("C05", "type-unsupported"),
    ("C06", "accept 192.0.2.2 30"),
    ("D01", "accept 192.0.2.2 20"),
    ("D02", "user-denied"),
    ("D03", "bad-mac"),
    ("D04", "bad-mac"),
    ("E01", "no-door"),
    ("E02", "no-door"),
];

#[test]
fn every_vector_reaches_its_verdict_with_its_own_config() {
    let vs = vectors();
    assert_eq!(VERDICT.len(), vs.len());
    let mut cache = Cache::new(64);
    let mut group = ' ';
    let mut hooks = 0;
    for (v, (short, want)) in vs.iter().zip(VERDICT) {
        assert!(v.name.starts_with(short), "{} vs {short}", v.name);
        let g = v.name.chars().next().unwrap();
        if g != group {
            cache = Cache::new(64);
            group = g;
        }
        if v.name.contains("restart") {
            let saved = cache.to_text(v.now);
            cache = Cache::new(64);
            cache.load_text(&saved, v.now);
        }
        let s = settings(&v.fwknopd_conf);
        let (doors, errors) = doors(&v.conf, &s);
        // Groups D and E hold stanzas latchkey refuses at load (no HMAC key).
        assert_eq!(
            errors.is_empty(),
            !"DE".contains(g),
            "{}: {errors:?}",
            v.name
        );
        let wire = Wire {
            src: v.src,
            dst: v.dst,
            port: v.port,
        };
        let got = if v.proto != "udp" {
            "ignored".to_string() // only UDP is captured
        } else {
            match receive(&doors, &v.payload, wire, v.now, &mut cache) {
                Ok(a) => {
                    // Every command variable as fwknopd substitutes it (A06 differs only
                    // in the clamped timeout).
                    if let (Some(hook), false) = (&v.hook, short == &"A06") {
                        let cmds = a.door.commands(&a.grant, v.src, v.dst, a.msg.timestamp);
                        assert_eq!(cmds[0].0, format!("hook.sh {hook}"), "{}", v.name);
                        hooks += 1;
                    }
                    format!("accept {} {}", a.grant.ip, a.grant.timeout)
                }
                Err((_, e)) => e.to_string(),
            }
        };
        assert_eq!(&got, want, "{}", v.name);
    }
    assert_eq!(hooks, 10);
}

#[test]
fn conf_ports_come_from_the_filter_or_the_udp_server() {
    let p = Path::new("fwknopd.conf");
    let (s, w) = parse_conf(p, "PCAP_FILTER udp port 62201 or udp dst port 40001 or tcp port 62201\nMAX_SPA_PACKET_AGE 60\nPCAP_INTF wan0\nFWKNOP_RUN_DIR /tmp/x\n").unwrap();
    assert_eq!(s.ports, [62201, 40001]);
    assert_eq!(s.max_age, Some(60));
    assert_eq!(s.interface.as_deref(), Some("wan0"));
    assert_eq!(
        s.replay_file.as_deref(),
        Some(Path::new("/tmp/x/latchkey-replay.cache"))
    );
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0]
        .to_string()
        .starts_with("fwknopd.conf:1: PCAP_FILTER: TCP ports ignored"));
    let (s, _) = parse_conf(p, "ENABLE_UDP_SERVER Y\nUDPSERV_PORT 4000\nENABLE_SPA_PACKET_AGING N\nENABLE_DIGEST_PERSISTENCE N\n").unwrap();
    assert_eq!(
        (s.ports, s.max_age, s.replay_file),
        (vec![4000], None, None)
    );
    let e = parse_conf(
        p,
        "# c\nPCAP_FILTER udp port 62201 and src host 192.0.2.9\n",
    )
    .unwrap_err();
    assert!(
        e[0].to_string().starts_with(
            "fwknopd.conf:2: PCAP_FILTER 'udp port 62201 and src host 192.0.2.9' is not understood"
        ),
        "{e:?}"
    );
    let (_, w) = parse_conf(p, "ENABLE_IPT_FORWARDING Y\nFOO bar\n").unwrap();
    assert_eq!(w.len(), 2);
    assert!(w[1]
        .to_string()
        .starts_with("fwknopd.conf:2: FOO: unknown variable"));
}

fn access(text: &str) -> Result<(Vec<Door>, Vec<ConfigError>), Vec<ConfigError>> {
    parse_access(Path::new("access.conf"), text, &Settings::default(), &|p| {
        std::fs::read_to_string(p)
    })
}

const KEYS: &str =
    "KEY_BASE64 W71GMIGS9Fvy0fWjHOUmThOiYm8VRsnfi7ctLoZnCBI=\nHMAC_KEY secret-hmac\n";

#[test]
fn access_conf_refusals_name_file_line_and_why() {
    let cases: &[(&str, &str)] = &[
        ("SOURCE ANY\nKEY abc\n", "access.conf:1: stanza has no HMAC_KEY"),
        ("SOURCE ANY\nGPG_DECRYPT_ID x\nHMAC_KEY abc\n", "access.conf:1: stanza uses GnuPG only"),
        ("SOURCE ANY\nKEY k1\nHMAC_KEY k2\nHMAC_DIGEST_TYPE SHA512\n", "access.conf:4: HMAC_DIGEST_TYPE SHA512: only SHA256 is supported; MD5, SHA1"),
        ("SOURCE ANY\nKEY k1\nHMAC_KEY k2\nENCRYPTION_MODE legacy\n", "access.conf:4: ENCRYPTION_MODE legacy: only CBC"),
        ("SOURCE ANY\nKEY k1\nHMAC_KEY k2\nENABLE_CMD_EXEC Y\n", "access.conf:4: ENABLE_CMD_EXEC Y: refused; SPA command messages"),
        ("SOURCE ANY\nKEY k1\nHMAC_KEY k1\n", "access.conf:1: the encryption key and the HMAC key are identical"),
        ("SOURCE ANY\nKEY __CHANGEME__\nHMAC_KEY k2\n", "access.conf:2: KEY is still the placeholder"),
        ("SOURCE ANY\nKEY k1\nHMAC_KEY k2\nCMD_CYCLE_OPEN /bin/true\n", "access.conf:1: CMD_CYCLE_OPEN without CMD_CYCLE_CLOSE"),
        ("SOURCE ANY\nKEY k1\nHMAC_KEY k2\nCMD_CYCLE_OPEN /bin/true\nCMD_CYCLE_CLOSE /bin/true\n", "access.conf:1: CMD_CYCLE_CLOSE without CMD_CYCLE_TIMER"),
        ("SOURCE 192.0.2.0/33\nKEY k1\nHMAC_KEY k2\n", "access.conf:1: SOURCE '192.0.2.0/33': prefix longer than the address"),
        ("SOURCE ANY\nKEY k1\nHMAC_KEY k2\nOPEN_PORTS tcp/22, icmp/0\n", "access.conf:4: OPEN_PORTS 'tcp/22, icmp/0': expected a list"),
        ("SOURCE ANY\nKEY k1\nHMAC_KEY k2\nFORCE_NAT 192.0.2.5 22\n", "access.conf:4: FORCE_NAT 192.0.2.5 22: refused; NAT"),
        ("%include_keys /x\n", "access.conf:1: %include_keys is not supported"),
    ];
    for (text, want) in cases {
        let e = access(text).unwrap_err();
        assert!(e[0].to_string().starts_with(want), "{text:?}: {e:?}");
    }
}

#[test]
fn access_conf_values_and_warnings() {
    let text = format!(
        "# OpenWrt's LuCI writes these\nkeytype Base 64 key\nSOURCE: 192.0.2.0/255.255.255.0, 2001:db8::/32\n{KEYS}\
         OPEN_PORTS tcp/22, udp/53\nRESTRICT_PORTS tcp/23\nFW_ACCESS_TIMEOUT 60\nMAX_FW_TIMEOUT 120\n\
         REQUIRE_SOURCE_ADDRESS Y\nREQUIRE_USERNAME alice\nACCESS_EXPIRE 12/31/2030\nGPG_HOME_DIR /x\nWHATEVER 1\n\
         SOURCE ANY\n{KEYS}CMD_CYCLE_OPEN nft add element inet fw4 spa {{ $IP . $PORT }} ; trailing\n\
         CMD_CYCLE_CLOSE NONE\n"
    );
    let (d, w) = access(&text).unwrap();
    assert_eq!(d.len(), 2);
    let a = &d[0];
    assert_eq!(a.name, "stanza #1");
    assert!(a.source[0].contains("192.0.2.200".parse().unwrap()));
    assert!(!a.source[0].contains("192.0.3.1".parse().unwrap()));
    assert!(a.source[1].contains("2001:db8::7".parse().unwrap()));
    assert_eq!(&a.keys.hmac[..], b"secret-hmac");
    assert_eq!(a.rules.open_ports.as_ref().unwrap().len(), 2);
    assert_eq!(a.rules.restrict_ports[0].to_string(), "tcp/23");
    assert_eq!((a.rules.timeout, a.rules.max_timeout), (60, 120));
    assert!(a.rules.require_source);
    assert_eq!(a.rules.require_user.as_deref(), Some("alice"));
    assert_eq!(a.rules.expires, Some(1_924_991_999)); // 2030-12-31 23:59:59 UTC
    assert_eq!(a.action, Action::Firewall);
    let b = &d[1];
    assert_eq!(
        b.action,
        Action::Commands {
            open: "nft add element inet fw4 spa { $IP . $PORT }".into(),
            close: None,
            style: Style::Fwknop
        }
    );
    let w: Vec<String> = w.iter().map(|e| e.to_string()).collect();
    assert!(
        w[0].starts_with("access.conf:2: keytype: outside any stanza"),
        "{w:?}"
    );
    assert!(w
        .iter()
        .any(|l| l.starts_with("access.conf:13: GPG_HOME_DIR: GnuPG is not supported")));
    assert!(w
        .iter()
        .any(|l| l.starts_with("access.conf:14: WHATEVER: unknown access variable")));
    assert!(w
        .iter()
        .any(|l| l.starts_with("access.conf:15: REQUIRE_SOURCE_ADDRESS not set")));
}

#[test]
fn includes_are_followed_and_bounded() {
    let dir = std::env::temp_dir().join(format!("latchkey-fwknop-inc-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("more")).unwrap();
    std::fs::write(dir.join("more/b.conf"), format!("SOURCE ANY\n{KEYS}")).unwrap();
    std::fs::write(dir.join("more/ignored.txt"), "garbage").unwrap();
    std::fs::write(
        dir.join("a.conf"),
        format!("SOURCE 192.0.2.1\n{KEYS}%include_folder more\n"),
    )
    .unwrap();
    std::fs::write(dir.join("loop.conf"), "%include loop.conf\n").unwrap();
    let conf = dir.join("fwknopd.conf");
    std::fs::write(&conf, "PCAP_FILTER udp port 5000\n").unwrap();
    let f = load(&conf, Some(&dir.join("a.conf"))).unwrap();
    assert_eq!(f.doors.len(), 2);
    assert_eq!(f.doors[1].name, "stanza #2");
    assert_eq!(f.doors[1].ports, [5000]);
    let e = load(&conf, Some(&dir.join("loop.conf"))).unwrap_err();
    assert!(e[0].message.contains("deeper than 3"), "{e:?}");
    let e = load(&dir.join("missing.conf"), None).unwrap_err();
    assert!(e[0].to_string().contains("missing.conf:0: cannot read"));
    std::fs::remove_dir_all(&dir).unwrap();
}
