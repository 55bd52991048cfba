//! Where things live: the database file, the state directory, the cr-sqlite build.

use std::path::{Path, PathBuf};

use crate::db::Extension;
use crate::net::NetworkSettings;

/// The files one ddcp command works with, from the global options (or their environment
/// variables).
#[derive(Clone, Debug)]
pub struct Config {
    /// `--db-file` / `DB_FILE`.
    pub db_file: PathBuf,
    /// `--state-dir` / `STATE_DIR`: ddcp's own files (Veilid identity, shell history, ...).
    pub state_dir: PathBuf,
    /// `--ext-file` / `EXT_FILE`, or the built-in cr-sqlite.
    pub extension: Extension,
    /// Which Veilid network to join (`--bootstrap`, `--network-key`, `--listen`).
    pub network: NetworkSettings,
}

/// The state directory's shell history file.
const SHELL_HISTORY: &str = "shell_history";
/// The state directory's folder for the Veilid node's stores (its identity among them).
const VEILID_DIR: &str = "veilid";

impl Config {
    /// The database `db_file` with its state in `state_dir` (as `ddcp --db-file --state-dir`),
    /// the built-in cr-sqlite, and the network settings of `state_dir`'s network file, or
    /// Veilid's public network when it has none.
    pub fn new(db_file: &Path, state_dir: &Path) -> Result<Config, BadNetworkFile> {
        let mut config = Config {
            db_file: db_file.to_path_buf(),
            state_dir: state_dir.to_path_buf(),
            extension: Extension::BuiltIn,
            network: NetworkSettings::default(),
        };
        config.read_network_file()?;
        Ok(config)
    }

    /// The interactive shell's history file.
    pub fn shell_history(&self) -> PathBuf {
        self.state_dir.join(SHELL_HISTORY)
    }

    /// Where the Veilid node keeps its stores.
    pub fn veilid_dir(&self) -> PathBuf {
        self.state_dir.join(VEILID_DIR)
    }

    /// Creates the state directory, readable by its owner only: it will hold secret keys.
    pub fn create_state_dir(&self) -> std::io::Result<()> {
        create_private_dir(&self.state_dir)
    }
}

/// Creates `dir` (and missing parents) with mode 0700. An existing directory is left as it is:
/// it may be one the user chose on purpose, such as `.`.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// The state directory's optional file of network settings (see [`Config::read_network_file`]).
const NETWORK_FILE: &str = "network.conf";

/// A line of the network file that makes no sense.
#[derive(Debug, thiserror::Error)]
#[error("{path}:{line}: {reason}")]
pub struct BadNetworkFile {
    path: PathBuf,
    line: usize,
    reason: String,
}

impl Config {
    /// Fills the network settings not given on the command line or in the environment from
    /// `STATE_DIR/network.conf`, if there is one: lines of `bootstrap = RECORD` (repeatable),
    /// `network_key = KEY` and `listen = HOST:PORT`; `#` starts a comment.
    pub fn read_network_file(&mut self) -> Result<(), BadNetworkFile> {
        let path = self.state_dir.join(NETWORK_FILE);
        let Ok(text) = std::fs::read_to_string(&path) else {
            return Ok(());
        };
        let mut bootstrap = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let bad = |reason: &str| BadNetworkFile {
                path: path.clone(),
                line: index + 1,
                reason: reason.to_string(),
            };
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let (name, value) = line
                .split_once('=')
                .ok_or_else(|| bad("expected NAME = VALUE"))?;
            let value = value.trim().to_string();
            if value.is_empty() {
                return Err(bad("empty value"));
            }
            let network = &mut self.network;
            match name.trim() {
                "bootstrap" => bootstrap.push(value),
                "network_key" => {
                    network.network_key.get_or_insert(value);
                }
                "listen" => {
                    network.listen.get_or_insert(value);
                }
                other => {
                    return Err(bad(&format!(
                        "unknown setting {other:?} (bootstrap, network_key, listen)"
                    )));
                }
            }
        }
        if self.network.bootstrap_records.is_empty() {
            self.network.bootstrap_records = bootstrap;
        }
        Ok(())
    }
}
