//! fwknopd's own configuration, read unchanged: `fwknopd.conf` (daemon settings) and
//! `access.conf` (one stanza per `SOURCE` line), turned into SPA doors.
//!
//! Every variable is honoured, ignored with a `FILE:LINE` warning where ignoring it cannot
//! open more than the user meant, or refused with `FILE:LINE: why` where it could (GPG-only
//! stanzas, stanzas without an HMAC key, HMAC digests other than SHA-256, encryption modes
//! other than CBC, remote command execution, NAT). Refusals are errors: the daemon does not
//! start on a config it would serve differently from what it says.
//!
//! Pure: [`parse_conf`] and [`parse_access`] take the text; [`load`] reads the files.

use crate::config::ConfigError;
use crate::spa::door::{Action, Door, Net, Style};
use crate::spa::policy::{parse_ports, Rules};
use crate::spa::{wire, Keys, MAX_ENC_KEY, MAX_HMAC_KEY};
use std::path::{Path, PathBuf};

mod access;
#[cfg(target_os = "linux")]
pub mod cli;
mod conf;
#[cfg(test)]
mod tests;

pub use access::parse_access;
#[cfg(test)]
use access::parse_access_all;
pub use conf::{parse_conf, Settings};

/// fwknopd's default config locations.
pub const DEFAULT_CONF: &str = "/etc/fwknop/fwknopd.conf";
/// Default access.conf.
pub const DEFAULT_ACCESS: &str = "/etc/fwknop/access.conf";
/// fwknopd's default SPA port (`udp port 62201`).
pub const DEFAULT_PORT: u16 = 62201;

/// A whole fwknopd configuration as latchkey serves it.
#[derive(Clone, Debug)]
pub struct Fwknopd {
    /// fwknopd.conf's settings.
    pub settings: Settings,
    /// One door per access.conf stanza, in file order.
    pub doors: Vec<Door>,
    /// Things ignored, each naming its file and line.
    pub warnings: Vec<ConfigError>,
}

struct Report<'a> {
    file: &'a Path,
    errors: Vec<ConfigError>,
    warnings: Vec<ConfigError>,
}

impl Report<'_> {
    fn error(&mut self, line: usize, message: String) {
        self.errors.push(ConfigError {
            file: self.file.to_path_buf(),
            line,
            message,
        });
    }
    fn warn(&mut self, line: usize, message: String) {
        self.warnings.push(ConfigError {
            file: self.file.to_path_buf(),
            line,
            message,
        });
    }
}

/// Splits `NAME value` / `NAME: value` lines; the value ends at `;` (as fwknopd reads it).
fn lines(text: &str) -> impl Iterator<Item = (usize, &str, &str)> {
    text.lines().enumerate().filter_map(|(i, raw)| {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            return None;
        }
        let (name, value) = line
            .split_once(|c: char| c.is_ascii_whitespace())
            .unwrap_or((line, ""));
        let name = name.strip_suffix(':').unwrap_or(name);
        let value = value.split(';').next().unwrap_or("").trim();
        Some((i + 1, name, value))
    })
}

fn yes(value: &str) -> Option<bool> {
    match value.to_ascii_uppercase().as_str() {
        "Y" | "YES" | "1" => Some(true),
        "N" | "NO" | "0" => Some(false),
        _ => None,
    }
}

fn number(value: &str, max: u32) -> Result<u32, String> {
    value
        .parse::<u32>()
        .ok()
        .filter(|&n| n <= max)
        .ok_or_else(|| format!("'{value}': expected a whole number from 0 to {max}"))
}

/// Reads fwknopd.conf at `conf` (a missing default file means fwknopd's defaults) and the
/// access file (`access` from `-a`, else `ACCESS_FILE`/`ACCESS_FOLDER`, else the default).
pub fn load(conf: &Path, access: Option<&Path>) -> Result<Fwknopd, Vec<ConfigError>> {
    let read = |p: &Path| std::fs::read_to_string(p);
    let io_error = |p: &Path, e: std::io::Error| {
        vec![ConfigError {
            file: p.to_path_buf(),
            line: 0,
            message: format!("cannot read: {e}"),
        }]
    };
    let (settings, mut warnings) = match read(conf) {
        Ok(t) => parse_conf(conf, &t)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && conf == Path::new(DEFAULT_CONF) => {
            (Settings::default(), Vec::new())
        }
        Err(e) => return Err(io_error(conf, e)),
    };
    let mut doors = Vec::new();
    let mut files = Vec::new();
    match (access, &settings.access_folder, &settings.access_file) {
        (Some(a), _, _) => files.push(a.to_path_buf()),
        (None, Some(dir), _) => {
            let rd = std::fs::read_dir(dir).map_err(|e| io_error(dir, e))?;
            let mut v: Vec<PathBuf> = rd
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "conf"))
                .collect();
            v.sort();
            files = v;
        }
        (None, None, Some(f)) => files.push(f.clone()),
        (None, None, None) => files.push(PathBuf::from(DEFAULT_ACCESS)),
    }
    let mut errors = Vec::new();
    for f in &files {
        let text = read(f).map_err(|e| io_error(f, e))?;
        match parse_access(f, &text, &settings, &read) {
            Ok((mut d, mut w)) => {
                doors.append(&mut d);
                warnings.append(&mut w);
            }
            Err(mut e) => errors.append(&mut e),
        }
    }
    if doors.is_empty() && errors.is_empty() {
        errors.push(ConfigError {
            file: files.first().cloned().unwrap_or_default(),
            line: 0,
            message: "no access stanza; expected at least one SOURCE line".into(),
        });
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    // Number stanzas across files, as fwknopd does.
    for (i, d) in doors.iter_mut().enumerate() {
        d.name = format!("stanza #{}", i + 1);
    }
    Ok(Fwknopd {
        settings,
        doors,
        warnings,
    })
}

/// Reads the fwknopd configuration as a latchkey [`crate::config::Config`]: no knock doors,
/// one SPA door per stanza, fwknopd.conf's interface and replay file. Warnings are logged.
pub fn config(
    conf: &Path,
    access: Option<&Path>,
) -> Result<crate::config::Config, Vec<ConfigError>> {
    let f = load(conf, access)?;
    for w in &f.warnings {
        log::warn!("{w}");
    }
    let options = crate::config::Options {
        interfaces: f.settings.interface.iter().cloned().collect(),
        pid_file: f.settings.pid_file.clone(),
        spa_replay_file: f.settings.replay_file.clone(),
        ..Default::default()
    };
    Ok(crate::config::Config {
        path: conf.to_path_buf(),
        options,
        doors: Vec::new().into(),
        spa: f.doors.into_iter().map(std::rc::Rc::new).collect(),
    })
}
