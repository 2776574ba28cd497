//! access.conf: one stanza per `SOURCE` line, each turned into an SPA door; GPG-only stanzas,
//! stanzas without an HMAC key and anything that could open more than meant are refused.

use super::*;

/// A stanza while it is read.
#[derive(Default)]
struct Draft {
    line: usize,
    source: Vec<Net>,
    destination: Vec<Net>,
    key: Option<Vec<u8>>,
    hmac: Option<Vec<u8>>,
    gpg: Option<usize>,
    rules: Rules,
    require_source_set: bool,
    open: Option<String>,
    close: Option<String>,
    timer: Option<u32>,
    fw_timeout: Option<u32>,
}

/// access.conf variables that only matter for features latchkey does not serve, and whose
/// absence cannot open more: ignored with a warning.
const ACCESS_IGNORED: &[&str] = &[
    "CMD_EXEC_USER",
    "CMD_EXEC_GROUP",
    "CMD_SUDO_EXEC_USER",
    "CMD_SUDO_EXEC_GROUP",
    "GPG_HOME_DIR",
    "GPG_EXE",
    "GPG_DECRYPT_ID",
    "GPG_DECRYPT_PW",
    "GPG_ALLOW_NO_PW",
    "GPG_REQUIRE_SIG",
    "GPG_DISABLE_SIG",
    "GPG_IGNORE_SIG_VERIFY_ERROR",
    "GPG_REMOTE_ID",
    "GPG_FINGERPRINT_ID",
    "KEYTYPE",
    "HKEYTYPE",
];

/// Variables that would grant something latchkey never does (remote commands, NAT): a
/// stanza that sets them is refused rather than silently served differently.
const ACCESS_REFUSED: &[(&str, &str)] = &[
    (
        "ENABLE_CMD_EXEC",
        "SPA command messages (remote commands) are never run",
    ),
    (
        "ENABLE_CMD_SUDO_EXEC",
        "SPA command messages (remote commands) are never run",
    ),
    ("FORCE_NAT", "NAT access is not supported"),
    ("FORCE_SNAT", "NAT access is not supported"),
    ("FORCE_MASQUERADE", "NAT access is not supported"),
    ("DISABLE_DNAT", "NAT access is not supported"),
    ("FORWARD_ALL", "NAT access is not supported"),
];

/// fwknop's `MM/DD/YYYY`, as the end of that day (UTC), unix seconds.
fn expire_date(value: &str) -> Option<i64> {
    let mut it = value.split('/');
    let m: i64 = it.next()?.parse().ok()?;
    let d: i64 = it.next()?.parse().ok()?;
    let y: i64 = it.next()?.parse().ok()?;
    if it.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&d) || y < 1970 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + 86_399)
}

impl Report<'_> {
    fn stanza_var(&mut self, d: &mut Draft, n: usize, name: &str, value: &str) {
        let upper = name.to_ascii_uppercase();
        let bad = |what: &str| format!("{name} '{value}': expected {what}");
        if value == "__CHANGEME__" {
            self.error(n, format!("{name} is still the placeholder __CHANGEME__; set a real key (latchkey keygen or fwknop --key-gen makes one)"));
            return;
        }
        match upper.as_str() {
            "DESTINATION" => match Net::parse_list(value) {
                Ok(l) => d.destination = l,
                Err(e) => self.error(n, format!("{name} '{value}': {e}")),
            },
            "KEY" if !value.is_empty() && value.len() <= MAX_ENC_KEY => {
                d.key = Some(value.as_bytes().to_vec())
            }
            "KEY_BASE64" => match wire::decode_key(value, MAX_ENC_KEY) {
                Some(k) => d.key = Some(k),
                None => self.error(n, bad("base64 of 1 to 32 bytes")),
            },
            "KEY" => self.error(n, bad("a passphrase of 1 to 32 bytes")),
            "HMAC_KEY" if !value.is_empty() && value.len() <= MAX_HMAC_KEY => {
                d.hmac = Some(value.as_bytes().to_vec())
            }
            "HMAC_KEY" => self.error(n, bad("a key of 1 to 136 bytes")),
            "HMAC_KEY_BASE64" => match wire::decode_key(value, MAX_HMAC_KEY) {
                Some(k) => d.hmac = Some(k),
                None => self.error(n, bad("base64 of 1 to 136 bytes")),
            },
            "HMAC_DIGEST_TYPE" => {
                if !value.eq_ignore_ascii_case("sha256") {
                    self.error(n, format!("{name} {value}: only SHA256 is supported; MD5, SHA1, SHA384, SHA512, SHA3_256 and SHA3_512 are refused"));
                }
            }
            "ENCRYPTION_MODE" => {
                if !value.eq_ignore_ascii_case("cbc") {
                    self.error(n, format!("{name} {value}: only CBC (fwknop's default) is supported; legacy, ECB, CFB, OFB, CTR and asymmetric (GPG) are refused"));
                }
            }
            "OPEN_PORTS" => match parse_ports(value) {
                Some(p) => d.rules.open_ports = Some(p),
                None => self.error(n, bad("a list like 'tcp/22, udp/53'")),
            },
            "RESTRICT_PORTS" => match parse_ports(value) {
                Some(p) => d.rules.restrict_ports = p,
                None => self.error(n, bad("a list like 'tcp/22, udp/53'")),
            },
            "FW_ACCESS_TIMEOUT" => match number(value, 2 << 22) {
                Ok(t) if t > 0 => d.fw_timeout = Some(t),
                _ => self.error(n, bad("seconds from 1 to 8388608")),
            },
            "MAX_FW_TIMEOUT" => match number(value, 2 << 22) {
                Ok(t) if t > 0 => d.rules.max_timeout = t,
                _ => self.error(n, bad("seconds from 1 to 8388608")),
            },
            "REQUIRE_SOURCE_ADDRESS" | "REQUIRE_SOURCE" => match yes(value) {
                Some(b) => {
                    d.rules.require_source = b;
                    d.require_source_set = true;
                }
                None => self.error(n, bad("Y or N")),
            },
            "REQUIRE_USERNAME" if !value.is_empty() => d.rules.require_user = Some(value.into()),
            "CMD_CYCLE_OPEN" if !value.is_empty() => d.open = Some(value.into()),
            "CMD_CYCLE_CLOSE" if !value.is_empty() => d.close = Some(value.into()),
            "CMD_CYCLE_TIMER" => match number(value, 2 << 22) {
                Ok(t) if t > 0 => d.timer = Some(t),
                _ => self.error(n, bad("seconds from 1 to 8388608")),
            },
            "ACCESS_EXPIRE" => match expire_date(value) {
                Some(t) => d.rules.expires = Some(t),
                None => self.error(n, bad("a date MM/DD/YYYY")),
            },
            "ACCESS_EXPIRE_EPOCH" => match value.parse::<i64>() {
                Ok(t) => d.rules.expires = Some(t),
                Err(_) => self.error(n, bad("unix seconds")),
            },
            _ if upper.starts_with("GPG_") => {
                d.gpg.get_or_insert(n);
                self.warn(n, format!("{name}: GnuPG is not supported; ignored"));
            }
            _ if ACCESS_IGNORED.contains(&upper.as_str()) => {
                self.warn(n, format!("{name}: ignored (not used by latchkey)"))
            }
            _ => {
                if let Some((_, why)) = ACCESS_REFUSED.iter().find(|(v, _)| *v == upper) {
                    if yes(value) != Some(false) {
                        self.error(n, format!("{name} {value}: refused; {why}"));
                    }
                } else {
                    self.warn(
                        n,
                        format!(
                            "{name}: unknown access variable, ignored (fwknopd ignores it too)"
                        ),
                    );
                }
            }
        }
    }

    fn finish(&mut self, d: Draft, index: usize, s: &Settings, doors: &mut Vec<Door>) {
        let n = d.line;
        let (Some(key), Some(hmac)) = (d.key.clone(), d.hmac.clone()) else {
            if d.key.is_none() && d.gpg.is_some() {
                self.error(n, "stanza uses GnuPG only (no KEY/KEY_BASE64): GPG stanzas are not supported; latchkey serves Rijndael with HMAC-SHA256".into());
            } else if d.key.is_none() {
                self.error(
                    n,
                    "stanza has no KEY or KEY_BASE64; expected an encryption key".into(),
                );
            } else {
                self.error(n, "stanza has no HMAC_KEY or HMAC_KEY_BASE64: fwknopd would accept unauthenticated packets, latchkey requires an HMAC key".into());
            }
            return;
        };
        if key == hmac {
            self.error(
                n,
                "the encryption key and the HMAC key are identical; expected two different keys"
                    .into(),
            );
            return;
        }
        let Some(keys) = Keys::new(&key, &hmac) else {
            return;
        };
        let mut rules = d.rules;
        rules.max_age = s.max_age;
        let action = match (d.open, d.close) {
            (Some(open), Some(close)) => {
                let close = (!close.eq_ignore_ascii_case("NONE")).then_some(close);
                if close.is_some() && d.timer.is_none() {
                    self.error(n, "CMD_CYCLE_CLOSE without CMD_CYCLE_TIMER; expected the seconds until the close command runs (or CMD_CYCLE_CLOSE NONE)".into());
                    return;
                }
                rules.timeout = d.timer.unwrap_or(30);
                Action::Commands {
                    open,
                    close,
                    style: Style::Fwknop,
                }
            }
            (Some(_), None) => {
                self.error(n, "CMD_CYCLE_OPEN without CMD_CYCLE_CLOSE; expected a close command or CMD_CYCLE_CLOSE NONE".into());
                return;
            }
            (None, Some(_)) => {
                self.error(n, "CMD_CYCLE_CLOSE without CMD_CYCLE_OPEN".into());
                return;
            }
            (None, None) => {
                rules.timeout = d.fw_timeout.unwrap_or(30);
                Action::Firewall
            }
        };
        if !d.require_source_set {
            self.warn(n, "REQUIRE_SOURCE_ADDRESS not set: a packet asking for 0.0.0.0 opens for its source address (fwknop's default)".into());
        }
        doors.push(Door {
            name: format!("stanza #{index}"),
            ports: s.ports.clone(),
            source: d.source,
            destination: d.destination,
            keys,
            rules,
            action,
        });
    }
}

/// Parses access.conf text read from `file`, with fwknopd.conf's `settings`. `%include`
/// and `%include_folder` are followed through `read` (depth ≤ 3).
pub fn parse_access(
    file: &Path,
    text: &str,
    settings: &Settings,
    read: &dyn Fn(&Path) -> std::io::Result<String>,
) -> Result<(Vec<Door>, Vec<ConfigError>), Vec<ConfigError>> {
    let (doors, errors, warnings) = parse_access_all(file, text, settings, read);
    if errors.is_empty() {
        Ok((doors, warnings))
    } else {
        Err(errors)
    }
}

/// The stanzas that are valid, every error and every warning (tests use the valid ones of
/// a file that also has refused stanzas).
pub(crate) fn parse_access_all(
    file: &Path,
    text: &str,
    settings: &Settings,
    read: &dyn Fn(&Path) -> std::io::Result<String>,
) -> (Vec<Door>, Vec<ConfigError>, Vec<ConfigError>) {
    let mut doors = Vec::new();
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    parse_access_into(
        file,
        text,
        settings,
        read,
        0,
        &mut doors,
        &mut errors,
        &mut warnings,
    );
    (doors, errors, warnings)
}

#[allow(clippy::too_many_arguments)]
fn parse_access_into(
    file: &Path,
    text: &str,
    settings: &Settings,
    read: &dyn Fn(&Path) -> std::io::Result<String>,
    depth: usize,
    doors: &mut Vec<Door>,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<ConfigError>,
) {
    let mut r = Report {
        file,
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let mut draft: Option<Draft> = None;
    let include = |r: &mut Report, n: usize, path: PathBuf, doors: &mut Vec<Door>| {
        if depth >= 3 {
            r.error(
                n,
                "includes nested deeper than 3; expected at most 3 levels".into(),
            );
            return;
        }
        match read(&path) {
            Ok(t) => parse_access_into(
                &path,
                &t,
                settings,
                read,
                depth + 1,
                doors,
                &mut r.errors,
                &mut r.warnings,
            ),
            Err(e) => r.error(n, format!("cannot read {}: {e}", path.display())),
        }
    };
    for (n, name, value) in lines(text) {
        let upper = name.to_ascii_uppercase();
        match upper.as_str() {
            "SOURCE" => {
                if let Some(d) = draft.take() {
                    let i = doors.len() + 1;
                    r.finish(d, i, settings, doors);
                }
                match Net::parse_list(value) {
                    Ok(source) => {
                        draft = Some(Draft {
                            line: n,
                            source,
                            ..Draft::default()
                        })
                    }
                    Err(e) => r.error(n, format!("SOURCE '{value}': {e}")),
                }
            }
            "%INCLUDE" | "%INCLUDE_FOLDER" => {
                if let Some(d) = draft.take() {
                    let i = doors.len() + 1;
                    r.finish(d, i, settings, doors);
                }
                let path = match file.parent() {
                    Some(dir) if Path::new(value).is_relative() => dir.join(value),
                    _ => PathBuf::from(value),
                };
                if upper == "%INCLUDE" {
                    include(&mut r, n, path, doors);
                } else {
                    match std::fs::read_dir(&path) {
                        Ok(rd) => {
                            let mut files: Vec<PathBuf> = rd
                                .flatten()
                                .map(|e| e.path())
                                .filter(|p| p.extension().is_some_and(|x| x == "conf"))
                                .collect();
                            files.sort();
                            for f in files {
                                include(&mut r, n, f, doors);
                            }
                        }
                        Err(e) => r.error(n, format!("cannot read folder {}: {e}", path.display())),
                    }
                }
            }
            "%INCLUDE_KEYS" => r.error(
                n,
                "%include_keys is not supported; put the keys in the stanza or use %include".into(),
            ),
            _ => match draft.as_mut() {
                Some(d) => r.stanza_var(d, n, name, value),
                None => r.warn(
                    n,
                    format!("{name}: outside any stanza (before the first SOURCE line), ignored"),
                ),
            },
        }
    }
    if let Some(d) = draft.take() {
        let i = doors.len() + 1;
        r.finish(d, i, settings, doors);
    }
    errors.append(&mut r.errors);
    warnings.append(&mut r.warnings);
}
