//! The remotes a supervisor runs: one slot per remote, holding its actor, its restart history
//! and its health. Every slot gets an id of its own, so that a restart scheduled for a remote
//! that was removed (and perhaps added again) meanwhile is recognized as stale and dropped:
//! one remote never has two actors pulling it.

use std::collections::BTreeMap;
use std::time::Duration;

use ractor::{ActorCell, ActorId, ActorRef};

use super::health::Health;
use crate::control::RemoteHealth;
use crate::db::RemoteName;
use crate::pull::RemoteLink;
use crate::serve::restart::Restartable;
use crate::sync::RecordKey;

/// Identifies one slot for as long as the supervisor runs: a remote removed and added again
/// gets a new one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotId(u64);

/// One remote, with its actor (generic so that the bookkeeping is tested without a network).
#[derive(Debug)]
pub(super) struct RemoteSlot<M: ractor::Message> {
    pub link: RemoteLink,
    pub id: SlotId,
    pub child: Restartable<M>,
    pub health: Health,
}

/// The remotes, by name.
#[derive(Debug)]
pub(super) struct RemoteSlots<M: ractor::Message> {
    slots: BTreeMap<RemoteName, RemoteSlot<M>>,
    next_id: u64,
}

impl<M: ractor::Message> Default for RemoteSlots<M> {
    fn default() -> Self {
        RemoteSlots {
            slots: BTreeMap::new(),
            next_id: 0,
        }
    }
}

impl<M: ractor::Message> RemoteSlots<M> {
    /// Adds `link` with its running actor.
    pub fn insert_running(&mut self, link: RemoteLink, actor: ActorRef<M>) -> SlotId {
        self.insert(link, Restartable::running(actor), Health::default())
    }

    /// Adds `link` whose actor could not be started, because of `error`; it waits to restart
    /// like a remote whose actor failed. How long it waits, and its slot.
    pub fn insert_failed(&mut self, link: RemoteLink, error: String) -> (SlotId, Duration) {
        let mut child = Restartable::not_started();
        let wait = child.failed();
        let mut health = Health::default();
        health.failed(error);
        (self.insert(link, child, health), wait)
    }

    fn insert(&mut self, link: RemoteLink, child: Restartable<M>, health: Health) -> SlotId {
        let id = SlotId(self.next_id);
        self.next_id += 1;
        let name = link.name.clone();
        let slot = RemoteSlot {
            link,
            id,
            child,
            health,
        };
        self.slots.insert(name, slot);
        id
    }

    /// Takes `name` out; its actor, if running, is the caller's to stop.
    pub fn remove(&mut self, name: &RemoteName) -> Option<RemoteSlot<M>> {
        self.slots.remove(name)
    }

    pub fn get_mut(&mut self, name: &RemoteName) -> Option<&mut RemoteSlot<M>> {
        self.slots.get_mut(name)
    }

    /// The slot of `name`, if `from` is its current actor: a report from an actor that was
    /// replaced (its remote removed and added again with another key) is not this slot's.
    pub fn reported_by(&mut self, name: &RemoteName, from: ActorId) -> Option<&mut RemoteSlot<M>> {
        self.slots.get_mut(name).filter(|slot| {
            slot.child
                .actor
                .as_ref()
                .is_some_and(|a| a.get_id() == from)
        })
    }

    pub fn contains(&self, name: &RemoteName) -> bool {
        self.slots.contains_key(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &RemoteSlot<M>> {
        self.slots.values()
    }

    /// The running actor of the remote whose record is `key` (with or without its secret).
    pub fn actor_for_record(&self, key: &RecordKey) -> Option<&ActorRef<M>> {
        self.slots
            .values()
            .find(|slot| slot.link.key.key() == key.key())
            .and_then(|slot| slot.child.actor.as_ref())
    }

    /// Every running remote actor.
    pub fn running(&self) -> impl Iterator<Item = &ActorRef<M>> {
        self.slots
            .values()
            .filter_map(|slot| slot.child.actor.as_ref())
    }

    /// Records that the actor `cell` failed with `error`, if it is one of the remotes': which
    /// remote and slot, and how long to wait before restarting it.
    pub fn failed(
        &mut self,
        cell: &ActorCell,
        error: String,
    ) -> Option<(RemoteName, SlotId, Duration)> {
        let slot = self.slots.values_mut().find(|slot| slot.child.is(cell))?;
        slot.health.failed(error);
        let wait = slot.child.failed();
        Some((slot.link.name.clone(), slot.id, wait))
    }

    /// The remote to start again for a restart scheduled for slot `id` of `name`: none when
    /// the remote was removed, replaced by a new slot, or runs already.
    pub fn restart_due(&self, name: &RemoteName, id: SlotId) -> Option<RemoteLink> {
        let slot = self.slots.get(name)?;
        (slot.id == id && slot.child.is_waiting()).then(|| slot.link.clone())
    }

    /// Each remote's health, for `ddcp status`.
    pub fn health(&self) -> Vec<RemoteHealth> {
        self.slots
            .values()
            .map(|slot| {
                slot.health.report(
                    slot.link.name.to_string(),
                    slot.link.key.to_string(),
                    slot.child.restarts,
                    slot.child.actor.is_some(),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::restart::tests::idle;

    const KEY: &str = "VLD0:73iT7NuqplS2nab1AH4P7lJYiQROR_k4NyUhag_K4DY";

    fn link(name: &str) -> RemoteLink {
        RemoteLink {
            name: name.parse().unwrap(),
            key: KEY.parse().unwrap(),
            accept: Default::default(),
        }
    }

    #[tokio::test]
    async fn a_restart_scheduled_before_a_remote_was_removed_and_added_again_is_dropped() {
        let mut slots = RemoteSlots::<()>::default();
        let first = idle::<()>().await;
        let old_id = slots.insert_running(link("alice"), first.clone());
        let (name, id, wait) = slots.failed(&first.get_cell(), "boom".into()).unwrap();
        assert_eq!(
            (name.as_str(), id, wait),
            ("alice", old_id, Duration::from_secs(1))
        );
        // Removed and added again while the restart waits.
        slots.remove(&name).unwrap();
        let new_id = slots.insert_running(link("alice"), idle().await);
        assert_ne!(new_id, old_id);
        assert!(
            slots.restart_due(&name, old_id).is_none(),
            "two actors for one remote"
        );
        assert!(
            slots.restart_due(&name, new_id).is_none(),
            "it runs already"
        );
        assert_eq!(slots.running().count(), 1);
        // The old actor's late reports are not the new slot's health.
        assert!(slots.reported_by(&name, first.get_id()).is_none());
        let current = slots.running().next().unwrap().get_id();
        assert!(slots.reported_by(&name, current).is_some());
    }

    #[tokio::test]
    async fn a_failed_remote_restarts_once_and_only_its_own_slot() {
        let mut slots = RemoteSlots::<()>::default();
        let alice = idle::<()>().await;
        let bob = idle::<()>().await;
        slots.insert_running(link("alice"), alice.clone());
        slots.insert_running(link("bob"), bob.clone());
        let (name, id, _) = slots.failed(&alice.get_cell(), "boom".into()).unwrap();
        assert_eq!(slots.running().count(), 1, "bob keeps running");
        assert_eq!(slots.restart_due(&name, id).unwrap().name.as_str(), "alice");
        slots.get_mut(&name).unwrap().child.restarted(idle().await);
        assert!(
            slots.restart_due(&name, id).is_none(),
            "restarted once, not twice"
        );
        // A stranger's failure is none of the remotes'.
        let stranger = idle::<()>().await;
        assert!(slots.failed(&stranger.get_cell(), "x".into()).is_none());
        let health = slots.health();
        assert_eq!(health[0].restarts, 1);
        assert_eq!(health[0].last_error.as_deref(), Some("boom"));
        assert_eq!(health[1].restarts, 0);
    }

    #[tokio::test]
    async fn a_remote_that_could_not_start_waits_for_its_restart_alone() {
        let mut slots = RemoteSlots::<()>::default();
        slots.insert_running(link("bob"), idle().await);
        let (id, wait) = slots.insert_failed(link("alice"), "spawn failed".into());
        assert_eq!(wait, Duration::from_secs(1));
        let alice: RemoteName = "alice".parse().unwrap();
        assert!(slots.restart_due(&alice, id).is_some());
        assert_eq!(slots.running().count(), 1);
        let health = slots.health();
        assert!(!health[0].running);
        assert_eq!(health[0].last_error.as_deref(), Some("spawn failed"));
    }

    #[tokio::test]
    async fn record_changes_reach_the_remote_of_that_record_whatever_its_secret() {
        let mut slots = RemoteSlots::<()>::default();
        let alice = idle::<()>().await;
        slots.insert_running(link("alice"), alice.clone());
        let with_secret: RecordKey = format!("{KEY}:{}", &KEY[5..]).parse().unwrap();
        assert_eq!(
            slots
                .actor_for_record(&with_secret)
                .map(|actor| actor.get_id()),
            Some(alice.get_id())
        );
        let other: RecordKey = format!("VLD0:{}", "A".repeat(43)).parse().unwrap();
        assert!(slots.actor_for_record(&other).is_none());
    }
}
