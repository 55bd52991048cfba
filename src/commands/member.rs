//! `ddcp member add|remove|list`: who may read this database while it is private. The table
//! is written here; a running `ddcp serve` is told and takes the change at once (a removal
//! changes its keys and route).

use serde::Serialize;

use super::CommandError;
use super::output::{print_json, print_line};
use crate::cli::MemberCommand;
use crate::config::Config;
use crate::db::{Access, MemberName};
use crate::sync::MemberId;

pub fn run(config: &Config, command: MemberCommand) -> Result<(), CommandError> {
    match command {
        MemberCommand::Add { name, id } => add(config, &name, &id),
        MemberCommand::Remove { name } => remove(config, &name),
        MemberCommand::List { json } => list(config, json),
    }
}

fn add(config: &Config, name: &str, id: &str) -> Result<(), CommandError> {
    let name: MemberName = name.parse()?;
    let id: MemberId = id.parse().map_err(CommandError::BadMemberId)?;
    let mut db = super::open_db(config)?;
    db.add_member(&name, id)?;
    let access = db.access_state()?.access;
    db.close()?;
    tracing::info!(target: "ddcp", member = %name, id = %id, "Added member");
    print_line(format_args!("added member {name} ({id})"))?;
    if access == Access::Public {
        tracing::info!(target: "ddcp",
            "The database is public: members matter once it is private (`ddcp access private`)");
    }
    super::daemon::access_changed(config)?;
    Ok(())
}

fn remove(config: &Config, name: &str) -> Result<(), CommandError> {
    let name: MemberName = name.parse()?;
    let mut db = super::open_db(config)?;
    let epoch = db.remove_member(&name)?;
    db.close()?;
    tracing::info!(target: "ddcp", member = %name, epoch = epoch.0, "Removed member");
    print_line(format_args!(
        "removed member {name}: the database's keys move to epoch {} (and its route, while served)",
        epoch.0
    ))?;
    super::daemon::access_changed(config)?;
    Ok(())
}

/// A member as `member list --json` prints it.
#[derive(Serialize)]
struct MemberJson {
    name: String,
    id: String,
    added_at: i64,
}

fn list(config: &Config, json: bool) -> Result<(), CommandError> {
    let db = super::open_db(config)?;
    let members: Vec<MemberJson> = db
        .members()?
        .into_iter()
        .map(|member| MemberJson {
            name: member.name.to_string(),
            id: member.id.to_string(),
            added_at: member.added_at,
        })
        .collect();
    db.close()?;
    if json {
        print_json(&members)?;
    } else {
        for member in members {
            print_line(format_args!("{}\t{}", member.name, member.id))?;
        }
    }
    Ok(())
}
