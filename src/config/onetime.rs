//! knockd's `One_Time_Sequences` file: one sequence per line; the first line that does not
//! start with `#` is live; once used, its first character is overwritten with `#` in place
//! (the file keeps its size, so an editor's view and knockd's agree) and the next line is live.

use super::{parse::parse_sequence, ConfigError, Sequence};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Where a door's live one-time sequence sits in its file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OneTime {
    /// The sequences file.
    pub path: PathBuf,
    /// Byte offset of the live line's first non-blank character (the one to overwrite);
    /// `None` when no sequence is left.
    pub offset: Option<u64>,
    /// 1-based line number of the live line, for messages.
    pub line: usize,
}

impl OneTime {
    /// Reads `path` and finds its live sequence (an empty sequence when none is left).
    pub fn open(path: &Path) -> Result<(OneTime, Sequence), Vec<ConfigError>> {
        let err = |line, message| {
            vec![ConfigError {
                file: path.to_path_buf(),
                line,
                message,
            }]
        };
        let bytes = std::fs::read(path)
            .map_err(|e| err(0, format!("cannot read one-time sequences file: {e}")))?;
        let text = String::from_utf8_lossy(&bytes);
        let mut offset = 0u64;
        for (i, raw) in text.split_inclusive('\n').enumerate() {
            let start = offset;
            offset += raw.len() as u64;
            let lead = raw.len() - raw.trim_start().len();
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let seq = parse_sequence(line).map_err(|m| err(i + 1, m))?;
            let one = OneTime {
                path: path.to_path_buf(),
                offset: Some(start + lead as u64),
                line: i + 1,
            };
            return Ok((one, seq));
        }
        let one = OneTime {
            path: path.to_path_buf(),
            offset: None,
            line: 0,
        };
        Ok((one, Sequence::new()))
    }
}

/// Marks the live sequence of `one` as used (a `#` over its first character).
pub fn mark_used(one: &OneTime) -> std::io::Result<()> {
    let Some(offset) = one.offset else {
        return Ok(());
    };
    let mut f = std::fs::OpenOptions::new().write(true).open(&one.path)?;
    f.seek(SeekFrom::Start(offset))?;
    f.write_all(b"#")?;
    f.sync_data()
}
