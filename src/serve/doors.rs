//! Which database a peer's call or note is for. One Veilid node serves every database of a
//! `ddcp serve`; each database has private routes of its own (its door), published in its own
//! Status, and a peer reaches a database only through them. A call or note is handed to the
//! database whose route it came in on, and to no other: a call on no route of this node's, or on
//! a route already let go of, is answered by nobody (the asker's call times out, as it would
//! for a node that is gone).

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;
use ractor::ActorRef;

use super::answering::Answerer;
use super::door::DoorMsg;
use super::note_inbox::{NoteInbox, take_note};
use crate::metrics::{self, DbLabel, ShedReason};
use crate::net::{IncomingCall, RouteId};

/// One database's way in: who answers its calls, where its notes go, and the actor keeping
/// its route.
#[derive(Clone, Debug)]
pub struct Door {
    /// Answers the calls that come in on its route.
    pub answerer: Arc<Answerer>,
    /// Takes the notes its remotes send it.
    pub inbox: Arc<NoteInbox>,
    /// Keeps its route: told when Veilid reports it dead.
    pub keeper: ActorRef<DoorMsg>,
}

/// The doors of the databases this node serves, by route; clones share them.
#[derive(Clone, Default)]
pub struct Doors {
    by_route: Arc<RwLock<HashMap<RouteId, Door>>>,
}

impl std::fmt::Debug for Doors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Doors")
            .field("routes", &self.by_route.read().len())
            .finish()
    }
}

impl Doors {
    /// Calls and notes on `route` go to `door` from now on.
    pub fn open(&self, route: RouteId, door: Door) {
        let mut by_route = self.by_route.write();
        by_route.insert(route, door);
        metrics::private_routes(by_route.len());
    }

    /// Nothing more goes in by `route` (it is let go of, or its database stops).
    pub fn close(&self, route: &RouteId) {
        let mut by_route = self.by_route.write();
        by_route.remove(route);
        metrics::private_routes(by_route.len());
    }

    fn door(&self, route: Option<&RouteId>) -> Option<Door> {
        let by_route = self.by_route.read();
        route.and_then(|route| by_route.get(route)).cloned()
    }

    /// Hands `call` to the database it came in for.
    pub async fn take_call(&self, call: IncomingCall) {
        match self.door(call.route.as_ref()) {
            // Not held across the answerer's work: another database's call may come meanwhile.
            Some(door) => door.answerer.take(call).await,
            None => {
                tracing::debug!(target: "ddcp", "A call on no database's route: not answered");
                metrics::shed(&DbLabel::default(), ShedReason::NoSuchRoute);
            }
        }
    }

    /// Hands a note to the database it came in for.
    pub fn take_note(&self, message: &[u8], route: Option<&RouteId>) {
        match self.door(route) {
            Some(door) => take_note(&door.inbox, message),
            None => metrics::shed(&DbLabel::default(), ShedReason::NoSuchRoute),
        }
    }

    /// The actors keeping the routes among `dead`.
    pub fn keepers_of(&self, dead: &[RouteId]) -> Vec<(RouteId, ActorRef<DoorMsg>)> {
        let by_route = self.by_route.read();
        dead.iter()
            .filter_map(|route| {
                let door = by_route.get(route)?;
                Some((route.clone(), door.keeper.clone()))
            })
            .collect()
    }

    /// How many routes are open: each database holds one, and briefly two while it renews.
    pub fn len(&self) -> usize {
        self.by_route.read().len()
    }

    /// No database is served.
    pub fn is_empty(&self) -> bool {
        self.by_route.read().is_empty()
    }
}
