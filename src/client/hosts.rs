//! Saved hosts: `latchkey knock NAME` reads the sequence from a file shaped like ssh_config.
//!
//! ```text
//! # ~/.config/latchkey/knock.conf
//! Host home router          # one or more names for the block
//!     HostName home.example.net
//!     Sequence 7000, 8000:udp, 9000
//!     Delay    200           # milliseconds between knocks
//!     Family   any           # 4, 6 or any
//!     Check    22            # connect here afterwards to see the door open
//! ```
//!
//! Rules, chosen to be unsurprising for ssh_config and knockd.conf users: one `Keyword value`
//! per line (`Keyword=value` and `Keyword = value` too, so knockd's `Sequence = ...` line can
//! be pasted); keywords are case-insensitive; blank lines and lines starting with `#` are
//! skipped; `HostName` defaults to the block's first name. Unlike ssh, a `#` after a value
//! starts a comment, a keyword given twice in a block or a name defined twice is an error (ssh
//! silently keeps the first, which hides typos), and there are no wildcards. Every error names
//! FILE:LINE.

use std::fmt::Write as _;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::resolve::Family;
use super::sequence::{self, Knock};
use super::spa;

/// One `Host` block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedHost {
    /// The names after `Host`; any of them selects the block.
    pub names: Vec<String>,
    /// Where to knock: `HostName`, or the first name when absent.
    pub hostname: String,
    /// The knocks, in order.
    pub sequence: Vec<Knock>,
    /// Milliseconds between knocks, if set.
    pub delay_ms: Option<u32>,
    /// Address family, if set.
    pub family: Option<Family>,
    /// Port to probe after knocking, if set.
    pub check: Option<u16>,
    /// fwknop SPA settings (`ACCESS`, `KEY_BASE64`, ...); a host with keys is sent an SPA
    /// packet instead of a sequence.
    pub spa: spa::Settings,
    /// Line of the `Host` keyword, for messages.
    pub line: usize,
}

impl SavedHost {
    /// One line for `--list -v`.
    pub fn describe(&self) -> String {
        let what = if self.spa.has_key() {
            // Never the keys: --list output ends up in terminals and bug reports.
            let sp = &self.spa;
            let mut w = format!("spa {}", sp.access.as_deref().unwrap_or("(no ACCESS)"));
            if let Some(ip) = sp.allow {
                let ip = if ip.is_unspecified() {
                    "source".to_string()
                } else {
                    ip.to_string()
                };
                let _ = write!(w, " allow {ip}");
            }
            if let Some(p) = sp.port {
                let _ = write!(w, " port {p}");
            }
            if let Some(t) = sp.timeout {
                let _ = write!(w, " timeout {t}s");
            }
            w
        } else {
            sequence::format_list(&self.sequence)
        };
        let mut s = format!("{}  {}  {what}", self.names.join(" "), self.hostname);
        if let Some(d) = self.delay_ms {
            let _ = write!(s, "  delay {d}ms");
        }
        if let Some(f) = self.family {
            let _ = write!(s, "  family {f}");
        }
        if let Some(c) = self.check {
            let _ = write!(s, "  check {c}");
        }
        s
    }
}

/// A parsed file and where it came from.
#[derive(Debug)]
pub struct HostsFile {
    /// The file's path as given or found.
    pub path: PathBuf,
    /// Its blocks, in file order.
    pub hosts: Vec<SavedHost>,
}

impl HostsFile {
    /// The block that `name` selects (names are case-sensitive, as host aliases in ssh).
    pub fn find(&self, name: &str) -> Option<&SavedHost> {
        self.hosts
            .iter()
            .find(|h| h.names.iter().any(|n| n == name))
    }
}

/// The files searched when `-F` is not given, most personal first. This is the only place
/// that knows where saved hosts live on each system.
pub fn default_paths() -> Vec<PathBuf> {
    let mut paths = Vec::new();
    #[cfg(windows)]
    {
        // Roaming profile: follows the user between machines, as the sequence should.
        if let Some(appdata) = std::env::var_os("APPDATA") {
            paths.push(PathBuf::from(appdata).join("latchkey").join("knock.conf"));
        }
        if let Some(data) = std::env::var_os("ProgramData") {
            paths.push(PathBuf::from(data).join("latchkey").join("knock.conf"));
        }
    }
    #[cfg(not(windows))]
    {
        // XDG_CONFIG_HOME counts only when absolute, as the XDG spec says.
        let xdg = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute());
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute());
        if let Some(dir) = xdg.or_else(|| home.map(|h| h.join(".config"))) {
            paths.push(dir.join("latchkey").join("knock.conf"));
        }
        paths.push(PathBuf::from("/etc/latchkey/knock.conf"));
    }
    paths
}

/// Loads `-F FILE` (which must exist), or every default file that exists, in search order.
pub fn load_all(explicit: Option<&Path>) -> Result<Vec<HostsFile>, String> {
    if let Some(path) = explicit {
        return Ok(vec![load(path)?]);
    }
    let mut files = Vec::new();
    for path in default_paths() {
        match read_text(&path) {
            Ok(text) => files.push(HostsFile {
                hosts: parse(&path.display().to_string(), &text)?,
                path,
            }),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        }
    }
    Ok(files)
}

/// Reads a saved-hosts file as text: UTF-8, with or without a byte-order mark, or UTF-16 with
/// its mark. Windows editors and shells write all of these (Notepad: UTF-8; PowerShell 5's
/// `Set-Content -Encoding UTF8`: UTF-8 with a BOM; its `>` and `Out-File`: UTF-16LE), and a
/// user should not have to know which one was used.
fn read_text(path: &Path) -> std::io::Result<String> {
    decode(std::fs::read(path)?)
        .ok_or_else(|| std::io::Error::new(ErrorKind::InvalidData, "not UTF-8 or UTF-16 text"))
}

/// The text in `bytes` (see `read_text`), or `None` when it is not valid text.
fn decode(bytes: Vec<u8>) -> Option<String> {
    let utf16 = |bytes: &[u8], unit: fn([u8; 2]) -> u16| {
        if !bytes.len().is_multiple_of(2) {
            return None;
        }
        let units: Vec<u16> = bytes.chunks_exact(2).map(|c| unit([c[0], c[1]])).collect();
        String::from_utf16(&units).ok()
    };
    match bytes.as_slice() {
        [0xef, 0xbb, 0xbf, rest @ ..] => String::from_utf8(rest.to_vec()).ok(),
        [0xff, 0xfe, rest @ ..] => utf16(rest, u16::from_le_bytes),
        [0xfe, 0xff, rest @ ..] => utf16(rest, u16::from_be_bytes),
        _ => String::from_utf8(bytes).ok(),
    }
}

/// Reads and parses one file.
pub fn load(path: &Path) -> Result<HostsFile, String> {
    let text = read_text(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(HostsFile {
        hosts: parse(&path.display().to_string(), &text)?,
        path: path.to_path_buf(),
    })
}

/// A block while it is being read; the `usize`s are the lines keys were set on.
#[derive(Default)]
struct Draft {
    names: Vec<String>,
    line: usize,
    hostname: Option<(String, usize)>,
    sequence: Option<(Vec<Knock>, usize)>,
    delay_ms: Option<(u32, usize)>,
    family: Option<(Family, usize)>,
    check: Option<(u16, usize)>,
    spa: spa::Settings,
    /// fwknop variables set so far, upper-case, with their lines.
    spa_vars: Vec<(String, usize)>,
}

impl Draft {
    fn finish(self, file: &str) -> Result<SavedHost, String> {
        let sequence = match (self.sequence, self.spa.has_key()) {
            (Some((seq, _)), false) => seq,
            (None, true) => Vec::new(),
            (Some((_, line)), true) => {
                return Err(format!(
                    "{file}:{line}: host '{}' has both a Sequence and SPA keys; \
                     expected one or the other",
                    self.names[0]
                ))
            }
            (None, false) => {
                return Err(format!(
                    "{file}:{}: host '{}' has no Sequence (or SPA keys)",
                    self.line, self.names[0]
                ))
            }
        };
        Ok(SavedHost {
            hostname: self
                .hostname
                .map(|(h, _)| h)
                .or_else(|| self.spa.server.clone())
                .unwrap_or_else(|| self.names[0].clone()),
            names: self.names,
            sequence,
            delay_ms: self.delay_ms.map(|(d, _)| d),
            family: self.family.map(|(f, _)| f),
            check: self.check.map(|(c, _)| c),
            spa: self.spa,
            line: self.line,
        })
    }
}

/// Stores `value` in `slot` unless the keyword was already given in this block.
fn set_once<T>(
    slot: &mut Option<(T, usize)>,
    value: T,
    line: usize,
    key: &str,
) -> Result<(), String> {
    if let Some((_, first)) = slot {
        return Err(format!(
            "{key} given twice in this Host block (first at line {first})"
        ));
    }
    *slot = Some((value, line));
    Ok(())
}

/// Takes an fwknop variable (`ACCESS tcp/22`, `KEY_BASE64 ...`) into the block, once.
fn spa_var(d: &mut Draft, key: &str, value: &str, line: usize) -> Result<(), String> {
    // KEY and KEY_BASE64 are one setting written two ways: the second is a repeat too.
    let upper = key.to_ascii_uppercase();
    let upper = upper.strip_suffix("_BASE64").unwrap_or(&upper).to_string();
    if let Some((_, first)) = d.spa_vars.iter().find(|(k, _)| *k == upper) {
        return Err(format!(
            "{key} given twice in this Host block (first at line {first})"
        ));
    }
    if !d.spa.set(key, value)? {
        return Err(format!(
            "unknown keyword '{key}' (expected Host, HostName, Sequence, Delay, Family, Check, \
             or fwknop's ACCESS, ALLOW_IP, FW_TIMEOUT, SPA_SERVER_PORT, KEY_BASE64, \
             HMAC_KEY_BASE64, KEY, HMAC_KEY, SPOOF_USER)"
        ));
    }
    d.spa_vars.push((upper, line));
    Ok(())
}

/// Parses the text of a saved-hosts file; `file` is used in messages only.
pub fn parse(file: &str, text: &str) -> Result<Vec<SavedHost>, String> {
    let mut hosts: Vec<SavedHost> = Vec::new();
    let mut draft: Option<Draft> = None;
    for (idx, raw) in text.lines().enumerate() {
        let line = idx + 1;
        let at = |msg: String| format!("{file}:{line}: {msg}");
        // Comments: whole lines, and anything after " #" (a port list never contains '#').
        let content = raw.split_once('#').map_or(raw, |(before, _)| before).trim();
        if content.is_empty() {
            continue;
        }
        let key_end = content
            .find(|c: char| c.is_whitespace() || c == '=')
            .unwrap_or(content.len());
        let (key, rest) = content.split_at(key_end);
        // fwknop --key-gen (and latchkey keygen) print `KEY_BASE64: ...`: paste as is.
        let key = key.strip_suffix(':').unwrap_or(key);
        let rest = rest.trim_start();
        let value = rest.strip_prefix('=').unwrap_or(rest).trim();
        if value.is_empty() {
            return Err(at(format!("{key} needs a value")));
        }
        if key.eq_ignore_ascii_case("host") {
            if let Some(d) = draft.take() {
                hosts.push(d.finish(file)?);
            }
            let names: Vec<String> = value.split_whitespace().map(str::to_string).collect();
            for name in &names {
                if name.contains(['*', '?', '!', ',']) {
                    return Err(at(format!(
                        "host name '{name}': patterns are not supported, give plain names"
                    )));
                }
                if let Some(h) = hosts.iter().find(|h| h.names.contains(name)) {
                    return Err(at(format!(
                        "host '{name}' is already defined at line {}",
                        h.line
                    )));
                }
                if names.iter().filter(|n| *n == name).count() > 1 {
                    return Err(at(format!("host '{name}' is listed twice")));
                }
            }
            draft = Some(Draft {
                names,
                line,
                ..Draft::default()
            });
            continue;
        }
        let Some(d) = draft.as_mut() else {
            return Err(at(format!(
                "{key} outside a Host block (start one with 'Host NAME')"
            )));
        };
        let lower = key.to_ascii_lowercase();
        let result = match lower.as_str() {
            "hostname" => set_once(&mut d.hostname, value.to_string(), line, "HostName"),
            "sequence" => sequence::parse_list(value)
                .and_then(|s| set_once(&mut d.sequence, s, line, "Sequence")),
            "delay" => value
                .parse::<u32>()
                .map_err(|_| format!("bad Delay '{value}': expected milliseconds, 0..4294967295"))
                .and_then(|v| set_once(&mut d.delay_ms, v, line, "Delay")),
            "family" | "addressfamily" => {
                Family::parse(value).and_then(|f| set_once(&mut d.family, f, line, "Family"))
            }
            "check" => sequence::parse_port_number(value, "Check port")
                .and_then(|p| set_once(&mut d.check, p, line, "Check")),
            _ => spa_var(d, key, value, line),
        };
        result.map_err(at)?;
    }
    if let Some(d) = draft {
        hosts.push(d.finish(file)?);
    }
    Ok(hosts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::sequence::Proto;

    const SAMPLE: &str = "\
# saved hosts
Host home router
    HostName home.example.net
    Sequence 7000, 8000:udp ,9000
    Delay 200
    Family 6
    Check 22

host office
  sequence = 1234:UDP   # pasted from knockd.conf
  DELAY=0
";

    #[test]
    fn sample_file() {
        let hosts = parse("k.conf", SAMPLE).unwrap();
        assert_eq!(hosts.len(), 2);
        let home = &hosts[0];
        assert_eq!(home.names, ["home", "router"]);
        assert_eq!(home.hostname, "home.example.net");
        assert_eq!(sequence::format_list(&home.sequence), "7000,8000:udp,9000");
        assert_eq!(home.delay_ms, Some(200));
        assert_eq!(home.family, Some(Family::V6));
        assert_eq!(home.check, Some(22));
        assert_eq!(home.line, 2);
        let office = &hosts[1];
        assert_eq!(office.hostname, "office", "HostName defaults to the name");
        assert_eq!(office.sequence[0].proto, Some(Proto::Udp));
        assert_eq!(
            (office.delay_ms, office.family, office.check),
            (Some(0), None, None)
        );
    }

    #[test]
    fn lookup_by_any_name() {
        let f = HostsFile {
            path: "k.conf".into(),
            hosts: parse("k.conf", SAMPLE).unwrap(),
        };
        assert_eq!(f.find("router").map(|h| h.line), Some(2));
        assert_eq!(f.find("office").map(|h| h.line), Some(9));
        assert!(f.find("Home").is_none());
        assert!(f.find("nowhere").is_none());
    }

    fn err(text: &str) -> String {
        parse("k.conf", text).unwrap_err()
    }

    #[test]
    fn errors_name_file_and_line() {
        let cases: &[(&str, &str)] = &[
            ("Sequence 1\n", "k.conf:1: Sequence outside a Host block"),
            (
                "Host a\n  Sequence 1\n  Port 22\n",
                "k.conf:3: unknown keyword 'Port'",
            ),
            ("Host a\n  Sequence 1,0\n", "k.conf:2: bad port '0'"),
            (
                "Host a\n\n  Sequence 1:icmp\n",
                "k.conf:3: bad protocol 'icmp'",
            ),
            (
                "Host a\n  Sequence 1\n  Delay -5\n",
                "k.conf:3: bad Delay '-5'",
            ),
            (
                "Host a\n  Sequence 1\n  Family 5\n",
                "k.conf:3: bad family '5'",
            ),
            (
                "Host a\n  Sequence 1\n  Check ssh\n",
                "k.conf:3: bad Check port 'ssh'",
            ),
            ("Host a\n  HostName\n", "k.conf:2: HostName needs a value"),
            (
                "Host a\n  Sequence 1\n  Sequence 2\n",
                "k.conf:3: Sequence given twice",
            ),
            (
                "Host a\n  HostName x\n",
                "k.conf:1: host 'a' has no Sequence",
            ),
            (
                "Host a\n Sequence 1\nHost b a\n",
                "k.conf:3: host 'a' is already defined at line 1",
            ),
            ("Host *.lan\n", "k.conf:1: host name '*.lan': patterns"),
            ("Host\n", "k.conf:1: Host needs a value"),
            ("Host a a\n", "k.conf:1: host 'a' is listed twice"),
            (
                "Host a\n  Sequence 1\n  KEY k\n  HMAC_KEY h\n",
                "k.conf:2: host 'a' has both a Sequence and SPA keys",
            ),
            (
                "Host a\n  KEY k\n  key_base64 a2V5\n",
                "k.conf:3: key_base64 given twice",
            ),
            (
                "Host a\n  ACCESS tcp/99999\n",
                "k.conf:2: bad access 'tcp/99999'",
            ),
            (
                "Host a\n  USE_GPG yes\n",
                "k.conf:2: USE_GPG yes: latchkey sends",
            ),
            (
                "Host a\n  VERBOSE Y\n",
                "k.conf:2: unknown keyword 'VERBOSE'",
            ),
        ];
        for (text, want) in cases {
            let e = err(text);
            assert!(
                e.starts_with(want),
                "for {text:?}: got {e:?}, want {want:?}"
            );
        }
    }

    #[test]
    fn empty_and_comment_only_files_have_no_hosts() {
        assert_eq!(parse("k.conf", ""), Ok(vec![]));
        assert_eq!(parse("k.conf", "# nothing\n\n   \n"), Ok(vec![]));
    }

    #[test]
    fn spa_hosts() {
        let text = "Host router\n  SPA_SERVER 192.0.2.1\n  ACCESS tcp/22\n  ALLOW_IP source\n  \
                    KEY_BASE64: a2V5\n  HMAC_KEY_BASE64: aG1hYw\n  SPA_SERVER_PORT 40001\n";
        let h = &parse("k.conf", text).unwrap()[0];
        assert_eq!(h.hostname, "192.0.2.1", "SPA_SERVER stands in for HostName");
        assert!(h.sequence.is_empty() && h.spa.has_key());
        // --list -v never shows the keys.
        assert_eq!(
            h.describe(),
            "router  192.0.2.1  spa tcp/22 allow source port 40001"
        );
    }

    #[test]
    fn describe_for_list() {
        let h = &parse("k.conf", SAMPLE).unwrap()[0];
        assert_eq!(
            h.describe(),
            "home router  home.example.net  7000,8000:udp,9000  delay 200ms  family 6  check 22"
        );
    }

    #[test]
    fn utf8_with_bom_and_utf16_files_are_read() {
        let text = "Host home\r\n    Sequence 7000,8000:udp\r\n";
        let plain = decode(text.as_bytes().to_vec()).unwrap();
        let mut bom = vec![0xef, 0xbb, 0xbf];
        bom.extend_from_slice(text.as_bytes());
        let mut le = vec![0xff, 0xfe];
        let mut be = vec![0xfe, 0xff];
        for u in text.encode_utf16() {
            le.extend_from_slice(&u.to_le_bytes());
            be.extend_from_slice(&u.to_be_bytes());
        }
        for bytes in [bom, le, be] {
            let t = decode(bytes).unwrap();
            assert_eq!(t, plain);
            assert_eq!(parse("f", &t).unwrap()[0].names, ["home"]);
        }
        assert_eq!(decode(vec![0xff, 0xfe, 0x41]), None);
        assert_eq!(decode(vec![b'H', 0xff]), None);
    }

    #[test]
    fn default_paths_end_with_the_system_file() {
        let paths = default_paths();
        #[cfg(not(windows))]
        assert_eq!(
            paths.last(),
            Some(&PathBuf::from("/etc/latchkey/knock.conf"))
        );
        assert!(paths.iter().all(|p| p.ends_with("latchkey/knock.conf")));
    }
}
