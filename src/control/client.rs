//! The CLI's side of the control socket.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use super::frame::{read_message, write_message};
use super::{ControlError, ControlRequest, ControlResponse, REPLY_MARGIN, socket_path};

/// A connection to the `ddcp serve` of `state_dir`, if one runs. A socket file left by a daemon
/// that died is removed.
pub fn connect(state_dir: &Path) -> Result<Option<UnixStream>, ControlError> {
    let path = socket_path(state_dir);
    if !path.exists() {
        return Ok(None);
    }
    match UnixStream::connect(&path) {
        Ok(stream) => Ok(Some(stream)),
        Err(err) if err.kind() == std::io::ErrorKind::ConnectionRefused => {
            // Nobody listens: the daemon died without cleaning up.
            let _ = std::fs::remove_file(&path);
            Ok(None)
        }
        Err(source) => Err(ControlError::Io { path, source }),
    }
}

/// Runs a watch: sends `request` (a [`ControlRequest::Watch`]) and hands every message to
/// `each` (the first is [`ControlResponse::Watching`]), until the daemon ends it or `each` fails.
pub fn watch(
    stream: &mut UnixStream,
    request: &ControlRequest,
    mut each: impl FnMut(ControlResponse) -> Result<(), ControlError>,
) -> Result<(), ControlError> {
    let io = |source| ControlError::Io {
        path: PathBuf::from(super::SOCKET_FILE),
        source,
    };
    stream.set_write_timeout(Some(REPLY_MARGIN)).map_err(io)?;
    write_message(stream, request).map_err(io)?;
    // A watch waits as long as nothing changes.
    stream.set_read_timeout(None).map_err(io)?;
    loop {
        let message = read_message(stream).map_err(|err| match err.kind() {
            std::io::ErrorKind::InvalidData => ControlError::Malformed(err.to_string()),
            _ => io(err),
        })?;
        match message {
            ControlResponse::Error(message) => return Err(ControlError::Daemon(message)),
            other => each(other)?,
        }
    }
}

/// Sends `request` and waits for the answer: the request's deadline, and a margin.
pub fn ask(
    stream: &mut UnixStream,
    request: &ControlRequest,
) -> Result<ControlResponse, ControlError> {
    let io = |source| ControlError::Io {
        path: PathBuf::from(super::SOCKET_FILE),
        source,
    };
    let within = request.deadline() + REPLY_MARGIN;
    stream.set_read_timeout(Some(within)).map_err(io)?;
    stream.set_write_timeout(Some(within)).map_err(io)?;
    write_message(stream, request).map_err(io)?;
    let response = read_message(stream).map_err(|err| match err.kind() {
        std::io::ErrorKind::InvalidData => ControlError::Malformed(err.to_string()),
        _ => io(err),
    })?;
    match response {
        ControlResponse::Error(message) => Err(ControlError::Daemon(message)),
        other => Ok(other),
    }
}
