//! `ddcp remote add|set|remove|list`.

use super::CommandError;
use super::filter_args::filter_json;
use super::output::{print_json, print_line};
use crate::cli::{FilterArgs, RemoteCommand, SchemaMode};
use crate::config::Config;
use crate::db::{AcceptPolicy, MirrorPrefix, RemoteName};
use crate::status_report::{RemoteJson, remotes_json, schema_mode};
use crate::sync::authors::AuthorPolicy;
use crate::sync::{MemberId, RecordKey};

pub fn run(config: &Config, command: RemoteCommand) -> Result<(), CommandError> {
    match command {
        RemoteCommand::Add {
            name,
            key,
            authors,
            filter,
            into,
            serve_mirrors,
            schema,
            owner,
            json,
        } => {
            let into = match into {
                Some(prefix) => Some((prefix.parse()?, serve_mirrors)),
                None => None,
            };
            add(
                config,
                &AddRemote {
                    name: &name,
                    key: &key,
                    authors: authors.authors.as_deref(),
                    filter: &filter,
                    into,
                    follow: schema == Some(SchemaMode::Follow),
                    owner: owner.as_deref(),
                },
                json,
            )
        }
        RemoteCommand::Set {
            name,
            authors,
            filter,
            schema,
            owner,
        } => set(
            config,
            &name,
            &SetRemote {
                authors: authors.authors.as_deref(),
                filter: &filter,
                schema,
                owner: owner.as_deref(),
            },
        ),
        RemoteCommand::Remove { name } => remove(config, &name),
        RemoteCommand::List { json, show_secrets } => list(config, json, show_secrets),
    }
}

fn parse_authors(authors: &str) -> Result<AuthorPolicy, CommandError> {
    authors.parse().map_err(CommandError::BadAuthors)
}

/// What `ddcp remote add` was given.
struct AddRemote<'a> {
    name: &'a str,
    key: &'a str,
    authors: Option<&'a str>,
    filter: &'a FilterArgs,
    into: Option<(MirrorPrefix, bool)>,
    follow: bool,
    owner: Option<&'a str>,
}

/// What `ddcp remote set` was given.
struct SetRemote<'a> {
    authors: Option<&'a str>,
    filter: &'a FilterArgs,
    schema: Option<SchemaMode>,
    owner: Option<&'a str>,
}

fn parse_owner(owner: Option<&str>) -> Result<Option<MemberId>, CommandError> {
    owner
        .map(|id| id.parse().map_err(CommandError::BadMemberId))
        .transpose()
}

fn add(config: &Config, args: &AddRemote<'_>, json: bool) -> Result<(), CommandError> {
    let AddRemote {
        name,
        key,
        authors,
        filter,
        follow,
        ..
    } = *args;
    let into = args.into.clone();
    // Check the arguments before the database is even opened.
    let name: RemoteName = name.parse()?;
    let key: RecordKey = super::remote_key(key)?;
    let owner = parse_owner(args.owner)?;
    let (into, serve_mirrors) = match into {
        Some((prefix, serve)) => (Some(prefix), serve),
        None => (None, false),
    };
    let accept = AcceptPolicy {
        authors: authors.map_or(Ok(AuthorPolicy::Any), parse_authors)?,
        filter: filter.applied_to(&Default::default())?,
        into,
    };
    let mut db = super::open_db(config)?;
    let remote = db.add_remote(&name, &key, &accept, serve_mirrors)?;
    if follow {
        db.set_schema_follow(&name, true)?;
    }
    if let Some(owner) = &owner {
        db.set_remote_owner(&name, owner)?;
    }
    db.close()?;
    tracing::info!(target: "ddcp", remote_name = %name, key = %key, authors = %accept.authors,
        filter = %accept.filter, "Added remote");
    super::daemon::remotes_changed(config);
    if json {
        print_json(&RemoteJson {
            name: name.to_string(),
            key: key.to_string(),
            added_at: remote.added_at,
            authors: accept.authors.to_string(),
            accepts: filter_json(&accept.filter),
            into: accept.into.as_ref().map(MirrorPrefix::to_string),
            schema: schema_mode(follow),
            owner: owner.map(|owner| owner.to_string()),
        })?;
    } else {
        print_line(format_args!("added remote {name} ({key})"))?;
    }
    Ok(())
}

fn set(config: &Config, name: &str, args: &SetRemote<'_>) -> Result<(), CommandError> {
    let SetRemote {
        authors,
        filter,
        schema,
        owner,
    } = *args;
    let name: RemoteName = name.parse()?;
    if authors.is_none() && filter.is_empty() && schema.is_none() && owner.is_none() {
        return Err(CommandError::NothingToSet);
    }
    let authors = authors.map(parse_authors).transpose()?;
    let owner = parse_owner(owner)?;
    let mut db = super::open_db(config)?;
    let before = db.remote(&name)?.accept;
    if let Some(owner) = owner {
        db.set_remote_owner(&name, &owner)?;
        tracing::info!(target: "ddcp", remote_name = %name, owner = %owner, "Pinned the remote's owner");
        print_line(format_args!(
            "remote {name}'s status must name owner {owner}: taken at its next pull"
        ))?;
    }
    if let Some(schema) = schema {
        db.set_schema_follow(&name, schema == SchemaMode::Follow)?;
        print_line(match schema {
            SchemaMode::Follow => format!(
                "remote {name}'s schema is followed: the migrations it publishes are applied here, from its first, at its next pull"
            ),
            SchemaMode::Manual => format!(
                "remote {name}'s schema is not followed: `ddcp status` says when it is ahead, `ddcp migrate --from {name}` applies"
            ),
        })?;
    }
    if authors.is_some() || !filter.is_empty() {
        let accept = AcceptPolicy {
            authors: authors.unwrap_or(before.authors.clone()),
            filter: filter.applied_to(&before.filter)?,
            into: before.into.clone(),
        };
        db.set_remote_accept(&name, &accept)?;
        tracing::info!(target: "ddcp", remote_name = %name, authors = %accept.authors,
            filter = %accept.filter, "Changed remote");
        print_line(format_args!(
            "remote {name} may now bring: authors={} {}",
            accept.authors, accept.filter
        ))?;
        if accept != before {
            print_line(format_args!(
                "its changes are pulled again from the start at its next pull"
            ))?;
        }
    }
    db.close()?;
    super::daemon::remotes_changed(config);
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

fn list(config: &Config, json: bool, show_secrets: bool) -> Result<(), CommandError> {
    let db = super::open_db(config)?;
    let remotes = db.remotes()?;
    let listed = remotes_json(&db, show_secrets)?;
    db.close()?;
    if json {
        print_json(&listed)?;
    } else {
        for (remote, shown) in remotes.iter().zip(listed) {
            // The policy only when it is not the default, so that scripts reading NAME<TAB>KEY
            // keep working.
            let mut line = format!("{}\t{}", shown.name, shown.key);
            if remote.accept.authors != AuthorPolicy::Any {
                line.push_str(&format!("\tauthors={}", remote.accept.authors));
            }
            if let Some(into) = &remote.accept.into {
                line.push_str(&format!("\tinto={into}"));
            }
            if remote.follows_schema {
                line.push_str("\tschema=follow");
            }
            if !remote.accept.filter.is_open() {
                line.push_str(&format!("\taccepts: {}", remote.accept.filter));
            }
            print_line(format_args!("{line}"))?;
        }
    }
    Ok(())
}
