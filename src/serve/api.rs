//! The ApiActor: owns the HTTP API's listener (`ddcp serve --api`) and the task serving it;
//! stopping it (with the tree) closes the listener.

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

/// The listener, bound before the tree starts (so that a busy port is said at once), and what
/// the routes work with.
#[derive(Debug)]
pub struct ApiArgs {
    /// Where the API listens.
    pub listener: TcpListener,
    /// What the routes work with.
    pub state: ApiState,
}

/// The task serving the listener.
#[derive(Debug)]
pub struct ApiActorState {
    serving: tokio::task::JoinHandle<()>,
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
        let serving = tokio::spawn(api::serve(args.listener, Arc::new(args.state)));
        Ok(ApiActorState { serving })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<ApiMsg>,
        state: &mut ApiActorState,
    ) -> Result<(), ActorProcessingErr> {
        state.serving.abort();
        Ok(())
    }
}

/// What the supervisor is handed for the API: all but the app's handle on the database and
/// the supervisor itself, which the supervisor adds.
pub struct ApiSetup {
    /// The bound listener.
    pub listener: TcpListener,
    /// The token requests must carry.
    pub token: api::ApiToken,
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
            listener: self.listener,
            state,
        }
    }
}
