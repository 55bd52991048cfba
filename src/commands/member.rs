//! `ddcp member add|set|remove|list`: who may read this database while it is private, and
//! what each may read. The table is written here; a running `ddcp serve` is told and takes
//! the change at once (a removal changes its keys and route).

use serde::Serialize;

use super::CommandError;
use super::filter_args::filter_json;
use super::output::{print_json, print_line};
use crate::cli::{FilterArgs, MemberCommand};
use crate::config::Config;
use crate::db::{Access, FilterJson, MemberName};
use crate::removals_file;
use crate::sync::MemberId;

pub fn run(config: &Config, command: MemberCommand) -> Result<(), CommandError> {
    match command {
        MemberCommand::Add { name, id, filter } => add(config, &name, &id, &filter),
        MemberCommand::Set { name, filter } => set(config, &name, &filter),
        MemberCommand::Remove { name } => remove(config, &name),
        MemberCommand::List { json } => list(config, json),
    }
}

fn add(config: &Config, name: &str, id: &str, filter: &FilterArgs) -> Result<(), CommandError> {
    let name: MemberName = name.parse()?;
    let id: MemberId = id.parse().map_err(CommandError::BadMemberId)?;
    let reads = filter.applied_to(&Default::default())?;
    let mut db = super::open_db(config)?;
    db.add_member(&name, id, &reads)?;
    let access = db.access_state()?.access;
    db.close()?;
    // Written after the database knows the member again: a failure between the two leaves it
    // kept out by a later restore, never let in by one.
    let removals = removals_file::load(&config.state_dir)?;
    if removals.is_some_and(|removals| removals.removed.contains(&id)) {
        removals_file::record_readmitted(&config.state_dir, &id)?;
    }
    tracing::info!(target: "ddcp", member = %name, id = %id, reads = %reads, "Added member");
    print_line(format_args!("added member {name} ({id})"))?;
    if access == Access::Public {
        tracing::info!(target: "ddcp",
            "The database is public: members matter once it is private (`ddcp access private`)");
    }
    super::daemon::access_changed(config)?;
    Ok(())
}

fn set(config: &Config, name: &str, filter: &FilterArgs) -> Result<(), CommandError> {
    let name: MemberName = name.parse()?;
    if filter.is_empty() {
        return Err(CommandError::NoFilterGiven);
    }
    let mut db = super::open_db(config)?;
    let member = db.member(&name)?;
    let reads = filter.applied_to(&member.reads)?;
    db.set_member_reads(&name, &reads)?;
    db.close()?;
    tracing::info!(target: "ddcp", member = %name, reads = %reads, "Changed member");
    print_line(format_args!("member {name} now reads: {reads}"))?;
    super::daemon::access_changed(config)?;
    Ok(())
}

fn remove(config: &Config, name: &str) -> Result<(), CommandError> {
    let name: MemberName = name.parse()?;
    let mut db = super::open_db(config)?;
    let member = db.member(&name)?;
    let before = db.access_state()?.epoch;
    // Written down outside the database first, so that a restore of an older backup keeps the
    // member out (docs/private-databases.md, "Backups").
    removals_file::record_removed(&config.state_dir, &member.id, before)?;
    let epoch = db.remove_member(&name)?;
    db.close()?;
    removals_file::record_epoch(&config.state_dir, epoch, before)?;
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
    /// What it may read (within `ddcp share`'s filter); `null` for all.
    reads: Option<FilterJson>,
}

fn list(config: &Config, json: bool) -> Result<(), CommandError> {
    let db = super::open_db(config)?;
    let members = db.members()?;
    db.close()?;
    if json {
        let members: Vec<MemberJson> = members
            .iter()
            .map(|member| MemberJson {
                name: member.name.to_string(),
                id: member.id.to_string(),
                added_at: member.added_at,
                reads: filter_json(&member.reads),
            })
            .collect();
        print_json(&members)?;
    } else {
        for member in members {
            let reads = match member.reads.is_open() {
                true => String::new(),
                false => format!("\treads: {}", member.reads),
            };
            print_line(format_args!("{}\t{}{reads}", member.name, member.id))?;
        }
    }
    Ok(())
}
