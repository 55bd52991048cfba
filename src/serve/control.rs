//! The ControlActor: the state dir's control socket (mode 0600, its owner's only), through which
//! `ddcp remote add|remove`, `ddcp pull` and `ddcp status` reach the running actors. Each
//! connection asks one question, answered here from what the supervisor tells; a pull asks the
//! remotes' actors directly, all at once, within the request's deadline.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, DerivedActorRef, RpcReplyPort};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::feed_stream::{FeedSource, MAX_WATCHES, stream_changes};
use super::remote::RemoteMsg;
use crate::backoff::Backoff;
use crate::control::RemoteHealth;
use crate::control::frame::{read_message, write_message};
use crate::control::{
    ControlError, ControlRequest, ControlResponse, PullOutcome, QUESTION_DEADLINE, socket_path,
};
use crate::db_actor::DbCallError;
use crate::sync::DbVersion;

/// Connections answered at once; more wait in the socket's backlog.
const MAX_CONNECTIONS: usize = 16;
/// After a failed accept (out of file descriptors, say), the loop waits 0.1 s, twice as long
/// after each further failure, up to 5 s.
const ACCEPT_BACKOFF: Backoff =
    Backoff::doubling(Duration::from_millis(100), Duration::from_secs(5));

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

/// Where connections come from: the socket, or a test's stand-in.
pub(super) trait Acceptor: Send + 'static {
    fn accept(&self) -> impl Future<Output = std::io::Result<UnixStream>> + Send;
}

impl Acceptor for UnixListener {
    async fn accept(&self) -> std::io::Result<UnixStream> {
        UnixListener::accept(self).await.map(|(stream, _)| stream)
    }
}

/// Accepts connections until the actor stops, handing each to `serve` (at most
/// [`MAX_CONNECTIONS`] at once). A failed accept is logged and tried again after a pause: the
/// socket must not go deaf while serve runs on.
pub(super) async fn accept_forever<F, Fut>(acceptor: impl Acceptor, serve: F)
where
    F: Fn(UnixStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut backoff = ACCEPT_BACKOFF;
    loop {
        let slot = match Arc::clone(&slots).acquire_owned().await {
            Ok(slot) => slot,
            Err(_) => return,
        };
        match acceptor.accept().await {
            Ok(stream) => {
                backoff.reset();
                let connection = serve(stream);
                tokio::spawn(async move {
                    connection.await;
                    drop(slot);
                });
            }
            Err(err) => {
                let pause = backoff.failed();
                tracing::warn!(target: "ddcp", error = %err, retry_in = ?pause,
                    "Cannot accept a control connection");
                tokio::time::sleep(pause).await;
            }
        }
    }
}

/// A connection's one question, read by the same code as the CLI's, on a blocking thread; none
/// when the connection is another user's (dropped, logged).
pub(super) async fn read_question(
    stream: UnixStream,
    owner: u32,
) -> std::io::Result<Option<(StdUnixStream, std::io::Result<ControlRequest>)>> {
    let peer = stream.peer_cred()?.uid();
    if peer != owner {
        tracing::warn!(target: "ddcp", uid = peer, "Refused a control connection from another user");
        return Ok(None);
    }
    let mut stream = stream.into_std()?;
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(QUESTION_DEADLINE))?;
    let read = tokio::task::spawn_blocking(move || {
        let question = read_message::<ControlRequest>(&mut stream);
        (stream, question)
    });
    Ok(Some(read.await?))
}

/// Writes the answer to a connection's question, on a blocking thread.
pub(super) async fn write_answer(
    mut stream: StdUnixStream,
    response: ControlResponse,
) -> std::io::Result<()> {
    stream.set_write_timeout(Some(QUESTION_DEADLINE))?;
    tokio::task::spawn_blocking(move || write_message(&mut stream, &response)).await?
}

/// What a question that could not be read is answered, if anything.
pub(super) fn unreadable(err: std::io::Error) -> std::io::Result<ControlResponse> {
    if err.kind() == std::io::ErrorKind::InvalidData {
        Ok(ControlResponse::Error(format!("malformed request: {err}")))
    } else {
        Err(err)
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

/// Has the remote named `name` (every one when none) pull now, each for `within` at most; how
/// each went, by name.
pub async fn pull_remotes(
    supervisor: &DerivedActorRef<ControlQuery>,
    name: Option<String>,
    within: Duration,
) -> Result<Vec<PullOutcome>, String> {
    let deadline = Instant::now() + within;
    let asked = name.clone();
    let query = |reply| ControlQuery::PullTargets { name: asked, reply };
    let targets = ask(supervisor, query).await?;
    if let (Some(name), true) = (&name, targets.is_empty()) {
        return Err(format!("no remote named {name:?}"));
    }
    Ok(pull_all(targets, deadline).await)
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
        Ok(ractor::rpc::CallResult::Success(Ok(report))) => report.outcome(target.name.clone()),
        Ok(ractor::rpc::CallResult::Success(Err(error))) => failed(error),
        Ok(ractor::rpc::CallResult::Timeout) => failed(format!(
            "not done within {}s; the pull goes on in the background",
            within.as_secs()
        )),
        _ => failed("the remote's actor stopped".into()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Fails its first `failures` accepts, then hands out one end of a socket pair per accept.
    struct Flaky {
        failures: Mutex<u32>,
        accepted: Mutex<Vec<std::os::unix::net::UnixStream>>,
    }

    impl Acceptor for Arc<Flaky> {
        async fn accept(&self) -> std::io::Result<UnixStream> {
            let fail = {
                let mut failures = self.failures.lock().unwrap();
                let fail = *failures > 0;
                *failures = failures.saturating_sub(1);
                fail
            };
            if fail {
                return Err(std::io::Error::other("too many open files"));
            }
            if !self.accepted.lock().unwrap().is_empty() {
                // One connection is enough; later accepts wait forever, as a quiet socket does.
                std::future::pending::<()>().await;
            }
            let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
            self.accepted.lock().unwrap().push(theirs);
            ours.set_nonblocking(true)?;
            UnixStream::from_std(ours)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn failed_accepts_are_waited_out_and_the_next_connection_is_served() {
        let flaky = Arc::new(Flaky {
            failures: Mutex::new(5),
            accepted: Mutex::new(Vec::new()),
        });
        let (served, mut connections) = tokio::sync::mpsc::unbounded_channel();
        let accepting = tokio::spawn(accept_forever(Arc::clone(&flaky), move |stream| {
            let served = served.clone();
            async move {
                let _ = served.send(stream);
            }
        }));
        let started = Instant::now();
        let connection = tokio::time::timeout(Duration::from_secs(60), connections.recv())
            .await
            .expect("the loop stopped accepting");
        assert!(connection.is_some());
        assert_eq!(*flaky.failures.lock().unwrap(), 0);
        // It paused after each failure, growing: 0.1 + 0.2 + 0.4 + 0.8 + 1.6 s (paused clock).
        assert!(
            started.elapsed() >= Duration::from_millis(3100),
            "{:?}",
            started.elapsed()
        );
        accepting.abort();
    }

    /// When each stuck remote was asked to pull.
    type Asked = Arc<Mutex<Vec<Instant>>>;

    /// A remote actor that takes pulls, notes when, and never finishes them.
    struct Stuck;

    impl Actor for Stuck {
        type Msg = RemoteMsg;
        type State = (Asked, Vec<RemoteMsg>);
        type Arguments = Asked;

        async fn pre_start(
            &self,
            _myself: ActorRef<RemoteMsg>,
            asked: Asked,
        ) -> Result<Self::State, ActorProcessingErr> {
            Ok((asked, Vec::new()))
        }

        async fn handle(
            &self,
            _myself: ActorRef<RemoteMsg>,
            message: RemoteMsg,
            (asked, held): &mut Self::State,
        ) -> Result<(), ActorProcessingErr> {
            asked.lock().unwrap().push(Instant::now());
            held.push(message);
            Ok(())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn remotes_are_pulled_at_once_and_all_answered_by_the_one_deadline() {
        let asked = Asked::default();
        let mut targets = Vec::new();
        for name in ["b", "a"] {
            let (actor, _) = Actor::spawn(None, Stuck, Arc::clone(&asked)).await.unwrap();
            targets.push(PullTarget {
                name: name.into(),
                actor: Some(actor),
                last_error: None,
            });
        }
        targets.push(PullTarget {
            name: "c".into(),
            actor: None,
            last_error: Some("unreachable".into()),
        });
        let started = Instant::now();
        let deadline = started + crate::control::PULL_DEADLINE;
        let outcomes = pull_all(targets, deadline).await;
        // Both were asked at once (one after another, the second would be asked only when the
        // first gave up), and all is answered by the one deadline. The clock is tokio's paused
        // one: these are counts of deadlines, not timings.
        let asked = asked.lock().unwrap().clone();
        assert_eq!(asked.len(), 2);
        for at in asked {
            assert!(
                at.duration_since(started) < Duration::from_secs(1),
                "{at:?}"
            );
        }
        let took = started.elapsed();
        assert!(took >= crate::control::PULL_DEADLINE, "{took:?}");
        assert!(took < crate::control::PULL_DEADLINE * 2, "{took:?}");
        let names: Vec<&str> = outcomes.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        for outcome in &outcomes[..2] {
            assert!(
                outcome
                    .error
                    .as_deref()
                    .unwrap()
                    .starts_with("not done within")
            );
        }
        assert_eq!(
            outcomes[2].error.as_deref(),
            Some("waiting to restart after a failure: unreachable")
        );
        // The CLI waits longer than the daemon works: the daemon's answer arrives first.
        let request = ControlRequest::Pull(None);
        assert!(request.deadline() + crate::control::REPLY_MARGIN > crate::control::PULL_DEADLINE);
    }
}
