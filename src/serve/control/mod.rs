//! The ControlActor: the state dir's control socket (mode 0600, its owner's only), through which
//! `ddcp remote add|remove`, `ddcp pull` and `ddcp status` reach the running actors. Each
//! connection asks one question, answered here from what the supervisor tells; a pull asks the
//! remotes' actors directly, all at once, within the request's deadline ([`pulls`]). The
//! socket's connections themselves are [`socket`]'s.

mod pulls;
mod socket;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, DerivedActorRef, RpcReplyPort};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;

pub use pulls::{PullTarget, pull_remotes};
pub(super) use socket::{accept_forever, read_question, unreadable, write_answer};

use super::feed_stream::{FeedSource, MAX_WATCHES, stream_changes};
use crate::control::RemoteHealth;
use crate::control::{
    ControlError, ControlRequest, ControlResponse, QUESTION_DEADLINE, socket_path,
};
use crate::db_actor::DbCallError;
use crate::sync::DbVersion;

/// What the ControlActor asks the supervisor, for the CLI.
#[derive(Debug)]
pub enum ControlQuery {
    /// Each remote's health.
    Health(RpcReplyPort<Vec<RemoteHealth>>),
    /// Start and stop remote actors to match the remotes table.
    ReloadRemotes(RpcReplyPort<Result<(), DbCallError>>),
    /// Take the access mode and members from the database.
    ReloadAccess(RpcReplyPort<Result<(), DbCallError>>),
    /// The remotes to pull now: the one named, or every one.
    PullTargets {
        /// The remote asked for; every one when none.
        name: Option<String>,
        /// Gets the remotes.
        reply: RpcReplyPort<Vec<PullTarget>>,
    },
}

/// The ControlActor has nothing to be told: its work is the socket's.
pub enum ControlMsg {}

/// Owns the control socket: removes it when it stops.
pub struct ControlActor;

/// Where the socket goes, and who answers.
pub struct ControlArgs {
    /// The state dir the socket goes in.
    pub state_dir: PathBuf,
    /// Knows the remotes.
    pub supervisor: DerivedActorRef<ControlQuery>,
    /// Where watches read the changes from.
    pub feed: FeedSource,
    /// The database's newest version, as the DbActor reports it: wakes watches.
    pub versions: watch::Receiver<DbVersion>,
}

/// What a connection may need: the supervisor, and what a watch reads.
#[derive(Clone)]
struct Answering {
    owner: u32,
    supervisor: DerivedActorRef<ControlQuery>,
    feed: FeedSource,
    versions: watch::Receiver<DbVersion>,
    watches: Arc<Semaphore>,
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
        let answering = Answering {
            owner: std::fs::metadata(&path)?.uid(),
            supervisor: args.supervisor,
            feed: args.feed,
            versions: args.versions,
            watches: Arc::new(Semaphore::new(MAX_WATCHES)),
        };
        let accepting = tokio::spawn(accept_forever(listener, move |stream| {
            let answering = answering.clone();
            async move {
                if let Err(err) = answer(stream, answering).await {
                    tracing::debug!(target: "ddcp", error = %err, "Control connection failed");
                }
            }
        }));
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

/// Answers the one question of a connection (or streams a watch).
async fn answer(stream: UnixStream, answering: Answering) -> std::io::Result<()> {
    let Some((stream, question)) = read_question(stream, answering.owner).await? else {
        return Ok(());
    };
    let response = match question {
        Ok(ControlRequest::Watch { since, tables }) => {
            match Arc::clone(&answering.watches).try_acquire_owned() {
                Ok(slot) => {
                    stream.set_nonblocking(true)?;
                    let stream = UnixStream::from_std(stream)?;
                    let feed = answering.feed.clone();
                    let versions = answering.versions.clone();
                    let watched = stream_changes(stream, feed, since, tables, versions).await;
                    drop(slot);
                    return watched;
                }
                Err(_) => ControlResponse::Error(format!(
                    "{MAX_WATCHES} watches run already: stop one first"
                )),
            }
        }
        Ok(request) => respond(&answering.supervisor, request).await,
        Err(err) => unreadable(err)?,
    };
    write_answer(stream, response).await
}

/// The answer to `request`, within its deadline.
async fn respond(
    supervisor: &DerivedActorRef<ControlQuery>,
    request: ControlRequest,
) -> ControlResponse {
    let deadline = Instant::now() + request.deadline();
    match request {
        // Streamed by `answer`, never asked here.
        ControlRequest::Watch { .. } => ControlResponse::Error("not a question".into()),
        ControlRequest::HostStatus | ControlRequest::HostAdd(_) | ControlRequest::HostRemove(_) => {
            ControlResponse::Error(
                "this serves one database, not a host's folder: give the folder with --databases"
                    .into(),
            )
        }
        ControlRequest::Health => match ask(supervisor, ControlQuery::Health).await {
            Ok(remotes) => ControlResponse::Health(remotes),
            Err(err) => ControlResponse::Error(err),
        },
        ControlRequest::RemotesChanged => {
            match ask(supervisor, ControlQuery::ReloadRemotes).await {
                Ok(Ok(())) => ControlResponse::Done,
                // Into words at the wire, the one place they leave the daemon.
                Ok(Err(err)) => ControlResponse::Error(err.to_string()),
                Err(err) => ControlResponse::Error(err),
            }
        }
        ControlRequest::AccessChanged => match ask(supervisor, ControlQuery::ReloadAccess).await {
            Ok(Ok(())) => ControlResponse::Done,
            Ok(Err(err)) => ControlResponse::Error(err.to_string()),
            Err(err) => ControlResponse::Error(err),
        },
        ControlRequest::Pull(name) => {
            let within = deadline.saturating_duration_since(Instant::now());
            match pull_remotes(supervisor, name, within).await {
                Ok(outcomes) => ControlResponse::Pulled(outcomes),
                Err(err) => ControlResponse::Error(err),
            }
        }
    }
}

/// Asks the supervisor something quick.
pub(super) async fn ask<T: Send + 'static>(
    supervisor: &DerivedActorRef<ControlQuery>,
    query: impl FnOnce(RpcReplyPort<T>) -> ControlQuery,
) -> Result<T, String> {
    let (reply, answer) = ractor::concurrency::oneshot();
    if supervisor.send_message(query(reply.into())).is_err() {
        return Err("ddcp serve is stopping".into());
    }
    match tokio::time::timeout(QUESTION_DEADLINE, answer).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(_)) => Err("ddcp serve is stopping".into()),
        Err(_) => Err(format!("no answer within {QUESTION_DEADLINE:?}")),
    }
}
