//! The API's listener: HTTP/1.1 (hyper) on a TCP address, loopback unless the operator says
//! otherwise, a bounded number of connections at once, each with a deadline for its headers.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use ractor::DerivedActorRef;
use tokio::net::TcpListener;
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

/// What the routes work with.
pub struct ApiState {
    /// The app's way into the database: transactions, queries, subscriptions.
    pub app: App,
    /// What requests must carry.
    pub token: ApiToken,
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
        token: ApiToken,
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

/// Serves the API on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, state: Arc<ApiState>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(err) => {
                tracing::warn!(target: "ddcp", error = %err, "Cannot accept an API connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Answers are small and go at once: Nagle's algorithm would hold one back until the
        // client's delayed ACK (40 ms) on a keep-alive connection.
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!(target: "ddcp", error = %err, "Cannot set TCP_NODELAY");
        }
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let state = Arc::clone(&state);
                async move {
                    Ok::<_, std::convert::Infallible>(super::routes::answer(state, request).await)
                }
            });
            let served = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_DEADLINE)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(err) = served {
                tracing::debug!(target: "ddcp", error = %err, "API connection ended");
            }
            drop(slot);
        });
    }
}
