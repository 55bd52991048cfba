//! The peers listening for this database's new versions, and the notes they are sent.
//!
//! A puller that serves asks, in each request, to be told (`listen`: its route and a random
//! token). Whenever this database's version moves, each listener gets a note (a one-way Veilid
//! app_message) quoting its token, at once, instead of waiting to hear of it through the DHT
//! (the Status's publish and the watch's notice take most of a write's way to the other peers).
//! A note is only a hint: the listener pulls as it would on seeing the Status, and the DHT stays
//! the way for peers that are not listening.
//!
//! What a listener costs is bounded: at most [`MAX_LISTENERS`], each forgotten
//! [`LISTEN_FOR`] after its last request or after [`FAILED_NOTES`] notes in a row that could
//! not be sent; one note per listener per version at most (versions that come while notes go
//! out are told together). A private database keeps only its members' listens and drops a
//! listener whose member was removed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::access::AccessGate;
use crate::metrics::{self, DbLabel};
use crate::net::{ImportedRoute, Network, RouteId};
use crate::sync::protocol::{Listen, ListenToken, Note};
use crate::sync::{DbVersion, Incarnation, MemberId};

/// Listeners kept at most: a flood of listens from strangers (a public database answers
/// anyone with its key) costs this many notes per version, no more. Past it, new listens are
/// not taken until one expires: those peers hear of changes through the DHT, as before notes.
pub const MAX_LISTENERS: usize = 32;

/// How long a listen lasts after the listener's last request: a listener asks again well
/// before (`serve::remote::LISTEN_RENEW`).
pub const LISTEN_FOR: Duration = Duration::from_secs(10 * 60);

/// Notes in a row that could not be sent before a listener is forgotten (its route died; it
/// listens again with its new one at its next pull).
pub const FAILED_NOTES: u32 = 3;

/// The database's version as notes tell it.
pub type Version = (DbVersion, Incarnation);

struct Listener {
    route_blob: Vec<u8>,
    /// Imported at its first note.
    route: Option<ImportedRoute>,
    /// The member whose request it came in, for a private database.
    member: Option<MemberId>,
    until: Instant,
    failures: u32,
}

/// The listeners; clones share them.
#[derive(Clone, Default)]
pub struct Listeners {
    listeners: Arc<Mutex<HashMap<ListenToken, Listener>>>,
    metrics: DbLabel,
}

impl std::fmt::Debug for Listeners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listeners")
            .field("count", &self.listeners.lock().len())
            .finish()
    }
}

impl Listeners {
    /// None yet, for the database whose metrics are labelled `metrics`.
    pub fn labelled(metrics: DbLabel) -> Listeners {
        Listeners {
            metrics,
            ..Listeners::default()
        }
    }

    /// Takes `listen` from a request this database answered, by `member` for a private
    /// database; false when the listeners are full. A member asking with a new token (it
    /// restarted) replaces its old listen. A public database's listener cannot be told apart
    /// from a stranger who names its route: its old listen stays until it expires, or fails.
    pub fn listen(&self, listen: Listen, member: Option<MemberId>, now: Instant) -> bool {
        let mut listeners = self.listeners.lock();
        listeners.retain(|token, listener| {
            let replaced = *token != listen.token && member.is_some() && listener.member == member;
            !replaced && listener.until > now
        });
        let until = now + LISTEN_FOR;
        let room = listeners.len() < MAX_LISTENERS;
        let taken = match listeners.get_mut(&listen.token) {
            Some(listener) => {
                if listener.route_blob != listen.route {
                    listener.route_blob = listen.route;
                    listener.route = None;
                    listener.failures = 0;
                }
                listener.member = member;
                listener.until = until;
                true
            }
            None if room => {
                listeners.insert(
                    listen.token,
                    Listener {
                        route_blob: listen.route,
                        route: None,
                        member,
                        until,
                        failures: 0,
                    },
                );
                true
            }
            None => false,
        };
        metrics::listeners(&self.metrics, listeners.len());
        taken
    }

    /// How many listen now.
    #[cfg(test)]
    fn count(&self) -> usize {
        self.listeners.lock().len()
    }

    /// The listeners to tell now, their routes imported: expired ones, ones `gate` no longer
    /// admits and ones whose route cannot be imported are dropped.
    fn due(
        &self,
        network: &Network,
        gate: &AccessGate,
        now: Instant,
    ) -> Vec<(ListenToken, RouteId, Option<MemberId>)> {
        let mut listeners = self.listeners.lock();
        listeners.retain(|_, listener| listener.until > now && gate.may_listen(listener.member));
        let mut due = Vec::with_capacity(listeners.len());
        listeners.retain(|token, listener| {
            if listener.route.is_none() {
                match network.import_route(&listener.route_blob) {
                    Ok(route) => listener.route = Some(route),
                    Err(err) => {
                        tracing::debug!(target: "ddcp", error = %err, "A listener's route does not import: forgotten");
                        return false;
                    }
                }
            }
            if let Some(route) = &listener.route {
                due.push((*token, route.id().clone(), listener.member));
            }
            true
        });
        metrics::listeners(&self.metrics, listeners.len());
        due
    }

    /// How the note to `token` went: a listener whose notes fail [`FAILED_NOTES`] times in a
    /// row is forgotten.
    fn noted(&self, token: &ListenToken, sent: bool) {
        metrics::note_sent(&self.metrics, sent);
        let mut listeners = self.listeners.lock();
        let Some(listener) = listeners.get_mut(token) else {
            return;
        };
        if sent {
            listener.failures = 0;
            return;
        }
        listener.failures += 1;
        if listener.failures >= FAILED_NOTES {
            listeners.remove(token);
            metrics::listeners(&self.metrics, listeners.len());
        }
    }
}

/// Sends a note to every listener whenever `versions` moves, until it closes.
pub fn spawn_notifier(
    network: Network,
    listeners: Listeners,
    gate: AccessGate,
    mut versions: watch::Receiver<Option<Version>>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        while versions.changed().await.is_ok() {
            let Some((db_version, incarnation)) = *versions.borrow_and_update() else {
                continue;
            };
            let due = listeners.due(&network, &gate, Instant::now());
            if !due.is_empty() {
                // A write's way to the peers, step by step (benches/network.rs prints them).
                tracing::debug!(target: "ddcp_latency", db_version = db_version.0, listening = due.len(), "sending notes");
            }
            let mut sending = tokio::task::JoinSet::new();
            for (token, route, member) in due {
                let note = Note {
                    token,
                    db_version,
                    incarnation,
                };
                // Sealed for its member by a private database.
                let Some(bytes) = gate.note_for(member, &note) else {
                    continue;
                };
                let network = network.clone();
                sending.spawn(async move { (token, network.message(&route, bytes).await) });
            }
            // All at once: one listener's slow route does not hold up the others' notes.
            while let Some(sent) = sending.join_next().await {
                let Ok((token, sent)) = sent else { continue };
                if let Err(err) = &sent {
                    tracing::debug!(target: "ddcp", error = %err, "Cannot send a note to a listener");
                }
                listeners.noted(&token, sent.is_ok());
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listen(token: u8, route: u8) -> Listen {
        Listen {
            route: vec![route; 100],
            token: ListenToken([token; 16]),
        }
    }

    #[test]
    fn listeners_are_bounded_and_a_listener_asking_again_keeps_its_place() {
        let listeners = Listeners::default();
        let now = Instant::now();
        for n in 0..MAX_LISTENERS as u8 {
            assert!(listeners.listen(listen(n, n), None, now));
        }
        // Full: a stranger is not taken, even naming a listener's route (it cannot push that
        // listener out); a listener asking again is.
        assert!(!listeners.listen(listen(200, 200), None, now));
        assert!(!listeners.listen(listen(201, 4), None, now));
        assert!(listeners.listen(listen(3, 3), None, now));
        assert_eq!(listeners.count(), MAX_LISTENERS);
        assert!(
            listeners
                .listeners
                .lock()
                .contains_key(&ListenToken([4; 16]))
        );
        // Once they expire, a newcomer is taken, and the expired are gone.
        let later = now + LISTEN_FOR + Duration::from_secs(1);
        assert!(listeners.listen(listen(202, 202), None, later));
        assert_eq!(listeners.count(), 1);
    }

    #[test]
    fn a_member_listens_once_and_failing_notes_end_a_listen() {
        let listeners = Listeners::default();
        let now = Instant::now();
        let member = crate::sync::MemberKeys::generate().id();
        assert!(listeners.listen(listen(1, 1), Some(member), now));
        // The same member from another route (it restarted elsewhere): one listen.
        assert!(listeners.listen(listen(2, 2), Some(member), now));
        assert_eq!(listeners.count(), 1);
        let token = ListenToken([2; 16]);
        for _ in 0..FAILED_NOTES - 1 {
            listeners.noted(&token, false);
        }
        // A note that went out starts the count again.
        listeners.noted(&token, true);
        for _ in 0..FAILED_NOTES - 1 {
            listeners.noted(&token, false);
        }
        assert_eq!(listeners.count(), 1);
        listeners.noted(&token, false);
        assert_eq!(listeners.count(), 0);
    }
}
