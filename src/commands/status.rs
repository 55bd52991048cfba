//! `ddcp status`: what this database is and holds.

use super::CommandError;
use super::daemon::ask_daemon;
use super::output::{print_json, print_line};
use crate::config::Config;
use crate::control::{ControlError, ControlRequest, ControlResponse};
use crate::status_report::{HealthJson, RemoteSchemaJson, read_status};

pub fn run(config: &Config, json: bool) -> Result<(), CommandError> {
    // Run in a host's folder (no database here, and the state dir the host's): the host's.
    let host_dir = config
        .state_dir
        .parent()
        .map(|parent| match parent.as_os_str() {
            empty if empty.is_empty() => std::path::Path::new("."),
            _ => parent,
        });
    if !config.db_file.exists()
        && config.state_dir.file_name() == Some(std::ffi::OsStr::new(".ddcp"))
        && let Some(dir) = host_dir
        && super::host::status_if_hosting(dir, json)?
    {
        return Ok(());
    }
    let mut db = super::open_db(config)?;
    let mut status = read_status(&mut db, &config.db_file)?;
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
