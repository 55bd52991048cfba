//! A host's folder of databases (`ddcp serve --databases DIR`, docs/hosting.md): one folder per
//! database, as `ddcp init` makes it when run inside the folder with the default names,
//! DIR/NAME/ddcp.db and its state dir DIR/NAME/.ddcp. The host's own state (its Veilid stores,
//! its `network.conf`, its control socket, the databases removed from serving) is DIR/.ddcp.
//!
//! A folder is chosen over a list of paths or a repeated option: it names each database (the
//! folder's name, which the log, the status and the metrics use), keeps each database's state
//! dir beside its file so that the CLI addresses it as it would a database served alone, and
//! takes a new database by making a folder.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::name::DbName;
use crate::config::Config;
use crate::db::{Db, Extension, remove_database_files};
use crate::member_file;
use crate::net::{Network, NetworkSettings, create_record_identity};
use crate::serve::setup::ServeError;
use crate::sync::RecordKey;

/// A hosted database's file, in its folder.
pub const DB_FILE: &str = "ddcp.db";
/// A hosted database's state dir, in its folder; the host's own, in the databases' folder.
pub const STATE_DIR: &str = ".ddcp";
/// The host's list of the databases removed from serving (`ddcp host remove`), one per line.
const REMOVED_FILE: &str = "removed";

/// The folder of a host's databases.
#[derive(Clone, Debug)]
pub struct HostFolder {
    /// The folder.
    pub dir: PathBuf,
    /// The cr-sqlite build the databases are opened with.
    pub extension: Extension,
}

impl HostFolder {
    /// The host's own state dir.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.join(STATE_DIR)
    }

    /// The files of the database `name`.
    pub fn config_of(&self, name: &DbName) -> Config {
        let folder = self.dir.join(name.as_str());
        Config {
            db_file: folder.join(DB_FILE),
            state_dir: folder.join(STATE_DIR),
            extension: self.extension.clone(),
            network: NetworkSettings::default(),
        }
    }

    /// Whether the folder `name` holds a database.
    pub fn holds(&self, name: &DbName) -> bool {
        let config = self.config_of(name);
        config.db_file.is_file() && config.state_dir.is_dir()
    }

    /// The databases to serve: the folders holding a database, but those removed from
    /// serving. A folder whose name cannot name a database is said and left alone.
    pub fn names(&self) -> Result<Vec<DbName>, ServeError> {
        let unreadable = |err: std::io::Error| {
            ServeError::Stopped(format!(
                "cannot read the databases' folder {}: {err}",
                self.dir.display()
            ))
        };
        let removed = self.removed();
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(unreadable)? {
            let path = entry.map_err(unreadable)?.path();
            let Some(folder) = path.file_name().and_then(|name| name.to_str()) else {
                continue;
            };
            if folder.starts_with('.') || !path.join(DB_FILE).is_file() {
                continue;
            }
            match folder.parse::<DbName>() {
                Ok(name) if removed.contains(&name) => {}
                Ok(name) if self.holds(&name) => names.push(name),
                Ok(_) => {}
                Err(err) => tracing::warn!(target: "ddcp", "Not served: {err}"),
            }
        }
        names.sort();
        Ok(names)
    }

    /// The databases removed from serving.
    fn removed(&self) -> BTreeSet<DbName> {
        let text = std::fs::read_to_string(self.state_dir().join(REMOVED_FILE)).unwrap_or_default();
        text.lines().filter_map(|line| line.parse().ok()).collect()
    }

    /// Marks `name` removed from serving (`removed` true) or served again.
    pub fn set_removed(&self, name: &DbName, removed: bool) -> std::io::Result<()> {
        let mut names = self.removed();
        let changed = if removed {
            names.insert(name.clone())
        } else {
            names.remove(name)
        };
        if !changed {
            return Ok(());
        }
        let text: String = names.iter().map(|name| format!("{name}\n")).collect();
        let path = self.state_dir().join(REMOVED_FILE);
        let partial = path.with_extension("partial");
        std::fs::write(&partial, text)?;
        std::fs::rename(&partial, &path)
    }

    /// Makes the database `name` (its folder, file, state dir, member identity and record),
    /// its record on `network`'s node: the host publishes it. Nothing is left half made.
    pub async fn make(&self, name: &DbName, network: &Network) -> Result<RecordKey, ServeError> {
        let folder = self.dir.join(name.as_str());
        let made_folder = !folder.exists();
        let config = self.config_of(name);
        // Half a database (its file copied in without its state dir, or the other way round)
        // is the user's, to complete: nothing is made over it, and nothing of it removed.
        if config.db_file.exists() || config.state_dir.exists() {
            let (has, lacks) = if config.db_file.exists() {
                (&config.db_file, &config.state_dir)
            } else {
                (&config.state_dir, &config.db_file)
            };
            return Err(ServeError::Stopped(format!(
                "{} has {} but not {}: copy in the whole database (its file and its state dir), then add it again",
                folder.display(),
                has.display(),
                lacks.display()
            )));
        }
        let made = self.make_in(&config, network).await;
        if made.is_err() {
            remove_database_files(&config.db_file);
            let _ = std::fs::remove_dir_all(&config.state_dir);
            if made_folder {
                let _ = std::fs::remove_dir(&folder);
            }
        }
        made
    }

    async fn make_in(&self, config: &Config, network: &Network) -> Result<RecordKey, ServeError> {
        let io = |what: &Path, err: std::io::Error| {
            ServeError::Stopped(format!("cannot make {}: {err}", what.display()))
        };
        let folder = config.db_file.parent().unwrap_or(&self.dir);
        std::fs::create_dir_all(folder).map_err(|err| io(folder, err))?;
        config
            .create_state_dir()
            .map_err(|err| io(&config.state_dir, err))?;
        let db = Db::create(&config.db_file, &config.extension)?;
        member_file::load_or_create(&config.state_dir)?;
        let identity = create_record_identity(network).await?;
        identity.save(&config.state_dir)?;
        db.bind_record(&identity.key)?;
        db.close()?;
        Ok(identity.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_databases_are_the_folders_holding_one_but_those_removed() {
        let dir = tempfile::tempdir().unwrap();
        let folder = HostFolder {
            dir: dir.path().to_path_buf(),
            extension: Extension::BuiltIn,
        };
        std::fs::create_dir_all(folder.state_dir()).unwrap();
        for name in ["b", "a", "no-state-dir", "bad name"] {
            let path = dir.path().join(name);
            std::fs::create_dir_all(&path).unwrap();
            std::fs::write(path.join(DB_FILE), b"").unwrap();
            if name != "no-state-dir" {
                std::fs::create_dir(path.join(STATE_DIR)).unwrap();
            }
        }
        std::fs::create_dir(dir.path().join("empty")).unwrap();
        let names = |folder: &HostFolder| -> Vec<String> {
            folder
                .names()
                .unwrap()
                .iter()
                .map(|n| n.to_string())
                .collect()
        };
        assert_eq!(names(&folder), ["a", "b"]);
        let a: DbName = "a".parse().unwrap();
        folder.set_removed(&a, true).unwrap();
        assert_eq!(names(&folder), ["b"]);
        folder.set_removed(&a, false).unwrap();
        assert_eq!(names(&folder), ["a", "b"]);
    }
}
