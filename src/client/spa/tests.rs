use super::*;
use crate::config::Proto;

fn settings(pairs: &[(&str, &str)]) -> Settings {
    let mut s = Settings::default();
    for (k, v) in pairs {
        assert!(s.set(k, v).unwrap(), "{k}");
    }
    s
}

const KEY: &str = "W71GMIGS9Fvy0fWjHOUmThOiYm8VRsnfi7ctLoZnCBI=";
const HMAC: &str =
    "hmfIlOFc+JJkhrxebwuC3cU8GYXcxvOkzt5VxRp0Ry2erOnlGpB0PY/tzxL+kjIHqiIX977kYCFK+3i9MT9now==";

fn request() -> Request {
    settings(&[
        ("ACCESS", "tcp/22,udp/53"),
        ("ALLOW_IP", "192.0.2.2"),
        ("KEY_BASE64", KEY),
        ("HMAC_KEY_BASE64", HMAC),
        ("SPOOF_USER", "alice"),
    ])
    .request()
    .unwrap()
}

#[test]
fn packet_decodes_with_the_daemon_side() {
    // What we send goes through the receiving half of crate::spa as fwknopd's would.
    let r = request();
    let now = 1_700_000_000;
    let p = packet(&r, now).unwrap();
    assert!(wire::looks_like_spa(p.as_bytes()), "{p}");
    assert!(
        (wire::MIN_PAYLOAD..=wire::MAX_RIJNDAEL).contains(&p.len()),
        "{}",
        p.len()
    );
    let pkt = wire::Packet::parse(p.as_bytes()).unwrap();
    assert!(pkt.authentic(&r.keys.hmac));
    assert!(!pkt.authentic(b"another hmac key"));
    let m = pkt.decrypt(&r.keys.enc).unwrap();
    assert_eq!(m.timestamp, now);
    assert_eq!(m.allow, "192.0.2.2".parse::<Ipv4Addr>().unwrap());
    assert_eq!(m.user.as_str(), "alice");
    assert_eq!(m.client_timeout, 0);
    let access: Vec<(Proto, u16)> = m.access.iter().map(|a| (a.proto, a.port)).collect();
    assert_eq!(access, [(Proto::Tcp, 22), (Proto::Udp, 53)]);
    assert!(m.rand.iter().all(u8::is_ascii_digit));
    // Two packets for the same request differ (salt, random digits): no self-made replays.
    let q = packet(&r, now).unwrap();
    assert_ne!(p, q);
}

#[test]
fn timeout_makes_type_3() {
    let mut r = request();
    r.timeout = 45;
    r.allow = Ipv4Addr::UNSPECIFIED;
    let p = packet(&r, 1_700_000_000).unwrap();
    let m = wire::Packet::parse(p.as_bytes())
        .unwrap()
        .decrypt(&r.keys.enc)
        .unwrap();
    assert_eq!((m.client_timeout, m.allow), (45, Ipv4Addr::UNSPECIFIED));
}

#[test]
fn request_needs_everything_and_an_hmac() {
    let full = [
        ("ACCESS", "tcp/22"),
        ("ALLOW_IP", "source"),
        ("KEY", "secret"),
        ("HMAC_KEY", "other secret"),
    ];
    assert!(settings(&full).request().is_ok());
    for (missing, want) in [
        ("HMAC_KEY", "HMAC key"),
        ("KEY", "encryption key"),
        ("ACCESS", "ports to open"),
        ("ALLOW_IP", "address to let in"),
    ] {
        let some: Vec<_> = full
            .iter()
            .copied()
            .filter(|(k, _)| *k != missing)
            .collect();
        let e = settings(&some).request().unwrap_err();
        assert!(e.contains(want), "without {missing}: {e}");
    }
    let same = settings(&[
        ("ACCESS", "tcp/22"),
        ("ALLOW_IP", "source"),
        ("KEY", "k"),
        ("HMAC_KEY", "k"),
    ]);
    assert!(same.request().unwrap_err().contains("must differ"));
    let long = "k".repeat(33);
    let e = settings(&[
        ("ACCESS", "tcp/22"),
        ("ALLOW_IP", "source"),
        ("KEY", &long),
        ("HMAC_KEY", "h"),
    ])
    .request()
    .unwrap_err();
    assert!(e.contains("1..32 bytes"), "{e}");
    let e = settings(&[("KEY_BASE64", "not base64!"), ("HMAC_KEY", "h")])
        .request()
        .unwrap_err();
    assert!(e.contains("bad encryption key"), "{e}");
    let mut bad_user = settings(&full);
    bad_user.user = Some("a:b".into());
    assert!(bad_user.request().unwrap_err().contains("bad user name"));
}

#[test]
fn settings_refuse_what_we_cannot_send() {
    let mut s = Settings::default();
    for (k, v) in [
        ("USE_HMAC", "N"),
        ("HMAC_DIGEST_TYPE", "sha512"),
        ("DIGEST_TYPE", "md5"),
        ("ENCRYPTION_MODE", "legacy"),
        ("SPA_SERVER_PROTO", "tcp"),
        ("USE_GPG", "Y"),
        ("NAT_ACCESS", "192.0.2.9,22"),
        ("ALLOW_IP", "resolve"),
        ("ALLOW_IP", "2001:db8::2"),
        ("FW_TIMEOUT", "70000"),
        ("FW_TIMEOUT", "-1"),
        ("SPA_SERVER_PORT", "0"),
        ("ACCESS", "icmp/1"),
    ] {
        assert!(s.set(k, v).is_err(), "{k} {v}");
    }
    for (k, v) in [
        ("USE_HMAC", "Y"),
        ("HMAC_DIGEST_TYPE", "SHA256"),
        ("USE_GPG", "N"),
    ] {
        assert_eq!(s.set(k, v), Ok(true), "{k} {v}");
    }
    assert_eq!(s.set("VERBOSE", "Y"), Ok(false));
    assert_eq!(s, Settings::default());
}

#[test]
fn overlay_prefers_the_top() {
    let low = settings(&[("ACCESS", "tcp/22"), ("SPA_SERVER_PORT", "1000")]);
    let high = settings(&[("ACCESS", "udp/53")]);
    let both = low.overlay(high);
    assert_eq!(both.access.as_deref(), Some("udp/53"));
    assert_eq!(both.port, Some(1000));
}

#[test]
fn keygen_prints_fwknop_form() {
    let text = keygen().unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2);
    let key = lines[0].strip_prefix("KEY_BASE64: ").unwrap();
    let hmac = lines[1].strip_prefix("HMAC_KEY_BASE64: ").unwrap();
    assert_eq!(wire::decode_key(key, 32).map(|k| k.len()), Some(32));
    assert_eq!(wire::decode_key(hmac, 136).map(|k| k.len()), Some(64));
    assert_ne!(keygen().unwrap(), text, "fresh randomness each time");
}
