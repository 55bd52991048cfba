//! The ApiActor: owns the HTTP API's listener (`ddcp serve --api`) and the task serving it;
//! stopping it (with the tree) closes the listener.

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api::{self, ApiState};
use crate::sync::DbVersion;

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
    /// The database's newest version as the DbActor reports it (the supervisor's).
    pub reported: watch::Receiver<DbVersion>,
}

/// The task serving the listener.
#[derive(Debug)]
pub struct ApiActorState {
    serving: tokio::task::JoinHandle<()>,
    forwarding: tokio::task::JoinHandle<()>,
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
        let state = Arc::new(args.state);
        let serving = tokio::spawn(api::serve(args.listener, Arc::clone(&state)));
        let forwarding = tokio::spawn(forward_versions(args.reported, state));
        Ok(ApiActorState {
            serving,
            forwarding,
        })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<ApiMsg>,
        state: &mut ApiActorState,
    ) -> Result<(), ActorProcessingErr> {
        state.serving.abort();
        state.forwarding.abort();
        Ok(())
    }
}

/// Tells the API's subscriptions of each version the DbActor reports (commits by anyone:
/// pulls, the shell, another process).
async fn forward_versions(mut reported: watch::Receiver<DbVersion>, state: Arc<ApiState>) {
    while reported.changed().await.is_ok() {
        let version = *reported.borrow_and_update();
        state.versions.send_if_modified(|newest| {
            let moved = version > *newest;
            *newest = (*newest).max(version);
            moved
        });
    }
}

/// What `ddcp serve` hands the supervisor for the API: all but the DbActor's handle and the
/// supervisor itself, which the supervisor adds.
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
    /// The routes' state, with the database's handle and the supervisor's.
    pub fn state(
        self,
        db: crate::db_actor::DbHandle,
        supervisor: ractor::DerivedActorRef<super::ControlQuery>,
    ) -> Result<(TcpListener, ApiState), crate::db::DbError> {
        let mut state = ApiState::new(
            db,
            self.token,
            self.db_file,
            self.extension,
            Some(supervisor),
        )?;
        state.app_files = self.app_files;
        Ok((self.listener, state))
    }
}
