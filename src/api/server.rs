//! The API's listeners: HTTP/1.1 (hyper) on a TCP address, loopback unless the operator says
//! otherwise, and on the state dir's socket for the owner's programs; a bounded number of
//! connections at once on each, each with a deadline for its headers.

use std::net::SocketAddr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use ractor::DerivedActorRef;
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::Semaphore;

use super::app_files::AppFiles;
use super::token::ApiToken;
use crate::app::App;
use crate::db::Extension;
use crate::serve::ControlQuery;

/// Connections served at once; more wait in the listener's backlog. Twice the subscriptions
/// there may be: listeners holding theirs open leave room for requests.
pub const MAX_CONNECTIONS: usize = 2 * crate::app::MAX_SUBSCRIPTIONS;
/// How long a connection may take to send a request's headers.
const HEADER_DEADLINE: Duration = Duration::from_secs(10);
/// The state dir's API socket.
const LOCAL_SOCKET_FILE: &str = "api.sock";

/// What the routes work with.
pub struct ApiState {
    /// The app's way into the database: transactions, queries, subscriptions.
    pub app: App,
    /// What requests over TCP must carry (none: no TCP request is admitted).
    pub token: Option<ApiToken>,
    /// The database file and its cr-sqlite, for `/v1/status`.
    pub db_file: PathBuf,
    /// The cr-sqlite build in use.
    pub extension: Extension,
    /// Knows the remotes' health, when `ddcp serve` runs.
    pub supervisor: Option<DerivedActorRef<ControlQuery>>,
    /// An app's static files, served at `/` beside the API (`--app DIR`).
    pub app_files: Option<AppFiles>,
}

impl ApiState {
    /// The routes' state for `app`, the database at `db_file`; `supervisor` knows the remotes'
    /// health when `ddcp serve` runs.
    pub fn new(
        app: App,
        token: Option<ApiToken>,
        db_file: PathBuf,
        extension: Extension,
        supervisor: Option<DerivedActorRef<ControlQuery>>,
    ) -> ApiState {
        ApiState {
            app,
            token,
            db_file,
            extension,
            supervisor,
            app_files: None,
        }
    }
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState")
            .field("db_file", &self.db_file)
            .finish_non_exhaustive()
    }
}

/// Listens on `address`: said in one line when it cannot.
pub async fn listen(address: SocketAddr) -> Result<TcpListener, String> {
    TcpListener::bind(address)
        .await
        .map_err(|err| format!("the API cannot listen on {address}: {err}"))
}

/// The state dir's API socket: the API for programs of this machine's same user, without TCP
/// or the token (`curl --unix-socket STATE_DIR/api.sock`).
pub fn local_socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join(LOCAL_SOCKET_FILE)
}

/// Listens on the state dir's API socket, owner only (a stale one, left by a serve that was
/// killed, is replaced: the control socket already said no other serve runs here).
pub fn listen_local(state_dir: &Path) -> std::io::Result<LocalListener> {
    let path = local_socket_path(state_dir);
    match std::fs::remove_file(&path) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(err),
        _ => {}
    }
    let listener = UnixListener::bind(&path)?;
    // Owner only, on top of the state dir's 0700; every connection's uid is checked too.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    let owner = std::fs::metadata(&path)?.uid();
    Ok(LocalListener {
        listener,
        owner,
        path,
    })
}

/// The state dir's API socket, and whose it is.
#[derive(Debug)]
pub struct LocalListener {
    listener: UnixListener,
    owner: u32,
    /// Removed when serving stops.
    pub path: PathBuf,
}

/// Serves the API on `listener` until the task is dropped: every request needs the token.
pub async fn serve(listener: TcpListener, state: Arc<ApiState>) {
    let listener = &listener;
    serve_connections(state, Caller::Remote, move || async move {
        let (stream, _) = listener.accept().await?;
        // Answers are small and go at once: Nagle's algorithm would hold one back until the
        // client's delayed ACK (40 ms) on a keep-alive connection.
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!(target: "ddcp", error = %err, "Cannot set TCP_NODELAY");
        }
        Ok(Some(stream))
    })
    .await
}

/// Serves the API on the state dir's socket until the task is dropped: to its owner's
/// programs only, without the token.
pub async fn serve_local(local: LocalListener, state: Arc<ApiState>) {
    let local = &local;
    serve_connections(state, Caller::Local, move || async move {
        let (stream, _) = local.listener.accept().await?;
        match stream.peer_cred() {
            Ok(peer) if peer.uid() == local.owner => Ok(Some(stream)),
            _ => {
                tracing::warn!(target: "ddcp", "Refused an API socket connection from another user");
                Ok(None)
            }
        }
    })
    .await
}

/// Accepts connections with `accept` (which may refuse one: `None`), at most
/// [`MAX_CONNECTIONS`] at once, and serves each in a task of its own. A failed accept is
/// logged and tried again after a pause.
async fn serve_connections<Io, Accepted>(
    state: Arc<ApiState>,
    caller: Caller,
    accept: impl Fn() -> Accepted,
) where
    Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    Accepted: std::future::Future<Output = std::io::Result<Option<Io>>>,
{
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        match accept().await {
            Ok(Some(io)) => {
                tokio::spawn(serve_connection(io, Arc::clone(&state), caller, slot));
            }
            Ok(None) => {}
            Err(err) => {
                tracing::warn!(target: "ddcp", error = %err, "Cannot accept an API connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Who is on the other end of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    /// A TCP client: it must show the token.
    Remote,
    /// A program of the state dir's owner, on its socket: the file's permissions and the
    /// connection's uid admitted it.
    Local,
}

/// Answers the requests of one connection, as HTTP/1.1, until it closes.
async fn serve_connection<Io>(
    io: Io,
    state: Arc<ApiState>,
    caller: Caller,
    slot: tokio::sync::OwnedSemaphorePermit,
) where
    Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request| {
        let state = Arc::clone(&state);
        async move {
            Ok::<_, std::convert::Infallible>(super::routes::answer(state, request, caller).await)
        }
    });
    let served = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_DEADLINE)
        .serve_connection(TokioIo::new(io), service)
        .await;
    if let Err(err) = served {
        tracing::debug!(target: "ddcp", error = %err, "API connection ended");
    }
    drop(slot);
}
