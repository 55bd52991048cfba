//! `ddcp remote add|remove|list`.

use serde::Serialize;

use super::CommandError;
use super::output::{print_json, print_line};
use crate::cli::RemoteCommand;
use crate::config::Config;
use crate::db::{Db, RemoteName};
use crate::sync::RecordKey;
use crate::sync::authors::AuthorPolicy;

pub fn run(config: &Config, command: RemoteCommand) -> Result<(), CommandError> {
    match command {
        RemoteCommand::Add {
            name,
            key,
            authors,
            json,
        } => add(config, &name, &key, authors.authors.as_deref(), json),
        RemoteCommand::Set { name, authors } => set(config, &name, authors.authors.as_deref()),
        RemoteCommand::Remove { name } => remove(config, &name),
        RemoteCommand::List { json, show_secrets } => list(config, json, show_secrets),
    }
}

fn parse_authors(authors: Option<&str>) -> Result<AuthorPolicy, CommandError> {
    authors.map_or(Ok(AuthorPolicy::Any), |text| {
        text.parse().map_err(CommandError::BadAuthors)
    })
}

fn add(
    config: &Config,
    name: &str,
    key: &str,
    authors: Option<&str>,
    json: bool,
) -> Result<(), CommandError> {
    // Check the arguments before the database is even opened.
    let name: RemoteName = name.parse()?;
    let key: RecordKey = super::remote_key(key)?;
    let authors = parse_authors(authors)?;
    let mut db = super::open_db(config)?;
    let remote = db.add_remote(&name, &key, &authors)?;
    db.close()?;
    tracing::info!(target: "ddcp", remote_name = %name, key = %key, %authors, "Added remote");
    super::daemon::remotes_changed(config);
    if json {
        print_json(&RemoteJson {
            name: name.to_string(),
            key: key.to_string(),
            added_at: remote.added_at,
            authors: authors.to_string(),
        })?;
    } else {
        print_line(format_args!("added remote {name} ({key})"))?;
    }
    Ok(())
}

fn set(config: &Config, name: &str, authors: Option<&str>) -> Result<(), CommandError> {
    let name: RemoteName = name.parse()?;
    let Some(authors) = authors else {
        return Err(CommandError::NothingToSet);
    };
    let authors = parse_authors(Some(authors))?;
    let mut db = super::open_db(config)?;
    let widened = db.set_remote_authors(&name, &authors)?;
    db.close()?;
    tracing::info!(target: "ddcp", remote_name = %name, %authors, widened,
        "Changed remote");
    super::daemon::remotes_changed(config);
    print_line(format_args!(
        "remote {name} now accepts changes by: {authors}"
    ))?;
    Ok(())
}

fn remove(config: &Config, name: &str) -> Result<(), CommandError> {
    let name: RemoteName = name.parse()?;
    let mut db = super::open_db(config)?;
    db.remove_remote(&name)?;
    db.close()?;
    tracing::info!(target: "ddcp", remote_name = %name, "Removed remote");
    super::daemon::remotes_changed(config);
    print_line(format_args!("removed remote {name}"))?;
    Ok(())
}

/// A remote as `remote list --json` and `status --json` print it.
#[derive(Serialize)]
pub struct RemoteJson {
    pub name: String,
    /// The record key; with its secret only when the user asked (`--show-secrets`).
    pub key: String,
    pub added_at: i64,
    /// Whose changes it may bring (`any`, `direct` or site ids).
    pub authors: String,
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
            authors: remote.authors.to_string(),
        })
        .collect())
}

fn list(config: &Config, json: bool, show_secrets: bool) -> Result<(), CommandError> {
    let db = super::open_db(config)?;
    let remotes = remotes_json(&db, show_secrets)?;
    db.close()?;
    if json {
        print_json(&remotes)?;
    } else {
        for remote in remotes {
            // The author policy only when it is not the default, so that scripts reading
            // NAME<TAB>KEY keep working.
            let authors = match remote.authors.as_str() {
                "any" => String::new(),
                authors => format!("\tauthors={authors}"),
            };
            print_line(format_args!("{}\t{}{authors}", remote.name, remote.key))?;
        }
    }
    Ok(())
}
