//! Reaching a running `ddcp serve` from a command: commands that find one ask it, the others
//! work on the database directly.

use super::CommandError;
use crate::config::Config;
use crate::control::{ControlRequest, ControlResponse, ask, connect};

/// Asks the running daemon, if there is one; `None` when there is none.
pub fn ask_daemon(
    config: &Config,
    request: ControlRequest,
) -> Result<Option<ControlResponse>, CommandError> {
    let Some(mut stream) = connect(&config.state_dir)? else {
        return Ok(None);
    };
    Ok(Some(ask(&mut stream, &request)?))
}

/// Tells a running daemon that the remotes changed. The change is stored already: a daemon
/// that cannot be told is worth a warning, not a failure.
pub fn remotes_changed(config: &Config) {
    tell_daemon(config, ControlRequest::RemotesChanged);
}

/// Tells a running daemon that the access mode or the members changed. Unlike the remotes, a
/// daemon that cannot be told is a failure: it would go on answering a removed member.
pub fn access_changed(config: &Config) -> Result<(), CommandError> {
    let refused = |reason: String| CommandError::NotTaken(reason);
    match ask_daemon(config, ControlRequest::AccessChanged) {
        Ok(None) => Ok(()),
        Ok(Some(ControlResponse::Done)) => {
            tracing::info!(target: "ddcp", "The running ddcp serve took the change");
            Ok(())
        }
        Ok(Some(ControlResponse::Error(err))) => Err(refused(err)),
        Ok(Some(_)) => Err(refused("it answered something else".into())),
        Err(err) => Err(refused(err.to_string())),
    }
}

fn tell_daemon(config: &Config, request: ControlRequest) {
    match ask_daemon(config, request) {
        Ok(Some(ControlResponse::Error(err))) => tracing::warn!(
            target: "ddcp",
            error = %err,
            "The running ddcp serve could not take the change; restart it to take it"
        ),
        Ok(Some(_)) => {
            tracing::info!(target: "ddcp", "The running ddcp serve took the change")
        }
        Ok(None) => {}
        Err(err) => tracing::warn!(
            target: "ddcp",
            error = %err,
            "Could not tell the running ddcp serve; restart it to take the change"
        ),
    }
}
