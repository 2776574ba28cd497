use super::*;
use crate::config::Proto;

fn ok(text: &str) -> Config {
    match parse(Path::new("/etc/knockd.conf"), text) {
        Ok(c) => c,
        Err(e) => panic!("unexpected errors: {e:?}"),
    }
}

fn errors(text: &str) -> Vec<String> {
    match parse(Path::new("/etc/knockd.conf"), text) {
        Ok(_) => panic!("expected errors"),
        Err(e) => e.iter().map(|e| e.to_string()).collect(),
    }
}

/// knockd's own example config, as issue 3 gives it (also used by the e2e and fuzz seeds).
const ISSUE_CONFIG: &str = include_str!("../../../tests/knockd-example.conf");

#[test]
fn reads_the_knockd_example() {
    let c = ok(ISSUE_CONFIG);
    assert_eq!(
        c.options.log_file,
        Some(PathBuf::from("/var/log/knockd.log"))
    );
    assert_eq!(c.options.interfaces, ["eno1"]);
    assert_eq!(c.doors.len(), 2);
    let d = &c.doors[0];
    assert_eq!(d.name, "openSSH4knocker");
    let ports: Vec<u16> = d.sequence.iter().map(|s| s.port).collect();
    assert_eq!(ports, [64001, 64099, 64024, 64005]);
    assert!(d.sequence.iter().all(|s| s.proto == Proto::Tcp));
    assert_eq!(d.seq_timeout, Duration::from_secs(30));
    assert_eq!(d.cmd_timeout, Duration::from_secs(180));
    assert_eq!(d.flags.set, flag::SYN);
    assert_eq!(
        d.start_for("192.0.2.9".parse().unwrap()),
        Some("/sbin/iptables -I INPUT 1 -s %IP% -p tcp --dport 22 -j ACCEPT")
    );
    // `command` is an alias of start_command; the _6 variant falls back to it.
    let e = &c.doors[1];
    assert_eq!(
        e.start_for("2001:db8::9".parse().unwrap()),
        Some("/sbin/iptables -I INPUT 1 -p tcp --dport 22 -j ACCEPT")
    );
}

#[test]
fn defaults_aliases_and_case() {
    let c = ok("[Door]\nSEQUENCE = 7000:UDP, 8000 ,9000:tcp\nTimeout = 5\n\
                COMMAND_6 = six %IP%\nStart_Command = four %IP%\nStop_Command_6 =\n\
                TCPFlags = syn\ntcpflags = !ack,!Rst\nTarget = 192.0.2.77\n");
    let d = &c.doors[0];
    assert_eq!(d.name, "Door");
    assert_eq!(
        d.sequence[0],
        Step {
            proto: Proto::Udp,
            port: 7000
        }
    );
    assert_eq!(
        d.sequence[1],
        Step {
            proto: Proto::Tcp,
            port: 8000
        }
    );
    assert_eq!(d.seq_timeout, Duration::from_secs(5));
    assert_eq!(d.cmd_timeout, Duration::from_secs(10));
    assert_eq!(d.flags.set, flag::SYN);
    assert_eq!(d.flags.clear, flag::ACK | flag::RST);
    assert_eq!(d.target, Some("192.0.2.77".parse().unwrap()));
    let v6: IpAddr = "2001:db8::1".parse().unwrap();
    let v4: IpAddr = "192.0.2.1".parse().unwrap();
    assert_eq!(d.start_for(v6), Some("six %IP%"));
    assert_eq!(d.start_for(v4), Some("four %IP%"));
    // An empty _6 value disables, it does not fall back.
    assert_eq!(d.stop_for(v6), None);
    assert_eq!(d.stop_for(v4), None);
}

#[test]
fn commands_keep_everything_after_the_first_equals() {
    let c = ok("[d]\nsequence=1\nstart_command = nft add element x y { %IP% timeout=5s }\n");
    assert_eq!(
        c.doors[0].start.as_deref(),
        Some("nft add element x y { %IP% timeout=5s }")
    );
}

#[test]
fn options_usesyslog_and_ours() {
    let c = ok(
        "[options]\nUseSyslog\nPidFile = /run/k.pid\nSweepGuard = no\n\
                TolerateRepeats = off\nExtendGrants = false\nMaxAttempts = 100\n\
                StateFile = /tmp/s\n[d]\nsequence = 1\n",
    );
    let o = &c.options;
    assert!(o.use_syslog);
    assert_eq!(o.pid_file, PathBuf::from("/run/k.pid"));
    assert!(!o.sweep_guard && !o.tolerate_repeats && !o.extend_grants);
    assert_eq!(o.max_attempts, 100);
    assert_eq!(o.state_file, Some(PathBuf::from("/tmp/s")));
}

#[test]
fn every_kind_of_mistake_names_file_and_line() {
    let e = errors(
        "Interface = eth0\n[options]\nFrobnicate = 1\n[a]\nsequence = 0,22\n[b]\n\
         sequence = 70000\n[c]\nsequence = 22:icmp\n[d]\nsequence = 22\ntcpflags = syn,fun\n\
         [e]\nstart_command = x\n[]\n[f]\nsequence = 1\nbogus = 2\n[g]\nsequence = 1\n\
         seq_timeout = soon\n",
    );
    let expect = [
        "/etc/knockd.conf:1: 'Interface' is outside any section",
        "/etc/knockd.conf:3: Frobnicate: unknown option 'Frobnicate'",
        "/etc/knockd.conf:5: sequence: bad port '0'",
        "/etc/knockd.conf:7: sequence: bad port '70000'",
        "/etc/knockd.conf:9: sequence: bad protocol 'icmp'",
        "/etc/knockd.conf:12: tcpflags: unknown TCP flag 'fun'",
        "/etc/knockd.conf:13: door [e] has no sequence",
        "/etc/knockd.conf:15: empty section name",
        "/etc/knockd.conf:18: bogus: unknown key 'bogus'",
        "/etc/knockd.conf:21: seq_timeout: 'soon': expected a whole number",
    ];
    assert_eq!(e.len(), expect.len(), "{e:#?}");
    for (got, want) in e.iter().zip(expect) {
        assert!(
            got.starts_with(want),
            "{got:?} does not start with {want:?}"
        );
    }
}

#[test]
fn junk_ports_and_too_long_sequences_are_refused() {
    for bad in ["abc", "22x", "-1", "", "1,,2", " : tcp"] {
        assert!(parse_sequence(bad).is_err(), "{bad:?} accepted");
    }
    let long: Vec<String> = (1..=33).map(|p| p.to_string()).collect();
    assert!(parse_sequence(&long.join(",")).is_err());
    assert_eq!(
        parse_sequence(&long[..32].join(",")).map(|s| s.len()),
        Ok(32)
    );
}

#[test]
fn comments_blank_lines_and_options_case() {
    // Only `[options]` in this exact case is the global section; `[Options]` is a door.
    let e = errors("# comment\n\n   # indented comment\n[Options]\nlogfile = x\n");
    assert!(e[0].contains(":5: logfile: unknown key"), "{e:?}");
}

#[test]
fn unreadable_file_is_reported() {
    let e = crate::config::load(Path::new("/nonexistent/knockd.conf")).unwrap_err();
    assert_eq!(e[0].line, 0);
    assert!(e[0]
        .to_string()
        .starts_with("/nonexistent/knockd.conf:0: cannot read config file"));
}

#[test]
fn one_time_sequences_file() {
    let dir = std::env::temp_dir().join(format!("lk-onetime-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let seqs = dir.join("seqs");
    std::fs::write(&seqs, "# used already\n  1000,2000:udp\n3000,4000\n").unwrap();
    let conf = dir.join("knockd.conf");
    let c = parse(&conf, "[d]\none_time_sequences = seqs\n").unwrap();
    let d = &c.doors[0];
    assert_eq!(
        d.sequence[1],
        Step {
            proto: Proto::Udp,
            port: 2000
        }
    );
    let one = d.one_time.clone().unwrap();
    assert_eq!(one.line, 2);
    crate::config::mark_used(&one).unwrap();
    assert_eq!(
        std::fs::read_to_string(&seqs).unwrap(),
        "# used already\n  #000,2000:udp\n3000,4000\n"
    );
    let (one, seq) = crate::config::OneTime::open(&seqs).unwrap();
    assert_eq!(seq[0].port, 3000);
    crate::config::mark_used(&one).unwrap();
    let (_, seq) = crate::config::OneTime::open(&seqs).unwrap();
    assert!(seq.is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

const SPA_KEYS: &str = "Key_Base64 = W71GMIGS9Fvy0fWjHOUmThOiYm8VRsnfi7ctLoZnCBI=\n\
    HMAC_Key = a-long-hmac-secret\n";

#[test]
fn spa_doors_live_beside_knock_doors() {
    use crate::spa::door::{Action, Style};
    let c = ok(&format!(
        "[options]\nSpaReplayEntries = 64\nSpaReplayFile = /tmp/r\n\
         [knock]\nsequence = 1,2,3\n\
         [ssh-spa]\nSPA_Port = 62201\n{SPA_KEYS}Open_Ports = tcp/22\nCmd_Timeout = 45\n\
         Max_Timeout = 90\nStart_Command = open %IP% %PROTO% %PORT% %TIMEOUT%\nStop_Command = close %IP%\n\
         [fw]\nCmd_Timeout = 5\nspa_port = 40001\n{SPA_KEYS}Require_Source_Address = no\nMax_Packet_Age = 0\n\
         Source = 198.18.0.0/15\n"
    ));
    assert_eq!(c.doors.len(), 1);
    assert_eq!(c.spa.len(), 2);
    assert_eq!(c.options.spa_replay_entries, 64);
    let s = &c.spa[0];
    assert_eq!((s.name.as_str(), &s.ports[..]), ("ssh-spa", &[62201][..]));
    assert_eq!((s.rules.timeout, s.rules.max_timeout), (45, 90));
    assert!(
        s.rules.require_source,
        "new doors require a real address by default"
    );
    assert_eq!(s.rules.max_age, Some(120));
    assert_eq!(
        s.action,
        Action::Commands {
            open: "open %IP% %PROTO% %PORT% %TIMEOUT%".into(),
            close: Some("close %IP%".into()),
            style: Style::Knockd
        }
    );
    let f = &c.spa[1];
    assert_eq!((f.rules.timeout, f.rules.max_age), (5, None));
    assert!(!f.rules.require_source);
    assert_eq!(f.action, Action::Firewall);
    assert!(f.serves(
        40001,
        "198.19.1.1".parse().unwrap(),
        "192.0.2.1".parse().unwrap()
    ));
    assert!(!f.serves(
        40001,
        "192.0.2.9".parse().unwrap(),
        "192.0.2.1".parse().unwrap()
    ));
    assert!(!f.serves(
        62201,
        "198.19.1.1".parse().unwrap(),
        "192.0.2.1".parse().unwrap()
    ));
}

#[test]
fn spa_door_mistakes_name_file_and_line() {
    let e = errors(&format!(
        "[a]\nKey = x\n\
         [b]\nSPA_Port = 1\nKey = same\nHMAC_Key = same\n\
         [c]\nSPA_Port = 1\n{SPA_KEYS}Sequence = 1,2\n\
         [d]\nSPA_Port = 70000\n\
         [e]\nSPA_Port = 1\n{SPA_KEYS}Stop_Command = x\n\
         [f]\nSPA_Port = 1\n{SPA_KEYS}Start_Command_6 = x\n\
         [g]\nSPA_Port = 1\nKey_Base64 = !!\n"
    ));
    let want = [
        "/etc/knockd.conf:1: SPA door [a]: has SPA keys but no SPA_Port",
        "/etc/knockd.conf:3: SPA door [b]: the encryption key and the HMAC key are identical",
        "/etc/knockd.conf:7: SPA door [c]: has both a Sequence and SPA keys",
        "/etc/knockd.conf:13: SPA_Port = 70000: expected a UDP port",
        "/etc/knockd.conf:12: SPA door [d]: has SPA keys but no SPA_Port",
        "/etc/knockd.conf:14: SPA door [e]: has a Stop_Command but no Start_Command",
        "/etc/knockd.conf:19: SPA door [f]: Start_Command_6/Stop_Command_6",
        "/etc/knockd.conf:26: Key_Base64 = !!: expected base64",
        "/etc/knockd.conf:24: SPA door [g]: needs both an encryption key",
    ];
    assert_eq!(e.len(), want.len(), "{e:#?}");
    for (got, want) in e.iter().zip(want) {
        assert!(got.starts_with(want), "{got} vs {want}");
    }
}

#[test]
fn an_spa_door_opens_every_requested_port_with_its_commands() {
    use crate::spa::{self, replay::Cache, wire, Access, Keys, Message, Refusal, Wire};
    let c = ok(&format!(
        "[ssh]\nSPA_Port = 62201\n{SPA_KEYS}Open_Ports = tcp/22, udp/53\nMax_Timeout = 60\n\
         Start_Command = open %IP% %PROTO% %PORT% %TIMEOUT%\nStop_Command = close %IP% %PORT%\n"
    ));
    let d = &c.spa[0];
    let keys = Keys::new(&d.keys.enc, b"a-long-hmac-secret").unwrap();
    let mut m = Message {
        timestamp: 1_800_000_000,
        allow: "198.18.0.9".parse().unwrap(),
        client_timeout: 600,
        ..Message::default()
    };
    m.user.push_str("alice").unwrap();
    for (proto, port) in [(Proto::Tcp, 22), (Proto::Udp, 53)] {
        m.access.push(Access { proto, port }).unwrap();
    }
    let p = wire::encode(&m, &keys, [9; 8]);
    let w = Wire {
        src: "192.0.2.2".parse().unwrap(),
        dst: "192.0.2.1".parse().unwrap(),
        port: 62201,
    };
    let mut cache = Cache::new(16);
    let doors = c.spa.iter().map(|d| &**d);
    let a = spa::receive(doors, p.as_bytes(), w, 1_800_000_010, &mut cache).unwrap();
    let cmds = a.door.commands(&a.grant, w.src, w.dst, a.msg.timestamp);
    assert_eq!(
        cmds,
        [
            (
                "open 198.18.0.9 tcp 22 60".to_string(),
                Some("close 198.18.0.9 22".to_string())
            ),
            (
                "open 198.18.0.9 udp 53 60".to_string(),
                Some("close 198.18.0.9 53".to_string())
            ),
        ]
    );
    // The same packet again, with a newline: a replay. Another port: no door.
    let again = format!("{p}\n");
    let doors = c.spa.iter().map(|d| &**d);
    let e = spa::receive(doors, again.as_bytes(), w, 1_800_000_011, &mut cache).unwrap_err();
    assert_eq!(e.1, Refusal::Replay);
    let other = Wire { port: 1, ..w };
    let doors = c.spa.iter().map(|d| &**d);
    let e = spa::receive(doors, p.as_bytes(), other, 1_800_000_011, &mut cache).unwrap_err();
    assert_eq!(e, (None, Refusal::NoDoor));
}

#[test]
fn interface_takes_a_comma_separated_list() {
    let c = ok("[options]\nInterface = pppoe-wan, wg0,eth1.2\n[d]\nsequence = 1\n");
    assert_eq!(c.options.interfaces, ["pppoe-wan", "wg0", "eth1.2"]);
    for bad in [
        "eth0,,wg0",
        "eth0 wg0",
        "a/b",
        "eth0:1",
        "waytoolonginterfacename",
    ] {
        let text = format!("[options]\n  Interface = {bad}\n[d]\nsequence = 1\n");
        let e = parse(Path::new("k.conf"), &text).unwrap_err();
        assert!(
            e[0].to_string().starts_with("k.conf:2: Interface: "),
            "{bad}: {}",
            e[0]
        );
    }
}

#[test]
fn a_door_name_used_twice_is_an_error_at_the_second_header() {
    // Grants and log lines name the door: with two [ssh] doors the second one's start command
    // would never run (its grant looks like the first's).
    let e = errors(
        "[ssh]\nsequence = 7000\n\n[other]\nsequence = 7500\n[ssh]\nsequence = 8000\n\
         bogus = 1\n",
    );
    assert_eq!(e.len(), 2, "{e:?}");
    assert_eq!(
        e[0],
        "/etc/knockd.conf:6: door [ssh] is already defined at line 1; expected each door \
         name once (the log and the grants tell doors apart by name)"
    );
    // The duplicate's own lines are still checked.
    assert!(
        e[1].starts_with("/etc/knockd.conf:8: bogus: unknown key"),
        "{}",
        e[1]
    );
    // Names are compared as knockd compares section names: exactly, after trimming.
    assert_eq!(errors("[a]\nsequence = 1\n[ a ]\nsequence = 2\n").len(), 1);
    let c = ok("[ssh]\nsequence = 7000\n[SSH]\nsequence = 8000\n[options]\n[options]\n");
    assert_eq!(c.doors.len(), 2);
}

#[test]
#[cfg(feature = "own-firewall")]
fn the_firewall_action_uses_the_openwrt_helper_when_installed_else_iptables_else_nft() {
    let c = ok(&format!("[fw]\nSPA_Port = 1\n{SPA_KEYS}"));
    let f = &c.spa[0];
    let mut access = heapless::Vec::new();
    access
        .push(crate::spa::Access {
            proto: Proto::Udp,
            port: 53,
        })
        .unwrap();
    let g = crate::spa::policy::Grant {
        ip: "2001:db8::9".parse().unwrap(),
        access,
        timeout: 5,
    };
    let src = "2001:db8::9".parse().unwrap();
    let (open, close) = f.command(&g, g.access[0], src, src, 0);
    let nft = crate::spa::door::NFT;
    assert_eq!(
        open,
        format!(
            "if [ -x /usr/share/latchkey/fw ]; then exec /usr/share/latchkey/fw open 2001:db8::9 \
             udp 53 5; fi; if command -v ip6tables >/dev/null 2>&1; then set -- -s 2001:db8::9 \
             -p udp --dport 53 -m comment --comment latchkey-spa -j ACCEPT; ip6tables -w -C \
             INPUT \"$@\" 2>/dev/null || exec ip6tables -w -I INPUT 1 \"$@\"; exit 0; fi; set -- \
             open 2001:db8::9 udp 53 5; {nft}"
        )
    );
    assert_eq!(
        close,
        Some(format!(
            "if [ -x /usr/share/latchkey/fw ]; then exec /usr/share/latchkey/fw close 2001:db8::9 \
             udp 53; fi; if command -v ip6tables >/dev/null 2>&1; then exec ip6tables -w -D \
             INPUT -s 2001:db8::9 -p udp --dport 53 -m comment --comment latchkey-spa -j \
             ACCEPT; fi; set -- close 2001:db8::9 udp 53; {nft}"
        ))
    );
}

#[test]
fn number_takes_what_str_parse_took_for_integers_and_nothing_else() {
    use crate::config::number;
    for (s, n) in [("0", 0), ("22", 22), ("+22", 22), ("0065535", 65535)] {
        assert_eq!(number(s), Some(n), "{s}");
    }
    assert_eq!(
        number("9999999999999999999"),
        Some(9_999_999_999_999_999_999)
    );
    for s in [
        "",
        "+",
        "-1",
        " 1",
        "1 ",
        "1.0",
        "0x10",
        "١",
        "99999999999999999999",
    ] {
        assert_eq!(number(s), None, "{s:?}");
    }
}

#[test]
fn a_nul_byte_is_refused_at_its_line() {
    let errs = crate::config::parse(
        std::path::Path::new("k.conf"),
        "[ssh]\nsequence = 1,2\nstart_command = echo \0 x\n",
    )
    .unwrap_err();
    assert!(
        errs.iter()
            .any(|e| e.line == 3 && e.message.contains("NUL")),
        "{errs:?}"
    );
}
