//! How the Supervisor runs the remotes' actors: one per remote, started as the remotes table
//! says, restarted alone with growing backoff when it fails (or cannot even start), stopped
//! when its remote is removed or changed.

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::super::remote::{RemoteActor, RemoteArgs, RemoteMsg};
use super::remotes::SlotId;
use super::{STOP_BOUND, SupervisorMsg, SupervisorState};
use crate::db::RemoteName;
use crate::db_actor::DbCallError;
use crate::metrics;
use crate::pull::RemoteLink;

impl SupervisorState {
    async fn spawn_remote(
        &self,
        link: &RemoteLink,
        myself: &ActorRef<SupervisorMsg>,
    ) -> Result<ActorRef<RemoteMsg>, ActorProcessingErr> {
        let args = RemoteArgs {
            link: link.clone(),
            network: self.network.clone(),
            db: self.db.clone(),
            poll_interval: self.options.poll_interval,
            supervisor: myself.get_derived(),
            me: Arc::clone(&self.me),
            inbox: Arc::clone(&self.inbox),
        };
        let (actor, _) = Actor::spawn_linked(None, RemoteActor, args, myself.get_cell()).await?;
        Ok(actor)
    }

    /// Starts pulling `link`; when its actor cannot start, it waits to restart, alone.
    pub(super) async fn add_remote(&mut self, link: RemoteLink, myself: &ActorRef<SupervisorMsg>) {
        match self.spawn_remote(&link, myself).await {
            Ok(actor) => {
                self.remotes.insert_running(link, actor);
            }
            Err(err) => {
                metrics::restarted(self.db.metrics(), "remote");
                let name = link.name.clone();
                let (id, wait) = self.remotes.insert_failed(link, err.to_string());
                tracing::warn!(target: "ddcp", remote_name = ?name.as_str(), error = %err,
                    restart_in = ?wait, "Cannot start pulling remote");
                myself.send_after(wait, move || SupervisorMsg::RestartRemote(name, id));
            }
        }
    }

    pub(super) async fn restart_remote(
        &mut self,
        name: RemoteName,
        id: SlotId,
        myself: &ActorRef<SupervisorMsg>,
    ) {
        // Removed, replaced or running again since the restart was scheduled: nothing to do.
        let Some(link) = self.remotes.restart_due(&name, id) else {
            return;
        };
        let started = self.spawn_remote(&link, myself).await;
        let Some(slot) = self.remotes.get_mut(&name) else {
            return;
        };
        match started {
            Ok(actor) => slot.child.restarted(actor),
            Err(err) => {
                metrics::restarted(self.db.metrics(), "remote");
                slot.health.failed(err.to_string());
                let wait = slot.child.failed();
                tracing::warn!(target: "ddcp", remote_name = ?name.as_str(), error = %err,
                    restart_in = ?wait, "Cannot restart remote");
                myself.send_after(wait, move || SupervisorMsg::RestartRemote(name, id));
            }
        }
    }

    /// Starts and stops remote actors to match the remotes table.
    pub(super) async fn reload_remotes(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
    ) -> Result<(), DbCallError> {
        let stored = self.db.remotes().await?;
        let gone: Vec<RemoteName> = self
            .remotes
            .iter()
            .filter(|slot| {
                // A remote whose key or accept policy changed starts again with the new one.
                !stored.iter().any(|remote| {
                    remote.name == slot.link.name
                        && remote.key == slot.link.key
                        && remote.accept == slot.link.accept
                })
            })
            .map(|slot| slot.link.name.clone())
            .collect();
        for name in gone {
            if let Some(slot) = self.remotes.remove(&name)
                && let Some(actor) = slot.child.actor
            {
                // Killed, not stopped: a pull in progress is abandoned (see post_stop).
                let _ = actor.kill_and_wait(Some(STOP_BOUND)).await;
                // A killed actor runs no post_stop: its record and watch are let go here.
                let holder = crate::serve::remote::holder_of(actor.get_id());
                self.network.close_record_as(holder, &slot.link.key).await;
            }
            tracing::info!(target: "ddcp", remote_name = ?name.as_str(), "Stopped pulling remote");
        }
        for remote in stored {
            if !self.remotes.contains(&remote.name) {
                tracing::info!(target: "ddcp", remote_name = ?remote.name.as_str(), "Started pulling remote");
                let link = RemoteLink {
                    name: remote.name,
                    key: remote.key,
                    accept: remote.accept,
                };
                self.add_remote(link, myself).await;
            }
        }
        Ok(())
    }
}
