//! `ddcp remote add|remove|list`.

use serde::Serialize;

use super::CommandError;
use super::output::{print_json, print_line};
use crate::cli::RemoteCommand;
use crate::config::Config;
use crate::db::{Db, RemoteName};
use crate::sync::RecordKey;

pub fn run(config: &Config, command: RemoteCommand) -> Result<(), CommandError> {
    match command {
        RemoteCommand::Add { name, key } => add(config, &name, &key),
        RemoteCommand::Remove { name } => remove(config, &name),
        RemoteCommand::List { json, show_secrets } => list(config, json, show_secrets),
    }
}

fn add(config: &Config, name: &str, key: &str) -> Result<(), CommandError> {
    // Check the arguments before the database is even opened.
    let name: RemoteName = name.parse()?;
    let key: RecordKey = key.parse().map_err(CommandError::BadKey)?;
    let mut db = Db::open(&config.db_file, &config.extension)?;
    db.add_remote(&name, &key)?;
    db.close()?;
    tracing::info!(target: "ddcp", remote_name = %name, key = %key, "Added remote");
    super::daemon::remotes_changed(config);
    Ok(())
}

fn remove(config: &Config, name: &str) -> Result<(), CommandError> {
    let name: RemoteName = name.parse()?;
    let mut db = Db::open(&config.db_file, &config.extension)?;
    db.remove_remote(&name)?;
    db.close()?;
    tracing::info!(target: "ddcp", remote_name = %name, "Removed remote");
    super::daemon::remotes_changed(config);
    Ok(())
}

/// A remote as `remote list --json` and `status --json` print it.
#[derive(Serialize)]
pub struct RemoteJson {
    pub name: String,
    /// The record key; with its secret only when the user asked (`--show-secrets`).
    pub key: String,
    pub added_at: i64,
}

/// The remotes, their keys without the secret unless `show_secrets`.
pub fn remotes_json(db: &Db, show_secrets: bool) -> Result<Vec<RemoteJson>, CommandError> {
    Ok(db
        .remotes()?
        .into_iter()
        .map(|remote| RemoteJson {
            name: remote.name.to_string(),
            key: if show_secrets {
                remote.key.reveal().to_string()
            } else {
                remote.key.to_string()
            },
            added_at: remote.added_at,
        })
        .collect())
}

fn list(config: &Config, json: bool, show_secrets: bool) -> Result<(), CommandError> {
    let db = Db::open(&config.db_file, &config.extension)?;
    let remotes = remotes_json(&db, show_secrets)?;
    db.close()?;
    if json {
        print_json(&remotes)?;
    } else {
        for remote in remotes {
            print_line(format_args!("{}\t{}", remote.name, remote.key))?;
        }
    }
    Ok(())
}
