//! `ddcp host status|add|remove`: a running `ddcp serve --databases DIR`, through the host's
//! control socket in DIR/.ddcp (docs/hosting.md).

use std::path::Path;

use super::CommandError;
use super::output::{print_json, print_line};
use crate::cli::{HostArgs, HostCommand};
use crate::control::{ControlRequest, ControlResponse, HostedHealth, ask, connect};
use crate::serve::HostFolder;

pub fn run(args: &HostArgs) -> Result<(), CommandError> {
    let dir = &args.databases;
    match &args.command {
        HostCommand::Status(flag) => status(dir, flag.json),
        HostCommand::Add { name } => match ask_host(dir, ControlRequest::HostAdd(name.clone()))? {
            ControlResponse::Added { key, made } => {
                let what = if made { "Made and serving" } else { "Serving" };
                tracing::info!(target: "ddcp", db = %name, "{what} the database");
                // Its owner asked for it: the one place besides `init` and `addr` that prints
                // a whole key.
                Ok(print_line(key)?)
            }
            other => Err(unexpected(other)),
        },
        HostCommand::Remove { name } => {
            match ask_host(dir, ControlRequest::HostRemove(name.clone()))? {
                ControlResponse::Done => Ok(print_line(format_args!(
                    "stopped serving {name} (its files stay in its folder)"
                ))?),
                other => Err(unexpected(other)),
            }
        }
    }
}

/// `ddcp host status`: every database of the host serving `dir`.
fn status(dir: &Path, json: bool) -> Result<(), CommandError> {
    match ask_host(dir, ControlRequest::HostStatus)? {
        ControlResponse::Host(databases) => show(databases, json),
        other => Err(unexpected(other)),
    }
}

/// The host's status when a host serves `dir` (true), else nothing (false): `ddcp status` run
/// in a host's folder, where there is no database but the host's state dir. A database's own
/// socket refuses the question.
pub fn status_if_hosting(dir: &Path, json: bool) -> Result<bool, CommandError> {
    match ask_host(dir, ControlRequest::HostStatus) {
        Ok(ControlResponse::Host(databases)) => show(databases, json).map(|()| true),
        _ => Ok(false),
    }
}

fn show(databases: Vec<HostedHealth>, json: bool) -> Result<(), CommandError> {
    if json {
        Ok(print_json(&redacted(databases))?)
    } else {
        print_status(&databases)
    }
}

/// Asks the host serving `dir`.
fn ask_host(dir: &Path, request: ControlRequest) -> Result<ControlResponse, CommandError> {
    let folder = HostFolder {
        dir: dir.to_path_buf(),
        extension: crate::db::Extension::BuiltIn,
    };
    let Some(mut stream) = connect(&folder.state_dir())? else {
        return Err(CommandError::NoHost(dir.to_path_buf()));
    };
    match ask(&mut stream, &request) {
        Err(crate::control::ControlError::Daemon(refusal)) => {
            Err(CommandError::HostRefused(refusal))
        }
        answered => Ok(answered?),
    }
}

fn unexpected(_response: ControlResponse) -> CommandError {
    // Not shown: an answer may hold a whole key.
    CommandError::HostRefused("it answered something else".into())
}

/// `databases`, their errors as the text output shows them (a key quoted whole in one, its
/// secret left out).
fn redacted(mut databases: Vec<HostedHealth>) -> Vec<HostedHealth> {
    let redact = |error: &mut Option<String>| {
        if let Some(text) = error {
            *text = super::output::redacted(text).into_owned();
        }
    };
    for database in &mut databases {
        redact(&mut database.last_error);
        for remote in &mut database.remotes {
            redact(&mut remote.last_error);
        }
    }
    databases
}

/// A lag, or `-` while unknown.
fn lag_text(lag: Option<i64>) -> String {
    lag.map_or_else(|| "-".to_string(), |lag| lag.to_string())
}

/// `, last error: ...` (a key in it without its secret), or nothing.
fn error_text(error: Option<&str>) -> String {
    error
        .map(|error| format!(", last error: {}", super::output::redacted(error)))
        .unwrap_or_default()
}

/// One line per database, and one per remote of each.
fn print_status(databases: &[HostedHealth]) -> Result<(), CommandError> {
    if databases.is_empty() {
        print_line("no database served (add one with `ddcp host add NAME`)")?;
    }
    for database in databases {
        let state = if database.running {
            "serving"
        } else {
            "waiting to start again"
        };
        print_line(format_args!(
            "{}: {state}, {} remotes, lag {}, restarts {}{}",
            database.name,
            database.remotes.len(),
            lag_text(database.lag()),
            database.restarts,
            error_text(database.last_error.as_deref())
        ))?;
        for remote in &database.remotes {
            print_line(format_args!(
                "  {}: lag {}{}",
                remote.name,
                lag_text(remote.lag()),
                error_text(remote.last_error.as_deref())
            ))?;
        }
    }
    Ok(())
}
