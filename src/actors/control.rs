//! The ControlActor: the state dir's control socket (mode 0600, its owner's only), through which
//! `ddcp remote add|remove`, `ddcp pull` and `ddcp status` reach the running actors. Each
//! connection asks one question; the supervisor answers it.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

use super::supervisor::SupervisorMsg;
use crate::control::{
    ControlError, ControlRequest, ControlResponse, decode_request, encode_response, socket_path,
};

/// A pull asked through the socket may take this long.
const PULL_BOUND: Duration = Duration::from_secs(600);
/// Any other question, this long.
const QUESTION_BOUND: Duration = Duration::from_secs(30);
/// The largest question accepted.
const MAX_QUESTION: usize = 64 << 10;

/// The ControlActor has nothing to be told: its work is the socket's.
pub enum ControlMsg {}

/// The ControlActor.
pub struct ControlActor;

/// Its start.
pub struct ControlArgs {
    /// The state dir the socket goes in.
    pub state_dir: PathBuf,
    /// Answers the questions.
    pub supervisor: ActorRef<SupervisorMsg>,
}

/// Its state: the socket, to remove at the end, and the task accepting connections.
pub struct ControlState {
    path: PathBuf,
    accepting: tokio::task::JoinHandle<()>,
}

impl Actor for ControlActor {
    type Msg = ControlMsg;
    type State = ControlState;
    type Arguments = ControlArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<ControlMsg>,
        args: ControlArgs,
    ) -> Result<ControlState, ActorProcessingErr> {
        if crate::control::connect(&args.state_dir)?.is_some() {
            return Err(ControlError::AlreadyServing(args.state_dir).into());
        }
        let path = socket_path(&args.state_dir);
        let listener = UnixListener::bind(&path)?;
        // Owner only, on top of the state dir's 0700; every connection's uid is checked too.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        let owner = std::fs::metadata(&path)?.uid();
        let supervisor = args.supervisor;
        let accepting = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let supervisor = supervisor.clone();
                tokio::spawn(async move {
                    if let Err(err) = answer(stream, owner, &supervisor).await {
                        tracing::debug!(target: "ddcp", error = %err, "Control connection failed");
                    }
                });
            }
        });
        Ok(ControlState { path, accepting })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<ControlMsg>,
        state: &mut ControlState,
    ) -> Result<(), ActorProcessingErr> {
        state.accepting.abort();
        let _ = std::fs::remove_file(&state.path);
        Ok(())
    }
}

/// Answers the one question of a connection.
async fn answer(
    mut stream: UnixStream,
    owner: u32,
    supervisor: &ActorRef<SupervisorMsg>,
) -> std::io::Result<()> {
    let peer = stream.peer_cred()?.uid();
    if peer != owner {
        tracing::warn!(target: "ddcp", uid = peer, "Refused a control connection from another user");
        return Ok(());
    }
    let question = tokio::time::timeout(QUESTION_BOUND, read_frame(&mut stream))
        .await
        .map_err(std::io::Error::other)??;
    let response = match decode_request(&question) {
        Ok(request) => ask_supervisor(supervisor, request).await,
        Err(err) => ControlResponse::Error(err.to_string()),
    };
    let bytes = encode_response(&response);
    stream
        .write_all(&(bytes.len() as u32).to_le_bytes())
        .await?;
    stream.write_all(&bytes).await?;
    stream.flush().await
}

async fn ask_supervisor(
    supervisor: &ActorRef<SupervisorMsg>,
    request: ControlRequest,
) -> ControlResponse {
    let bound = match request {
        ControlRequest::Pull(_) => PULL_BOUND,
        _ => QUESTION_BOUND,
    };
    match supervisor
        .call(|reply| SupervisorMsg::Control(request, reply), Some(bound))
        .await
    {
        Ok(ractor::rpc::CallResult::Success(response)) => response,
        Ok(ractor::rpc::CallResult::Timeout) => {
            ControlResponse::Error(format!("no answer within {bound:?}"))
        }
        _ => ControlResponse::Error("ddcp serve is stopping".into()),
    }
}

async fn read_frame(stream: &mut UnixStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0; 4];
    stream.read_exact(&mut len).await?;
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_QUESTION {
        return Err(std::io::Error::other(format!("a question of {len} bytes")));
    }
    let mut bytes = vec![0; len];
    stream.read_exact(&mut bytes).await?;
    Ok(bytes)
}
