//! The CLI <-> daemon protocol: typed requests and answers, their capnp form
//! (schema/ddcp.capnp), framing, and the client side of the state dir's control socket. The
//! daemon side is `actors::control`.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use capnp::message::{Builder, ReaderOptions};
use capnp::serialize;

use crate::sync::ddcp_capnp::{control_request, control_response};

/// The socket's file name in the state dir.
const SOCKET_FILE: &str = "control.sock";

/// The largest frame either side accepts: a status of thousands of remotes fits.
const MAX_FRAME: usize = 4 << 20;

/// What the CLI asks a running `ddcp serve`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ControlRequest {
    /// The remotes table changed: start and stop remote actors to match it.
    RemotesChanged,
    /// Pull this remote now (every remote when `None`) and answer when done.
    Pull(Option<String>),
    /// Each remote's health.
    Status,
}

/// How one pull went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PullOutcome {
    /// The remote.
    pub name: String,
    /// Pages accepted.
    pub pages: u64,
    /// Changes received.
    pub changes: u64,
    /// The remote's db_version when it last answered.
    pub remote_version: i64,
    /// Whether this database changed.
    pub applied: bool,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// One remote as the daemon sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteHealth {
    /// Its name.
    pub name: String,
    /// Its record key.
    pub key: String,
    /// The remote's db_version when last pulled.
    pub pulled_version: Option<i64>,
    /// The remote's db_version as last seen in its Status.
    pub remote_version: Option<i64>,
    /// Unix seconds of the last successful pull.
    pub last_success: Option<i64>,
    /// The last failure since that success.
    pub last_error: Option<String>,
    /// How often its actor was restarted.
    pub restarts: u32,
    /// False while it waits to restart.
    pub running: bool,
}

impl RemoteHealth {
    /// Versions of the remote not pulled yet, when both ends are known.
    pub fn lag(&self) -> Option<i64> {
        Some((self.remote_version? - self.pulled_version.unwrap_or(0)).max(0))
    }
}

/// The daemon's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ControlResponse {
    /// Done, nothing to report.
    Done,
    /// The pulls asked for.
    Pulled(Vec<PullOutcome>),
    /// Each remote's health.
    Status(Vec<RemoteHealth>),
    /// The request failed.
    Error(String),
}

/// What goes wrong between the CLI and the daemon.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // each #[error] says what the variant means
pub enum ControlError {
    #[error("control socket {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the running ddcp serve sent a malformed answer: {0}")]
    Malformed(String),
    #[error("the running ddcp serve: {0}")]
    Daemon(String),
    #[error("another ddcp serve already runs for {0}")]
    AlreadyServing(PathBuf),
}

/// Where the control socket of `state_dir` lives.
pub fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join(SOCKET_FILE)
}

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

/// Sends `request` and waits at most `within` for the answer.
pub fn ask(
    stream: &mut UnixStream,
    request: &ControlRequest,
    within: Duration,
) -> Result<ControlResponse, ControlError> {
    let io = |source| ControlError::Io {
        path: PathBuf::from(SOCKET_FILE),
        source,
    };
    stream.set_read_timeout(Some(within)).map_err(io)?;
    stream.set_write_timeout(Some(within)).map_err(io)?;
    write_frame(stream, &encode_request(request)).map_err(io)?;
    let frame = read_frame(stream).map_err(io)?;
    let response = decode_response(&frame)?;
    match response {
        ControlResponse::Error(message) => Err(ControlError::Daemon(message)),
        other => Ok(other),
    }
}

/// Writes one length-framed message.
pub fn write_frame(out: &mut impl Write, bytes: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(bytes.len()).map_err(std::io::Error::other)?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(bytes)?;
    out.flush()
}

/// Reads one length-framed message.
pub fn read_frame(input: &mut impl Read) -> std::io::Result<Vec<u8>> {
    let mut len = [0; 4];
    input.read_exact(&mut len)?;
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(std::io::Error::other(format!("frame of {len} bytes")));
    }
    let mut bytes = vec![0; len];
    input.read_exact(&mut bytes)?;
    Ok(bytes)
}

fn to_bytes(message: &Builder<capnp::message::HeapAllocator>) -> Vec<u8> {
    serialize::write_message_to_words(message)
}

fn malformed(err: impl std::fmt::Display) -> ControlError {
    ControlError::Malformed(err.to_string())
}

fn text(reader: capnp::Result<capnp::text::Reader<'_>>) -> Result<String, ControlError> {
    reader.map_err(malformed)?.to_string().map_err(malformed)
}

fn optional(value: String) -> Option<String> {
    (!value.is_empty()).then_some(value)
}

/// The request's bytes.
pub fn encode_request(request: &ControlRequest) -> Vec<u8> {
    let mut message = Builder::new_default();
    let mut root = message.init_root::<control_request::Builder>();
    match request {
        ControlRequest::RemotesChanged => root.set_remotes_changed(()),
        ControlRequest::Pull(name) => root.set_pull(name.as_deref().unwrap_or("")),
        ControlRequest::Status => root.set_status(()),
    }
    to_bytes(&message)
}

/// A request from its bytes.
pub fn decode_request(bytes: &[u8]) -> Result<ControlRequest, ControlError> {
    let reader = serialize::read_message_from_flat_slice(&mut &bytes[..], ReaderOptions::new())
        .map_err(malformed)?;
    let root = reader
        .get_root::<control_request::Reader>()
        .map_err(malformed)?;
    Ok(match root.which().map_err(malformed)? {
        control_request::RemotesChanged(()) => ControlRequest::RemotesChanged,
        control_request::Pull(name) => ControlRequest::Pull(optional(text(name)?)),
        control_request::Status(()) => ControlRequest::Status,
    })
}

/// The answer's bytes.
pub fn encode_response(response: &ControlResponse) -> Vec<u8> {
    let mut message = Builder::new_default();
    let mut root = message.init_root::<control_response::Builder>();
    match response {
        ControlResponse::Done => root.set_done(()),
        ControlResponse::Pulled(outcomes) => {
            let mut list = root.reborrow().init_pulled(outcomes.len() as u32);
            for (index, outcome) in outcomes.iter().enumerate() {
                let mut item = list.reborrow().get(index as u32);
                item.set_name(&outcome.name);
                item.set_pages(outcome.pages);
                item.set_changes(outcome.changes);
                item.set_remote_version(outcome.remote_version);
                item.set_applied(outcome.applied);
                item.set_error(outcome.error.as_deref().unwrap_or(""));
            }
        }
        ControlResponse::Status(remotes) => {
            let mut list = root.reborrow().init_status(remotes.len() as u32);
            for (index, remote) in remotes.iter().enumerate() {
                let mut item = list.reborrow().get(index as u32);
                item.set_name(&remote.name);
                item.set_key(&remote.key);
                item.set_pulled_version(remote.pulled_version.unwrap_or(-1));
                item.set_remote_version(remote.remote_version.unwrap_or(-1));
                item.set_last_success(remote.last_success.unwrap_or(0));
                item.set_last_error(remote.last_error.as_deref().unwrap_or(""));
                item.set_restarts(remote.restarts);
                item.set_running(remote.running);
            }
        }
        ControlResponse::Error(text) => root.set_error(text),
    }
    to_bytes(&message)
}

/// An answer from its bytes.
pub fn decode_response(bytes: &[u8]) -> Result<ControlResponse, ControlError> {
    let reader = serialize::read_message_from_flat_slice(&mut &bytes[..], ReaderOptions::new())
        .map_err(malformed)?;
    let root = reader
        .get_root::<control_response::Reader>()
        .map_err(malformed)?;
    let known = |value: i64| (value >= 0).then_some(value);
    Ok(match root.which().map_err(malformed)? {
        control_response::Done(()) => ControlResponse::Done,
        control_response::Pulled(list) => {
            let mut outcomes = Vec::new();
            for item in list.map_err(malformed)? {
                outcomes.push(PullOutcome {
                    name: text(item.get_name())?,
                    pages: item.get_pages(),
                    changes: item.get_changes(),
                    remote_version: item.get_remote_version(),
                    applied: item.get_applied(),
                    error: optional(text(item.get_error())?),
                });
            }
            ControlResponse::Pulled(outcomes)
        }
        control_response::Status(list) => {
            let mut remotes = Vec::new();
            for item in list.map_err(malformed)? {
                remotes.push(RemoteHealth {
                    name: text(item.get_name())?,
                    key: text(item.get_key())?,
                    pulled_version: known(item.get_pulled_version()),
                    remote_version: known(item.get_remote_version()),
                    last_success: (item.get_last_success() > 0).then_some(item.get_last_success()),
                    last_error: optional(text(item.get_last_error())?),
                    restarts: item.get_restarts(),
                    running: item.get_running(),
                });
            }
            ControlResponse::Status(remotes)
        }
        control_response::Error(message) => ControlResponse::Error(text(message)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_answers_survive_the_wire() {
        for request in [
            ControlRequest::RemotesChanged,
            ControlRequest::Pull(None),
            ControlRequest::Pull(Some("alice".into())),
            ControlRequest::Status,
        ] {
            assert_eq!(decode_request(&encode_request(&request)).unwrap(), request);
        }
        let health = RemoteHealth {
            name: "alice".into(),
            key: "VLD0:abc".into(),
            pulled_version: Some(3),
            remote_version: Some(7),
            last_success: Some(1_700_000_000),
            last_error: Some("timeout".into()),
            restarts: 2,
            running: true,
        };
        let outcome = PullOutcome {
            name: "bob".into(),
            pages: 2,
            changes: 40,
            remote_version: 9,
            applied: true,
            error: None,
        };
        for response in [
            ControlResponse::Done,
            ControlResponse::Pulled(vec![outcome]),
            ControlResponse::Status(vec![health.clone()]),
            ControlResponse::Error("no remote named \"x\"".into()),
        ] {
            assert_eq!(
                decode_response(&encode_response(&response)).unwrap(),
                response
            );
        }
        assert_eq!(health.lag(), Some(4));
        assert!(decode_request(b"garbage!").is_err());
    }
}
