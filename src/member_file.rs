//! This database's member identity, in the state dir's `member` file (mode 0600): made by
//! `ddcp init` (or the first command that needs it, in state dirs made before), kept across
//! restarts, never logged. Its public half is what `ddcp id` prints.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::sync::MemberKeys;

/// The state dir's file holding the member keypair.
const MEMBER_FILE: &str = "member";

/// Why the member identity cannot be read or made.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // each #[error] says what the variant means
pub enum MemberFileError {
    #[error("no state directory at {0}: run `ddcp init` first (or pass --state-dir)")]
    NoStateDir(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file's text is not quoted: it is a secret key.
    #[error("{0}: the member identity is damaged (not a `secret VLD0-SECRET:...` line)")]
    Damaged(PathBuf),
}

fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(MEMBER_FILE)
}

/// The member identity kept in `state_dir`, made there first if there is none yet.
pub fn load_or_create(state_dir: &Path) -> Result<MemberKeys, MemberFileError> {
    match load(state_dir)? {
        Some(keys) => Ok(keys),
        None => create(state_dir),
    }
}

fn load(state_dir: &Path) -> Result<Option<MemberKeys>, MemberFileError> {
    let path = path(state_dir);
    // The file's text holds the secret: wiped when done with.
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => zeroize::Zeroizing::new(text),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(MemberFileError::Io { path, source }),
    };
    let secret = text
        .lines()
        .find_map(|line| line.strip_prefix("secret "))
        .ok_or_else(|| MemberFileError::Damaged(path.clone()))?;
    MemberKeys::from_revealed(secret)
        .map(Some)
        .map_err(|_| MemberFileError::Damaged(path))
}

fn create(state_dir: &Path) -> Result<MemberKeys, MemberFileError> {
    use std::os::unix::fs::OpenOptionsExt;
    if !state_dir.is_dir() {
        return Err(MemberFileError::NoStateDir(state_dir.to_path_buf()));
    }
    let keys = MemberKeys::generate();
    let path = path(state_dir);
    // Written whole beside it, then linked into place: a reader never sees half a file, a
    // crash leaves none, and of two commands making one at once, the first link wins.
    let partial = state_dir.join(format!("{MEMBER_FILE}.{}.partial", std::process::id()));
    let io = |path: &Path, source| MemberFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&partial)
        .and_then(|mut file| {
            // The id line is for people reading the file; the secret line is what is read back.
            let text = zeroize::Zeroizing::new(format!(
                "id {}\nsecret {}\n",
                keys.id(),
                keys.reveal().as_str()
            ));
            file.write_all(text.as_bytes())?;
            file.sync_all()
        });
    let linked = written.and_then(|()| std::fs::hard_link(&partial, &path));
    let _ = std::fs::remove_file(&partial);
    match linked {
        Ok(()) => Ok(keys),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
            load(state_dir)?.ok_or_else(|| MemberFileError::Damaged(path.clone()))
        }
        Err(err) => Err(io(&path, err)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_identity_is_made_once_kept_private_and_read_back() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let made = load_or_create(dir.path()).unwrap();
        let again = load_or_create(dir.path()).unwrap();
        assert_eq!(made.id(), again.id());
        let mode = std::fs::metadata(path(dir.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);

        std::fs::write(path(dir.path()), "secret VLD0-SECRET:garbage-secret\n").unwrap();
        let err = load_or_create(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("damaged") && !err.contains("garbage-secret"),
            "{err}"
        );

        let missing = dir.path().join("nope");
        assert!(matches!(
            load_or_create(&missing),
            Err(MemberFileError::NoStateDir(_))
        ));
    }
}
