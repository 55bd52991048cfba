//! `ddcp status`: what this database is and holds.

use serde::Serialize;

use super::CommandError;
use super::daemon::ask_daemon;
use super::output::{print_json, print_line};
use super::remote::{RemoteJson, remotes_json};
use crate::config::Config;
use crate::control::{ControlError, ControlRequest, ControlResponse, RemoteHealth};
use crate::sync::text::printable;

#[derive(Serialize)]
struct StatusJson {
    db_file: String,
    site_id: String,
    db_version: i64,
    schema_fingerprint: String,
    /// This database's own CRR tables (mirrors left out).
    crr_tables: Vec<String>,
    /// The CRR tables that mirror a remote's (`--into`).
    mirror_tables: Vec<String>,
    /// `public` or `private`.
    access: &'static str,
    /// Members (who may read it while private).
    members: usize,
    remotes: Vec<RemoteJson>,
    /// Changes held for tables or columns this database lacks (a remote runs a newer version
    /// of the app), by what they wait for.
    held: Vec<HeldJson>,
    /// Migrations in this database's schema history (what peers that follow it apply).
    migrations: usize,
    /// Each remote's schema history as its last pull saw it.
    remote_schemas: Vec<RemoteSchemaJson>,
    /// Whether a `ddcp serve` runs for this state dir.
    serving: bool,
    /// Each remote as the running `ddcp serve` sees it (empty without one).
    replication: Vec<HealthJson>,
}

#[derive(Serialize)]
struct HeldJson {
    table: String,
    /// The column this database lacks; null when it lacks the whole table.
    column: Option<String>,
    changes: u64,
}

impl HeldJson {
    /// "3 changes for notes.tag: this database lacks the column". The names are a remote's:
    /// made printable.
    fn describe(&self) -> String {
        let table = printable(&self.table, 80);
        match &self.column {
            Some(column) => format!(
                "{} changes for {table}.{}: this database lacks the column",
                self.changes,
                printable(column, 80)
            ),
            None => format!(
                "{} changes for {table}: this database lacks the table",
                self.changes
            ),
        }
    }
}

#[derive(Serialize)]
struct RemoteSchemaJson {
    remote: String,
    /// `follow` or `manual`.
    schema: &'static str,
    /// Migrations in the history it published.
    published: u32,
    /// Of them, how many have steps this database lacks.
    ahead: usize,
    /// Why its history is not followed further, when it is not.
    refused: Option<String>,
}

impl RemoteSchemaJson {
    /// One line for `ddcp status`, when there is something to say.
    fn describe(&self) -> Option<String> {
        let name = &self.remote;
        if let Some(refused) = &self.refused {
            // Its words may be the remote's (a statement SQLite refused): made printable.
            return Some(format!("{name}: {}", printable(refused, 300)));
        }
        match (self.ahead, self.schema) {
            (0, _) => None,
            (ahead, "follow") => Some(format!(
                "{name}'s schema is {ahead} migration{} ahead: followed at its next pull",
                plural(ahead)
            )),
            (ahead, _) => Some(format!(
                "{name}'s schema is {ahead} migration{} ahead: `ddcp migrate --from {name}`",
                plural(ahead)
            )),
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[derive(Serialize)]
struct HealthJson {
    name: String,
    pulled_version: Option<i64>,
    remote_version: Option<i64>,
    lag: Option<i64>,
    last_success: Option<i64>,
    last_error: Option<String>,
    refused: u64,
    restarts: u32,
    running: bool,
}

impl From<RemoteHealth> for HealthJson {
    fn from(health: RemoteHealth) -> Self {
        HealthJson {
            lag: health.lag(),
            name: health.name,
            pulled_version: health.pulled_version,
            remote_version: health.remote_version,
            last_success: health.last_success,
            last_error: health.last_error,
            refused: health.refused,
            restarts: health.restarts,
            running: health.running,
        }
    }
}

pub fn run(config: &Config, json: bool) -> Result<(), CommandError> {
    let mut db = super::open_db(config)?;
    let access = db.access_state()?;
    let mut status = StatusJson {
        db_file: config.db_file.display().to_string(),
        site_id: db.site_id()?.to_string(),
        db_version: db.db_version()?.0,
        schema_fingerprint: db.shared_schema()?.fingerprint().to_string(),
        crr_tables: db
            .own_schema()?
            .tables
            .into_iter()
            .map(|table| table.name)
            .collect(),
        mirror_tables: db.mirror_tables()?,
        access: access.access.as_str(),
        members: access.members.len(),
        remotes: remotes_json(&db, false)?,
        held: db
            .held()?
            .into_iter()
            .map(|group| HeldJson {
                table: group.table,
                column: group.column,
                changes: group.changes,
            })
            .collect(),
        migrations: db.schema_history()?.len(),
        remote_schemas: db
            .remote_schemas()?
            .into_iter()
            .map(|state| RemoteSchemaJson {
                remote: state.remote.to_string(),
                schema: if state.follow { "follow" } else { "manual" },
                published: state.published,
                ahead: state.ahead,
                refused: state.refused,
            })
            .collect(),
        serving: false,
        replication: Vec::new(),
    };
    match ask_daemon(config, ControlRequest::Health)? {
        Some(ControlResponse::Health(remotes)) => {
            status.serving = true;
            status.replication = remotes.into_iter().map(HealthJson::from).collect();
        }
        Some(_) => return Err(ControlError::Malformed("not a status".into()).into()),
        None => {}
    }
    db.close()?;
    if json {
        print_json(&status)?;
        return Ok(());
    }
    print_line(format_args!("database:    {}", status.db_file))?;
    print_line(format_args!("site id:     {}", status.site_id))?;
    print_line(format_args!("db_version:  {}", status.db_version))?;
    print_line(format_args!("schema:      {}", status.schema_fingerprint))?;
    let tables = if status.crr_tables.is_empty() {
        "(none: make tables CRRs with `select crsql_as_crr('name')`)".to_string()
    } else {
        status.crr_tables.join(", ")
    };
    print_line(format_args!("crr tables:  {tables}"))?;
    if !status.mirror_tables.is_empty() {
        print_line(format_args!(
            "mirrors:     {} (other databases' rows, kept apart)",
            status.mirror_tables.join(", ")
        ))?;
    }
    print_line(format_args!(
        "access:      {} ({} members)",
        status.access, status.members
    ))?;
    if status.remotes.is_empty() {
        print_line("remotes:     (none)")?;
    } else {
        print_line("remotes:")?;
        for remote in &status.remotes {
            print_line(format_args!("  {}\t{}", remote.name, remote.key))?;
        }
    }
    if status.migrations > 0 {
        print_line(format_args!(
            "migrations:  {} (the schema history peers that follow this database apply)",
            status.migrations
        ))?;
    }
    for line in status
        .remote_schemas
        .iter()
        .filter_map(RemoteSchemaJson::describe)
    {
        print_line(format_args!("history:     {line}"))?;
    }
    for held in &status.held {
        print_line(format_args!("held:        {}", held.describe()))?;
    }
    if !status.serving {
        print_line("serving:     no (`ddcp serve` is not running)")?;
        return Ok(());
    }
    print_line("serving:     yes")?;
    for health in &status.replication {
        let version = |v: Option<i64>| v.map_or("-".to_string(), |v| v.to_string());
        let state = if health.running {
            "running"
        } else {
            "restarting"
        };
        print_line(format_args!(
            "  {}: {state}, pulled {} of {} (lag {}), last success {}, restarts {}{}{}",
            health.name,
            version(health.pulled_version),
            version(health.remote_version),
            version(health.lag),
            health
                .last_success
                .map_or("never".to_string(), |at| format!(
                    "{}s ago",
                    unix_now() - at
                )),
            health.restarts,
            if health.refused > 0 {
                format!(
                    ", {} changes refused (not accepted from it)",
                    health.refused
                )
            } else {
                String::new()
            },
            health
                .last_error
                .as_ref()
                .map(|error| format!(", last error: {error}"))
                .unwrap_or_default()
        ))?;
    }
    Ok(())
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs() as i64)
}
