//! The ControlActor: the state dir's control socket (mode 0600, its owner's only), through which
//! `ddcp remote add|remove`, `ddcp pull` and `ddcp status` reach the running actors. Each
//! connection asks one question, answered here from what the supervisor tells; a pull asks the
//! remotes' actors directly, all at once, within the request's deadline.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::remote::RemoteMsg;
use super::supervisor::SupervisorMsg;
use crate::control::frame::{read_message, write_message};
use crate::control::{
    ControlError, ControlRequest, ControlResponse, PullOutcome, QUESTION_DEADLINE, socket_path,
};

/// Connections answered at once; more wait in the socket's backlog.
const MAX_CONNECTIONS: usize = 16;
/// After a failed accept (out of file descriptors, say), the loop waits this long ...
const FIRST_ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// ... twice as long after each further failure, up to this.
const MAX_ACCEPT_PAUSE: Duration = Duration::from_secs(5);

/// The ControlActor has nothing to be told: its work is the socket's.
pub enum ControlMsg {}

/// The ControlActor.
pub struct ControlActor;

/// Its start.
pub struct ControlArgs {
    /// The state dir the socket goes in.
    pub state_dir: PathBuf,
    /// Knows the remotes.
    pub supervisor: ActorRef<SupervisorMsg>,
}

/// Its state: the socket, to remove at the end, and the task accepting connections.
pub struct ControlState {
    path: PathBuf,
    accepting: tokio::task::JoinHandle<()>,
}

/// A remote to pull for `ddcp pull`: its actor when it runs, its last failure when not.
#[derive(Debug)]
pub struct PullTarget {
    /// The remote's name.
    pub name: String,
    /// Its actor; none while it waits to restart.
    pub actor: Option<ActorRef<RemoteMsg>>,
    /// Its last failure since its last success.
    pub last_error: Option<String>,
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
        let accepting = tokio::spawn(accept(listener, owner, args.supervisor));
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

/// Accepts connections until the actor stops. A failed accept is logged and tried again after
/// a pause: the socket must not go deaf while serve runs on.
async fn accept(listener: UnixListener, owner: u32, supervisor: ActorRef<SupervisorMsg>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut pause = FIRST_ACCEPT_PAUSE;
    loop {
        let slot = match Arc::clone(&slots).acquire_owned().await {
            Ok(slot) => slot,
            Err(_) => return,
        };
        match listener.accept().await {
            Ok((stream, _)) => {
                pause = FIRST_ACCEPT_PAUSE;
                let supervisor = supervisor.clone();
                tokio::spawn(async move {
                    if let Err(err) = answer(stream, owner, &supervisor).await {
                        tracing::debug!(target: "ddcp", error = %err, "Control connection failed");
                    }
                    drop(slot);
                });
            }
            Err(err) => {
                tracing::warn!(target: "ddcp", error = %err, retry_in = ?pause,
                    "Cannot accept a control connection");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_ACCEPT_PAUSE);
            }
        }
    }
}

/// Answers the one question of a connection. The frames are read and written by the same code
/// as the CLI's, on a blocking thread.
async fn answer(
    stream: UnixStream,
    owner: u32,
    supervisor: &ActorRef<SupervisorMsg>,
) -> std::io::Result<()> {
    let peer = stream.peer_cred()?.uid();
    if peer != owner {
        tracing::warn!(target: "ddcp", uid = peer, "Refused a control connection from another user");
        return Ok(());
    }
    let mut stream = stream.into_std()?;
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(QUESTION_DEADLINE))?;
    let (mut stream, question) = tokio::task::spawn_blocking(move || {
        let question = read_message::<ControlRequest>(&mut stream);
        (stream, question)
    })
    .await?;
    let response = match question {
        Ok(request) => respond(supervisor, request).await,
        Err(err) if err.kind() == std::io::ErrorKind::InvalidData => {
            ControlResponse::Error(format!("malformed request: {err}"))
        }
        Err(err) => return Err(err),
    };
    stream.set_write_timeout(Some(QUESTION_DEADLINE))?;
    tokio::task::spawn_blocking(move || write_message(&mut stream, &response)).await?
}

/// The answer to `request`, within its deadline.
async fn respond(supervisor: &ActorRef<SupervisorMsg>, request: ControlRequest) -> ControlResponse {
    let deadline = Instant::now() + request.deadline();
    match request {
        ControlRequest::Status => match ask(supervisor, SupervisorMsg::Health).await {
            Ok(remotes) => ControlResponse::Status(remotes),
            Err(err) => ControlResponse::Error(err),
        },
        ControlRequest::RemotesChanged => match ask(supervisor, SupervisorMsg::ReloadRemotes).await
        {
            Ok(Ok(())) => ControlResponse::Done,
            Ok(Err(err)) | Err(err) => ControlResponse::Error(err),
        },
        ControlRequest::Pull(name) => {
            let asked = name.clone();
            let targets =
                match ask(supervisor, |reply| SupervisorMsg::PullTargets(asked, reply)).await {
                    Ok(targets) => targets,
                    Err(err) => return ControlResponse::Error(err),
                };
            if let (Some(name), true) = (&name, targets.is_empty()) {
                return ControlResponse::Error(format!("no remote named {name:?}"));
            }
            ControlResponse::Pulled(pull_all(targets, deadline).await)
        }
    }
}

/// Asks the supervisor something quick.
async fn ask<T: Send + 'static>(
    supervisor: &ActorRef<SupervisorMsg>,
    message: impl FnOnce(RpcReplyPort<T>) -> SupervisorMsg,
) -> Result<T, String> {
    match supervisor.call(message, Some(QUESTION_DEADLINE)).await {
        Ok(ractor::rpc::CallResult::Success(answer)) => Ok(answer),
        Ok(ractor::rpc::CallResult::Timeout) => {
            Err(format!("no answer within {QUESTION_DEADLINE:?}"))
        }
        _ => Err("ddcp serve is stopping".into()),
    }
}

/// Pulls every target at once, each until `deadline`; the outcomes by name.
async fn pull_all(targets: Vec<PullTarget>, deadline: Instant) -> Vec<PullOutcome> {
    let mut pulls = JoinSet::new();
    for target in targets {
        pulls.spawn(pull_now(target, deadline));
    }
    let mut outcomes = pulls.join_all().await;
    outcomes.sort_by(|a, b| a.name.cmp(&b.name));
    outcomes
}

/// Has `target`'s actor pull now, until `deadline` at most; how it went.
async fn pull_now(target: PullTarget, deadline: Instant) -> PullOutcome {
    let failed = |error: String| PullOutcome {
        name: target.name.clone(),
        error: Some(error),
        ..PullOutcome::default()
    };
    let Some(actor) = &target.actor else {
        let why = target
            .last_error
            .clone()
            .unwrap_or_else(|| "it failed".into());
        return failed(format!("waiting to restart after a failure: {why}"));
    };
    let within = deadline.saturating_duration_since(Instant::now());
    match actor.call(RemoteMsg::PullNow, Some(within)).await {
        Ok(ractor::rpc::CallResult::Success(Ok(report))) => PullOutcome {
            name: target.name.clone(),
            pages: report.pages,
            changes: report.changes,
            remote_version: report.remote_version.0,
            applied: report.applied,
            error: None,
        },
        Ok(ractor::rpc::CallResult::Success(Err(error))) => failed(error),
        Ok(ractor::rpc::CallResult::Timeout) => failed(format!(
            "not done within {:?}; the pull goes on in the background",
            crate::control::PULL_DEADLINE
        )),
        _ => failed("the remote's actor stopped".into()),
    }
}
