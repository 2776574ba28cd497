//! fwknop's client rc file, `~/.fwknoprc`: `latchkey knock -n NAME` takes the SPA settings of
//! stanza `[NAME]` (over those of `[default]`), so fwknop users keep their file.
//!
//! The format, as fwknop reads it: `[name]` starts a stanza; inside, one `VARIABLE value` per
//! line; `#` starts a comment line; blank lines are skipped. Variables latchkey does not use
//! (`VERBOSE`, `RESOLVE_URL`, ...) are skipped as fwknop skips unknown ones; variables asking
//! for something latchkey cannot send (GnuPG, NAT, other digests) are errors naming
//! FILE:LINE.

use std::path::{Path, PathBuf};

use super::spa::Settings;

/// `~/.fwknoprc` (Windows: `%USERPROFILE%\.fwknoprc`), when the home directory is known.
pub fn default_path() -> Option<PathBuf> {
    let home = if cfg!(windows) { "USERPROFILE" } else { "HOME" };
    std::env::var_os(home).map(|h| PathBuf::from(h).join(".fwknoprc"))
}

/// Reads `path` and returns stanza `name` over `[default]`.
pub fn load(path: &Path, name: &str) -> Result<Settings, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    stanza(&path.display().to_string(), &text, name)
}

/// The settings of stanza `name` over those of `[default]`, from the text of an rc file
/// (`file` is for messages). Only those two stanzas are checked, as fwknop does.
pub fn stanza(file: &str, text: &str, name: &str) -> Result<Settings, String> {
    let mut default = Settings::default();
    let mut named = Settings::default();
    let mut found = false;
    let mut current: Option<&mut Settings> = None;
    for (idx, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let section = section.trim();
            current = if section == name {
                found = true;
                Some(&mut named)
            } else if section == "default" {
                Some(&mut default)
            } else {
                None
            };
            continue;
        }
        let Some(settings) = current.as_deref_mut() else {
            continue;
        };
        let (var, value) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let var = var.strip_suffix(':').unwrap_or(var);
        settings
            .set(var, value)
            .map_err(|e| format!("{file}:{}: {e}", idx + 1))?;
    }
    if !found {
        return Err(format!("{file}: no stanza [{name}]"));
    }
    Ok(default.overlay(named))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::spa::KeyText;

    const RC: &str = "\
# .fwknoprc
[default]
FW_TIMEOUT          30
VERBOSE             Y
USE_HMAC            Y

[router]
SPA_SERVER          192.0.2.1
ACCESS              tcp/22
ALLOW_IP            192.0.2.2
KEY_BASE64          W71GMIGS9Fvy0fWjHOUmThOiYm8VRsnfi7ctLoZnCBI=
HMAC_KEY_BASE64     hmfIlOFc+JJkhrxebwuC3cU8GYXcxvOkzt5VxRp0Ry2erOnlGpB0PY/tzxL+kjIHqiIX977kYCFK+3i9MT9now==

[nas]
SPA_SERVER   nas.example.net
ALLOW_IP     source
FW_TIMEOUT   60
KEY          a passphrase
HMAC_KEY     another one
USE_GPG      Y
";

    #[test]
    fn named_stanza_over_default() {
        let s = stanza("rc", RC, "router").unwrap();
        assert_eq!(s.server.as_deref(), Some("192.0.2.1"));
        assert_eq!(s.access.as_deref(), Some("tcp/22"));
        assert_eq!(s.allow, Some("192.0.2.2".parse().unwrap()));
        assert_eq!(s.timeout, Some(30), "from [default]");
        assert!(matches!(s.key, Some(KeyText::Base64(ref k)) if k.starts_with("W71G")));
        let r = s.request().unwrap();
        assert_eq!((r.keys.enc.len(), r.keys.hmac.len()), (32, 64));
        assert_eq!(r.port, 62201);
    }

    #[test]
    fn errors_name_file_and_line() {
        // [nas] asks for GnuPG: refused at its line, not silently sent as Rijndael.
        assert_eq!(
            stanza("rc", RC, "nas").unwrap_err(),
            "rc:20: USE_GPG Y: latchkey sends Rijndael (not GnuPG) only (fwknop's Rijndael + HMAC-SHA256 subset)"
        );
        assert_eq!(
            stanza("rc", RC, "office").unwrap_err(),
            "rc: no stanza [office]"
        );
        let e = stanza("rc", "[a]\nALLOW_IP resolve\n", "a").unwrap_err();
        assert!(e.starts_with("rc:2: ALLOW_IP resolve"), "{e}");
        let e = stanza("rc", "[a]\nACCESS tcp/0\n", "a").unwrap_err();
        assert!(e.starts_with("rc:2: bad access 'tcp/0'"), "{e}");
        let e = stanza("rc", "[a]\nHMAC_DIGEST_TYPE sha512\n", "a").unwrap_err();
        assert!(e.starts_with("rc:2: HMAC_DIGEST_TYPE sha512"), "{e}");
        // Other stanzas are not checked, as fwknop does not read them.
        assert!(stanza("rc", "[b]\nUSE_GPG Y\n[a]\nKEY k\n", "a").is_ok());
    }

    #[test]
    fn passphrases_and_source() {
        let rc = "[nas]\nALLOW_IP source\nKEY  a passphrase \nHMAC_KEY: other\n";
        let s = stanza("rc", rc, "nas").unwrap();
        assert_eq!(s.allow, Some(std::net::Ipv4Addr::UNSPECIFIED));
        assert_eq!(s.key, Some(KeyText::Raw("a passphrase".into())));
        assert_eq!(s.hmac, Some(KeyText::Raw("other".into())));
    }
}
