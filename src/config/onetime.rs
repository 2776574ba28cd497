//! knockd's `One_Time_Sequences` file: one sequence per line; the first line that does not
//! start with `#` is live; once used, its first character is overwritten with `#` in place
//! (the file keeps its size, so an editor's view and knockd's agree) and the next line is live.
//!
//! Offsets are byte offsets in the file as it is on disk (never in decoded text), so a
//! non-UTF-8 byte earlier in the file cannot move the `#` to the wrong place.

use super::{parse::parse_sequence, ConfigError, Sequence};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Where a door's live one-time sequence sits in its file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OneTime {
    /// The sequences file.
    pub path: PathBuf,
    /// Byte offset of the live line's first non-blank byte (the one to overwrite); `None`
    /// when no sequence is left.
    pub offset: Option<u64>,
    /// The byte found at `offset` when the file was read: marking checks it is still there.
    pub first: u8,
    /// 1-based line number of the live line, for messages.
    pub line: usize,
}

impl OneTime {
    /// Reads `path` and finds its live sequence (an empty sequence when none is left).
    pub fn open(path: &Path) -> Result<(OneTime, Sequence), Vec<ConfigError>> {
        OneTime::open_skipping(path, &[])
    }

    /// Like [`OneTime::open`], but the lines starting at the byte offsets in `used` count as
    /// used even though they are not marked (their marking failed: fail closed).
    pub fn open_skipping(
        path: &Path,
        used: &[u64],
    ) -> Result<(OneTime, Sequence), Vec<ConfigError>> {
        let err = |line, message| {
            vec![ConfigError {
                file: path.to_path_buf(),
                line,
                message,
            }]
        };
        let bytes = std::fs::read(path)
            .map_err(|e| err(0, format!("cannot read one-time sequences file: {e}")))?;
        let mut offset = 0u64;
        for (i, raw) in bytes.split_inclusive(|&b| b == b'\n').enumerate() {
            let start = offset;
            offset += raw.len() as u64;
            let lead = raw.iter().take_while(|b| b.is_ascii_whitespace()).count();
            let Some(&first) = raw.get(lead) else {
                continue;
            };
            let at = start + lead as u64;
            if first == b'#' || used.contains(&at) {
                continue;
            }
            let text = String::from_utf8_lossy(raw);
            let seq = parse_sequence(text.trim()).map_err(|m| err(i + 1, m))?;
            let one = OneTime {
                path: path.to_path_buf(),
                offset: Some(at),
                first,
                line: i + 1,
            };
            return Ok((one, seq));
        }
        let one = OneTime {
            path: path.to_path_buf(),
            offset: None,
            first: 0,
            line: 0,
        };
        Ok((one, Sequence::new()))
    }
}

/// Marks the live sequence of `one` as used (a `#` over its first byte). Refuses, with an
/// error, when that byte is no longer what was read (the file changed under us).
pub fn mark_used(one: &OneTime) -> std::io::Result<()> {
    let Some(offset) = one.offset else {
        return Ok(());
    };
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&one.path)?;
    f.seek(SeekFrom::Start(offset))?;
    let mut was = [0u8];
    f.read_exact(&mut was)?;
    if was[0] != one.first {
        return Err(std::io::Error::other(format!(
            "line {} changed since it was read",
            one.line
        )));
    }
    f.seek(SeekFrom::Start(offset))?;
    f.write_all(b"#")?;
    f.sync_data()
}

#[cfg(test)]
mod tests;
