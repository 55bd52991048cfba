//! The state dir's `removals` file: who was removed from this database and the key epochs it
//! moved to, kept outside the database file so that `ddcp restore` of an older backup cannot
//! let a removed member back in or use an epoch again (docs/private-databases.md).
//!
//! Appended to, one line at a time, never rewritten: two commands writing at once both land,
//! and a crash leaves every line before it whole. Read in order, the later line wins:
//!
//! ```text
//! begun 3
//! removed VLD0:<member id>
//! readmitted VLD0:<member id>
//! epoch 7
//! ```
//!
//! `begun` is the epoch the database was at when the file was made: every removal after it is
//! in the file, none before it need be (made by an earlier ddcp, or in a state dir restored
//! afresh). A restore trusts the file to be complete only for a backup taken at that epoch or
//! later.
//!
//! A removal is written before the database forgets the member, a readmission after it knows
//! the member again: a failure between the two leaves a member removed on restore (the owner
//! adds it back), never one let back in.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::sync::{Epoch, MemberId};

/// The file's name in the state dir.
const REMOVALS_FILE: &str = "removals";

/// A file longer than this is not one ddcp wrote (a line is under 100 bytes).
const MAX_BYTES: u64 = 4 << 20;

const HEADER: &str =
    "# ddcp: members removed from this database and its key epochs, read by `ddcp restore`\n";

/// Why the file cannot be read or written.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // each #[error] says what the variant means
pub enum RemovalsFileError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: line {line} is not one ddcp writes: the record of removed members is damaged")]
    Damaged { path: PathBuf, line: usize },
    #[error("{0}: too long to be the record of removed members ddcp writes")]
    TooLong(PathBuf),
}

/// The largest epoch the file may name: the database keeps its epoch as SQLite's signed
/// integer, and a restore moves one past it.
const MAX_EPOCH: u64 = i64::MAX as u64 - 1;

/// What the file says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Removals {
    /// The epoch the database was at when the file was made (`None`: the file does not say).
    pub begun: Option<Epoch>,
    /// The highest key epoch the database moved to, if any was written.
    pub epoch: Option<Epoch>,
    /// The members removed and not added back since.
    pub removed: BTreeSet<MemberId>,
}

impl Removals {
    /// Whether every removal since a backup taken at `epoch` is in the file.
    pub fn complete_since(&self, epoch: Epoch) -> bool {
        self.begun.is_some_and(|begun| begun <= epoch)
    }
}

fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(REMOVALS_FILE)
}

/// What the state dir's file says; `None` when there is no file (nothing was removed since
/// this state dir began keeping one).
pub fn load(state_dir: &Path) -> Result<Option<Removals>, RemovalsFileError> {
    use std::io::Read;
    let path = path(state_dir);
    let io = |source| RemovalsFileError::Io {
        path: path.clone(),
        source,
    };
    let file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(io(err)),
    };
    let mut text = String::new();
    file.take(MAX_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(io)?;
    if text.len() as u64 > MAX_BYTES {
        return Err(RemovalsFileError::TooLong(path));
    }
    parse(&text)
        .map(Some)
        .map_err(|line| RemovalsFileError::Damaged { path, line })
}

/// The file's text read in order; the number of the first line that is not ddcp's.
fn parse(text: &str) -> Result<Removals, usize> {
    let mut removals = Removals::default();
    for (index, line) in text.lines().enumerate() {
        let damaged = || index + 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (word, value) = line.split_once(' ').ok_or_else(damaged)?;
        match word {
            "removed" => {
                removals
                    .removed
                    .insert(value.parse().map_err(|_| damaged())?);
            }
            "readmitted" => {
                removals
                    .removed
                    .remove(&value.parse().map_err(|_| damaged())?);
            }
            "epoch" => {
                let epoch = parse_epoch(value).ok_or_else(damaged)?;
                removals.epoch = removals.epoch.max(Some(epoch));
            }
            // Two commands that made the file at once both wrote one: complete from the later.
            "begun" => {
                let begun = parse_epoch(value).ok_or_else(damaged)?;
                removals.begun = removals.begun.max(Some(begun));
            }
            _ => return Err(damaged()),
        }
    }
    Ok(removals)
}

fn parse_epoch(value: &str) -> Option<Epoch> {
    value
        .parse()
        .ok()
        .filter(|epoch| *epoch <= MAX_EPOCH)
        .map(Epoch)
}

/// Writes down, before the database forgets it, that `member` is being removed; `now` is the
/// database's epoch before the removal (the file's `begun`, when this makes it).
pub fn record_removed(
    state_dir: &Path,
    member: &MemberId,
    now: Epoch,
) -> Result<(), RemovalsFileError> {
    append(state_dir, &format!("removed {member}\n"), now)
}

/// Writes down that `member`, once removed, is a member again (when there is a file: without
/// one, nothing says it was removed).
pub fn record_readmitted(state_dir: &Path, member: &MemberId) -> Result<(), RemovalsFileError> {
    if !path(state_dir).exists() {
        return Ok(());
    }
    append(
        state_dir,
        &format!("readmitted {member}\n"),
        Epoch(MAX_EPOCH),
    )
}

/// Writes down that the database's key epoch moved to `epoch` from `before`.
pub fn record_epoch(
    state_dir: &Path,
    epoch: Epoch,
    before: Epoch,
) -> Result<(), RemovalsFileError> {
    append(state_dir, &format!("epoch {}\n", epoch.0), before)
}

/// Appends `line` whole (one write to a file opened for appending), to disk before it returns;
/// a file made by it begins with the header and `begun` (the epoch the database is at).
fn append(state_dir: &Path, line: &str, begun: Epoch) -> Result<(), RemovalsFileError> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = path(state_dir);
    let io = |source| RemovalsFileError::Io {
        path: path.clone(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(&path)
        .map_err(io)?;
    let text = match file.metadata().map_err(io)?.len() {
        0 => format!("{HEADER}begun {}\n{line}", begun.0),
        _ => line.to_string(),
    };
    file.write_all(text.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::MemberKeys;

    #[test]
    fn removals_are_read_back_in_order_and_a_readmission_undoes_one() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).unwrap(), None);
        let (bob, dave) = (MemberKeys::generate().id(), MemberKeys::generate().id());
        // Nothing to readmit from before there is a file.
        record_readmitted(dir.path(), &bob).unwrap();
        assert_eq!(load(dir.path()).unwrap(), None);
        record_removed(dir.path(), &bob, Epoch(1)).unwrap();
        record_epoch(dir.path(), Epoch(2), Epoch(1)).unwrap();
        record_removed(dir.path(), &dave, Epoch(2)).unwrap();
        record_epoch(dir.path(), Epoch(3), Epoch(2)).unwrap();
        record_readmitted(dir.path(), &bob).unwrap();
        let read = load(dir.path()).unwrap().unwrap();
        assert_eq!(read.begun, Some(Epoch(1)));
        assert_eq!(read.epoch, Some(Epoch(3)));
        assert_eq!(read.removed, BTreeSet::from([dave]));
        // Complete for a backup from epoch 1 on; one older may hold members removed before.
        assert!(read.complete_since(Epoch(1)) && read.complete_since(Epoch(3)));
        assert!(!read.complete_since(Epoch(0)));
        let text = std::fs::read_to_string(path(dir.path())).unwrap();
        assert!(text.starts_with("# ddcp:"), "{text}");
        assert_eq!(text.matches("# ddcp").count(), 1, "{text}");
    }

    #[test]
    fn a_line_ddcp_never_writes_is_refused_with_its_number() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(path(dir.path()), "# ddcp\nepoch 2\nremoved bob\n").unwrap();
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("line 3 is not one ddcp writes"), "{err}");
        // Two commands that made the file at once: complete from the later one's epoch.
        std::fs::write(path(dir.path()), "begun 2\nbegun 5\nepoch 3\n").unwrap();
        assert_eq!(load(dir.path()).unwrap().unwrap().begun, Some(Epoch(5)));
        for epoch in ["-1", "9223372036854775807", "18446744073709551615"] {
            std::fs::write(path(dir.path()), format!("epoch {epoch}\n")).unwrap();
            assert!(matches!(
                load(dir.path()),
                Err(RemovalsFileError::Damaged { line: 1, .. })
            ));
        }
    }

    #[test]
    fn the_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        record_epoch(dir.path(), Epoch(1), Epoch(0)).unwrap();
        let mode = std::fs::metadata(path(dir.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
