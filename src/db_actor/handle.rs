//! The typed way to the DbActor: async methods that build its messages, bound the wait for its
//! answer and sort out the reply, so that no caller writes its own `call` and match.

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorCell, ActorRef, DerivedActorRef, RpcReplyPort, SpawnErr};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{DbActor, DbArgs, DbEvent, DbMsg, LocalState};
use crate::db::{
    AcceptOutcome, AcceptPolicy, AccessState, AppStatement, Committed, Db, DbError, Followed,
    MirrorPrefix, OwnerCheck, Remote, RemoteName,
};
use crate::metrics::DbLabel;
use crate::sync::filter::ChangeFilter;
use crate::sync::protocol::ChangesPage;
use crate::sync::schema_fit::SchemaFit;
use crate::sync::schema_history::{HistoryMark, SchemaHistory};
use crate::sync::{Cursor, MemberId, SchemaDesc, SiteId};

/// How long a caller waits for the DbActor before it counts as stuck: longer than the largest
/// page takes to apply on a slow disk.
const DB_CALL_BOUND: Duration = Duration::from_secs(120);

/// Why a call on the DbActor failed.
#[derive(Debug, thiserror::Error)]
pub enum DbCallError {
    /// The database answered with an error.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The DbActor is gone or stuck.
    #[error("the database did not answer (ddcp is shutting down?)")]
    Gone,
}

/// A handle on the DbActor; clones share it.
#[derive(Clone, Debug)]
pub struct DbHandle {
    actor: ActorRef<DbMsg>,
    /// The label of this database's metrics, for whoever works on its behalf.
    metrics: DbLabel,
}

impl DbHandle {
    /// Starts the DbActor of `db`: the one way to, so that no caller builds its arguments or
    /// spawns it by hand. `listener` hears of every change of the database's state (and
    /// commits are only looked for when there is one); a `supervisor` is told when the actor
    /// fails. The join handle ends when it stopped.
    ///
    /// The actor runs on a thread of its own: its SQLite work blocks, and on a thread shared
    /// with other tasks each message would first hand that thread's other work elsewhere
    /// (`block_in_place`), a switch of threads that cost as much as the hop itself
    /// (benches/api.rs).
    pub async fn spawn(
        db: Db,
        listener: Option<DerivedActorRef<DbEvent>>,
        supervisor: Option<ActorCell>,
    ) -> Result<(DbHandle, JoinHandle<()>), SpawnErr> {
        DbHandle::spawn_labelled(db, listener, supervisor, DbLabel::default()).await
    }

    /// [`DbHandle::spawn`], its metrics labelled as the hosted database `metrics` says.
    pub async fn spawn_labelled(
        db: Db,
        listener: Option<DerivedActorRef<DbEvent>>,
        supervisor: Option<ActorCell>,
        metrics: DbLabel,
    ) -> Result<(DbHandle, JoinHandle<()>), SpawnErr> {
        let label = metrics.clone();
        let (started, start) = oneshot::channel();
        let (ended, end) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("ddcp-db".into())
            .spawn(move || {
                // Timers (the looks for commits) and the watch on the WAL.
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(err) => {
                        let _ = started.send(Err(SpawnErr::StartupFailed(err.into())));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let args = DbArgs {
                        db,
                        listener,
                        look_interval: super::CHANGE_CHECK_INTERVAL,
                        metrics: label,
                    };
                    let spawned = match supervisor {
                        Some(supervisor) => {
                            Actor::spawn_linked(None, DbActor, args, supervisor).await
                        }
                        None => Actor::spawn(None, DbActor, args).await,
                    };
                    match spawned {
                        Ok((actor, stopped)) => {
                            let _ = started.send(Ok(actor));
                            let _ = stopped.await;
                        }
                        Err(err) => {
                            let _ = started.send(Err(err));
                        }
                    }
                });
                drop(ended);
            })
            .map_err(|err| SpawnErr::StartupFailed(err.into()))?;
        let actor = start.await.map_err(|_| {
            SpawnErr::StartupFailed("the database's thread ended before its actor started".into())
        })??;
        let stopped = tokio::spawn(async move {
            let _ = end.await;
        });
        Ok((DbHandle { actor, metrics }, stopped))
    }

    /// The label of this database's metrics.
    pub fn metrics(&self) -> &DbLabel {
        &self.metrics
    }

    /// The actor, for supervision.
    pub fn actor(&self) -> &ActorRef<DbMsg> {
        &self.actor
    }

    /// The database's state now.
    pub async fn state(&self) -> Result<LocalState, DbCallError> {
        self.ask(DbMsg::State).await
    }

    /// The database's CRR schema.
    pub async fn schema(&self) -> Result<SchemaDesc, DbCallError> {
        self.ask(DbMsg::Schema).await
    }

    /// Where this database stands in `remote`'s changes.
    pub async fn cursor(&self, remote: SiteId) -> Result<Cursor, DbCallError> {
        self.ask(|reply| DbMsg::Cursor { remote, reply }).await
    }

    /// Forgets where this database stands in `remote`'s changes.
    pub async fn reset_cursor(&self, remote: SiteId) -> Result<(), DbCallError> {
        self.ask(|reply| DbMsg::ResetCursor { remote, reply }).await
    }

    /// Applies what `policy` admits of a page of `remote`'s changes, with its cursor, in one
    /// transaction.
    pub async fn accept(
        &self,
        remote: SiteId,
        page: Box<ChangesPage>,
        policy: &AcceptPolicy,
        fit: &Arc<SchemaFit>,
    ) -> Result<AcceptOutcome, DbCallError> {
        let (policy, fit) = (policy.clone(), Arc::clone(fit));
        self.ask(|reply| DbMsg::Accept {
            remote,
            page,
            policy,
            fit,
            reply,
        })
        .await
    }

    /// How `theirs` (a remote's schema) fits this database's; `into` for a remote pulled into
    /// mirrors.
    pub async fn fit_schema(
        &self,
        theirs: SchemaDesc,
        into: Option<MirrorPrefix>,
    ) -> Result<SchemaFit, DbCallError> {
        let theirs = Box::new(theirs);
        self.ask(|reply| DbMsg::FitSchema {
            theirs,
            into,
            reply,
        })
        .await
    }

    /// Where the schema history `remote` published stood when last seen.
    pub async fn seen_history(
        &self,
        remote: &RemoteName,
    ) -> Result<Option<HistoryMark>, DbCallError> {
        let remote = remote.clone();
        self.ask(|reply| DbMsg::SeenHistory { remote, reply }).await
    }

    /// Takes in the schema history `remote` publishes now, following it when it is followed.
    pub async fn see_history(
        &self,
        remote: &RemoteName,
        history: SchemaHistory,
    ) -> Result<Followed, DbCallError> {
        let (remote, history) = (remote.clone(), Box::new(history));
        self.ask(|reply| DbMsg::SeeHistory {
            remote,
            history,
            reply,
        })
        .await
    }

    /// Runs an app's `statements` in one transaction, through the one writer.
    pub async fn app_transaction(
        &self,
        statements: Vec<AppStatement>,
    ) -> Result<Committed, DbCallError> {
        self.ask(|reply| DbMsg::AppTransaction { statements, reply })
            .await
    }

    /// The remotes table.
    pub async fn remotes(&self) -> Result<Vec<Remote>, DbCallError> {
        self.ask(DbMsg::Remotes).await
    }

    /// A pull of remote `name`, whose Status names site `remote`, starts: the site is noted
    /// (for `ddcp log`), and the cursor in its changes readied for a pull under `policy`:
    /// reset when it moved under another policy (true then).
    pub async fn align_cursor(
        &self,
        name: &RemoteName,
        remote: SiteId,
        policy: &AcceptPolicy,
    ) -> Result<bool, DbCallError> {
        let (name, policy) = (name.clone(), policy.clone());
        self.ask(|reply| DbMsg::AlignCursor {
            name,
            remote,
            policy,
            reply,
        })
        .await
    }

    /// Checks `seen`, the owner the remote `name`'s Status names, against the pinned one (pinned
    /// when none is yet).
    pub async fn check_owner(
        &self,
        name: &RemoteName,
        seen: Option<MemberId>,
    ) -> Result<OwnerCheck, DbCallError> {
        let name = name.clone();
        self.ask(|reply| DbMsg::CheckOwner { name, seen, reply })
            .await
    }

    /// The access mode, key epoch and members.
    pub async fn access_state(&self) -> Result<AccessState, DbCallError> {
        self.ask(DbMsg::AccessState).await
    }

    /// The answer to a peer's request, pages built within `budget` bytes when given and holding
    /// what `filter` lets that peer read, when the database gets to it within `bound`; past
    /// that the asker has given up, and the DbActor skips it.
    pub async fn answer(
        &self,
        request: Vec<u8>,
        budget: Option<u32>,
        filter: Arc<ChangeFilter>,
        bound: Duration,
    ) -> Option<Vec<u8>> {
        match self
            .actor
            .call(
                |reply| DbMsg::Answer {
                    request,
                    budget,
                    filter,
                    reply,
                },
                Some(bound),
            )
            .await
        {
            Ok(ractor::rpc::CallResult::Success(answer)) => Some(answer),
            _ => None,
        }
    }

    async fn ask<T: Send + 'static>(
        &self,
        message: impl FnOnce(RpcReplyPort<Result<T, DbError>>) -> DbMsg,
    ) -> Result<T, DbCallError> {
        match self.actor.call(message, Some(DB_CALL_BOUND)).await {
            Ok(ractor::rpc::CallResult::Success(answer)) => Ok(answer?),
            _ => Err(DbCallError::Gone),
        }
    }
}
