//! The ApiActor: owns the HTTP API's listeners, the state dir's socket (always) and a TCP
//! address (`ddcp serve --api`), and the tasks serving them; stopping it (with the tree)
//! closes them and removes the socket.

use std::path::PathBuf;
use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, DerivedActorRef};
use tokio::net::TcpListener;

use super::ControlQuery;
use crate::api::{self, ApiState};
use crate::app::App;

/// The ApiActor has nothing to be told: its work is the listener's.
#[derive(Debug)]
pub enum ApiMsg {}

/// Serves the HTTP API.
#[derive(Debug)]
pub struct ApiActor;

/// The TCP listener, bound before the tree starts (so that a busy port is said at once), the
/// state dir its socket goes in, and what the routes work with.
#[derive(Debug)]
pub struct ApiArgs {
    /// Where the API listens on TCP, if it does.
    pub tcp: Option<TcpListener>,
    /// Where the socket goes.
    pub state_dir: PathBuf,
    /// What the routes work with.
    pub state: ApiState,
}

/// The tasks serving the listeners, and the socket's path.
#[derive(Debug)]
pub struct ApiActorState {
    serving: Vec<tokio::task::JoinHandle<()>>,
    socket: PathBuf,
}

impl Actor for ApiActor {
    type Msg = ApiMsg;
    type State = ApiActorState;
    type Arguments = ApiArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<ApiMsg>,
        args: ApiArgs,
    ) -> Result<ApiActorState, ActorProcessingErr> {
        let local = api::listen_local(&args.state_dir)?;
        let socket = local.path.clone();
        let state = Arc::new(args.state);
        let mut serving = vec![tokio::spawn(api::serve_local(local, Arc::clone(&state)))];
        if let Some(tcp) = args.tcp {
            serving.push(tokio::spawn(api::serve(tcp, state)));
        }
        Ok(ApiActorState { serving, socket })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<ApiMsg>,
        state: &mut ApiActorState,
    ) -> Result<(), ActorProcessingErr> {
        for task in &state.serving {
            task.abort();
        }
        let _ = std::fs::remove_file(&state.socket);
        Ok(())
    }
}

/// What the supervisor is handed for the API: all but the app's handle on the database and
/// the supervisor itself, which the supervisor adds.
pub struct ApiSetup {
    /// The bound TCP listener, with `--api`.
    pub tcp: Option<TcpListener>,
    /// The token requests over TCP must carry, with `--api`.
    pub token: Option<api::ApiToken>,
    /// Where the API's socket goes.
    pub state_dir: PathBuf,
    /// The database file.
    pub db_file: std::path::PathBuf,
    /// The cr-sqlite build in use.
    pub extension: crate::db::Extension,
    /// An app's static files, served beside the API.
    pub app_files: Option<api::AppFiles>,
}

impl std::fmt::Debug for ApiSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiSetup")
            .field("db_file", &self.db_file)
            .finish_non_exhaustive()
    }
}

impl ApiSetup {
    /// The ApiActor's arguments, with the app's handle and the supervisor's.
    pub fn args(self, app: App, supervisor: DerivedActorRef<ControlQuery>) -> ApiArgs {
        let mut state = ApiState::new(
            app,
            self.token,
            self.db_file,
            self.extension,
            Some(supervisor),
        );
        state.app_files = self.app_files;
        ApiArgs {
            tcp: self.tcp,
            state_dir: self.state_dir,
            state,
        }
    }
}
