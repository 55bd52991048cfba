//! The database file as the DbActor opened it. A file removed or replaced while it is served
//! (moved away, a copy put in its place) leaves the actor's connection on a file nobody else
//! sees: its writes would be lost, and the new file's ignored. The actor looks at the path
//! with every check for changes, and stops when it names another file, or none.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The path, and the file it named when the database was opened.
#[derive(Debug)]
pub(super) struct FileIdentity {
    path: PathBuf,
    device: u64,
    inode: u64,
}

impl FileIdentity {
    /// The file `path` names now; none when it cannot be read (then nothing is checked).
    pub(super) fn of(path: &Path) -> Option<FileIdentity> {
        let meta = std::fs::metadata(path).ok()?;
        // Absolute: a program embedding ddcp may change its working directory.
        let path = std::fs::canonicalize(path).ok()?;
        Some(FileIdentity {
            path,
            device: meta.dev(),
            inode: meta.ino(),
        })
    }

    /// Why the path no longer names the file opened, if it does not.
    pub(super) fn gone(&self) -> Option<String> {
        let path = self.path.display();
        match std::fs::metadata(&self.path) {
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                Some(format!("the database file {path} was removed while served"))
            }
            // Unreadable for a moment (a permission change): not a reason to stop.
            Err(_) => None,
            Ok(meta) if (meta.dev(), meta.ino()) != (self.device, self.inode) => Some(format!(
                "the database file {path} was replaced by another file while served"
            )),
            Ok(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_removed_or_replaced_is_noticed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        std::fs::write(&path, b"one").unwrap();
        let opened = FileIdentity::of(&path).unwrap();
        assert_eq!(opened.gone(), None);
        std::fs::write(&path, b"written in place").unwrap();
        assert_eq!(opened.gone(), None);
        std::fs::rename(&path, dir.path().join("away")).unwrap();
        assert!(opened.gone().unwrap().contains("was removed"));
        std::fs::write(dir.path().join("copy"), b"one").unwrap();
        std::fs::rename(dir.path().join("copy"), &path).unwrap();
        assert!(opened.gone().unwrap().contains("was replaced"));
    }
}
