//! The calls ddcp makes on a running node: private routes and app calls, DHT records. A
//! [`Network`] is a cheap handle; clones share the node, so every remote can call at once.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};
use std::time::Duration;

use veilid_core::{KeyPair, RoutingContext, Target, VeilidAPI, VeilidAPIError};

use super::NetError;
use super::events::CallId;
use super::identity::RecordIdentity;
use super::record_holds::{RecordHolder, RecordHolds, Veilid};
use super::released::ReleasedRoutes;
use crate::sync::RecordKey;
use crate::sync::protocol::MAX_MESSAGE_BYTES;

/// The subkey holding a database's Status.
const STATUS_SUBKEY: u32 = 0;

/// An app call gets this long before ddcp gives up on it (Veilid's own RPC timeout is 5 s;
/// this only bounds a call that Veilid itself never ends).
const CALL_BOUND: Duration = Duration::from_secs(15);

/// A one-way message (a note) gets this long to go out: the notes of one version all go out
/// before the next version's, so a listener whose route hangs holds up the others this long at
/// most.
const MESSAGE_BOUND: Duration = Duration::from_secs(2);

/// A DHT operation (open, get, set, watch) gets this long: a peer that is down makes Veilid
/// search for a while.
pub(super) const DHT_BOUND: Duration = Duration::from_secs(30);

/// A private route's id: this node's own, or a peer's imported one.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RouteId(pub(super) veilid_core::RouteId);

/// A private route this node made: peers call it through `blob`.
#[derive(Clone, Debug)]
pub struct OwnRoute {
    /// Its id, to recognize it in [`super::NetEvent::RoutesDied`].
    pub id: RouteId,
    /// What peers import to call it; published in the Status.
    pub blob: Vec<u8>,
}

/// A peer's route, imported to call it; released when dropped.
pub struct ImportedRoute {
    network: Network,
    id: RouteId,
}

impl ImportedRoute {
    /// What [`Network::call`] takes.
    pub fn id(&self) -> &RouteId {
        &self.id
    }
}

/// Veilid gives one id to a route imported twice (a pull of a peer and a note to the same
/// peer), and releasing it releases it for every holder: the route is released when its last
/// holder drops it.
impl Drop for ImportedRoute {
    fn drop(&mut self) {
        self.network.let_go(&self.id);
    }
}

impl std::fmt::Debug for ImportedRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ImportedRoute").field(&self.id).finish()
    }
}

/// What [`Network::rewrite`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rewrite {
    /// The unchanged Status went out again.
    Written,
    /// The record holds a value this node did not write: nothing was written over it.
    Superseded,
}

/// A handle on a running node.
#[derive(Clone)]
pub struct Network {
    api: VeilidAPI,
    routing: RoutingContext,
    /// Imported routes released here, whose death Veilid will report.
    released: Arc<Mutex<ReleasedRoutes>>,
    /// How many [`ImportedRoute`]s hold each imported route.
    holders: Arc<Mutex<HashMap<RouteId, usize>>>,
    /// Who holds each record open.
    records: Arc<Mutex<RecordHolds>>,
    /// One lock per record, held from a hold's change to Veilid's open or close: a close
    /// decided before another holder's open must not run after it.
    record_locks: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Network")
    }
}

/// Writes of one Status over a newer value the network holds before [`Network::publish`] gives
/// up (and the publisher tries again later).
const PUBLISH_ATTEMPTS: usize = 3;

impl Network {
    pub(super) fn new(api: VeilidAPI) -> Result<Network, VeilidAPIError> {
        let routing = api.routing_context()?;
        Ok(Network {
            api,
            routing,
            released: Arc::default(),
            holders: Arc::default(),
            records: Arc::default(),
            record_locks: Arc::default(),
        })
    }

    fn lock_released(&self) -> MutexGuard<'_, ReleasedRoutes> {
        self.released.lock()
    }

    /// Leaves in `dead` (peers' routes Veilid reports dead) only those this node did not
    /// release itself: a pull releases the route it imported, and Veilid reports that too.
    pub fn drop_released(&self, dead: &mut Vec<RouteId>) {
        self.lock_released().drop_released(dead);
    }

    pub(super) fn api(&self) -> &VeilidAPI {
        &self.api
    }

    /// Makes a private route peers can call this node on.
    pub async fn new_route(&self) -> Result<OwnRoute, NetError> {
        let route = bounded(DHT_BOUND, self.api.new_private_route())
            .await?
            .map_err(|err| NetError::Route(err.to_string()))?;
        Ok(OwnRoute {
            id: RouteId(route.route_id),
            blob: route.blob,
        })
    }

    /// Lets go of a route this node made (after making its successor), or imported.
    pub fn release_route(&self, route: &RouteId) {
        // A route Veilid already dropped is not an error worth reporting.
        let _ = self.api.release_private_route(route.0.clone());
    }

    /// Imports a peer's route from its Status, to call it; released when the result is
    /// dropped (Veilid keeps an imported route until it is released).
    pub fn import_route(&self, blob: &[u8]) -> Result<ImportedRoute, NetError> {
        // Held across the import and the count, as `let_go` holds it across the release: a
        // route released between another holder's import and its count would be held released.
        let mut holders = self.holders.lock();
        let id = self
            .api
            .import_remote_private_route(blob.to_vec())
            .map(RouteId)
            .map_err(|err| NetError::Route(err.to_string()))?;
        *holders.entry(id.clone()).or_default() += 1;
        Ok(ImportedRoute {
            network: self.clone(),
            id,
        })
    }

    /// One holder of `route` let go of it: the last one releases it.
    fn let_go(&self, route: &RouteId) {
        let mut holders = self.holders.lock();
        match holders.get_mut(route) {
            Some(count) if *count > 1 => *count -= 1,
            _ => {
                holders.remove(route);
                self.lock_released().insert(route.clone());
                self.release_route(route);
            }
        }
    }

    /// How many peers' routes Veilid holds imported on this node: each pull imports its
    /// remote's and releases it when done, so outside a pull this does not grow beyond the
    /// routes of the peers listening for notes (at most `serve::listeners::MAX_LISTENERS`; the
    /// tests check a one-shot pull; an operator looking for a leak can too).
    pub async fn imported_route_count(&self) -> Result<usize, NetError> {
        let listing = bounded(DHT_BOUND, self.api.debug("route list".to_string()))
            .await?
            .map_err(|err| NetError::Route(err.to_string()))?;
        listing
            .lines()
            .find_map(|line| {
                line.strip_prefix("Remote Routes: (count = ")?
                    .split(')')
                    .next()?
                    .parse()
                    .ok()
            })
            .ok_or_else(|| NetError::Route("veilid-core listed no remote route count".into()))
    }

    /// Asks a peer `message` on its route; its answer.
    pub async fn call(&self, route: &RouteId, message: Vec<u8>) -> Result<Vec<u8>, NetError> {
        fits(&message)?;
        bounded(
            CALL_BOUND,
            self.routing
                .app_call(Target::RouteId(route.0.clone()), message),
        )
        .await?
        .map_err(|err| NetError::Call(err.to_string()))
    }

    /// Sends a peer `message` on its route, one way (no answer, no delivery report).
    pub async fn message(&self, route: &RouteId, message: Vec<u8>) -> Result<(), NetError> {
        fits(&message)?;
        bounded(
            MESSAGE_BOUND,
            self.routing
                .app_message(Target::RouteId(route.0.clone()), message),
        )
        .await?
        .map_err(|err| NetError::Call(err.to_string()))
    }

    /// Answers an incoming call.
    pub async fn reply(&self, call: CallId, answer: Vec<u8>) -> Result<(), NetError> {
        fits(&answer)?;
        self.api
            .app_call_reply(call.0, answer)
            .await
            .map_err(|err| NetError::Call(err.to_string()))
    }

    /// Opens this database's own record for writing (after a restart too).
    pub async fn open_own_record(&self, identity: &RecordIdentity) -> Result<(), NetError> {
        let key = veilid_key(&identity.key)?;
        let owner: KeyPair = identity.owner()?;
        self.records.lock().write(&identity.key.to_string());
        bounded(
            DHT_BOUND,
            self.routing.open_dht_record(key, Some(owner), None),
        )
        .await?
        .map(|_| ())
        .map_err(|err| record_error(&identity.key, err))
    }

    /// Writes this database's Status into its record.
    pub async fn publish(
        &self,
        identity: &RecordIdentity,
        status: Vec<u8>,
    ) -> Result<(), NetError> {
        let key = veilid_key(&identity.key)?;
        // All writes within one bound: the publisher's mailbox waits meanwhile, and its stop
        // is bounded too.
        bounded(DHT_BOUND, self.publish_over_newer(identity, key, status)).await?
    }

    async fn publish_over_newer(
        &self,
        identity: &RecordIdentity,
        key: veilid_core::RecordKey,
        status: Vec<u8>,
    ) -> Result<(), NetError> {
        // A node that does not hold the record's newest value (a new machine after a restore,
        // a state dir whose Veilid store was lost) writes under a sequence number the network
        // is past: Veilid keeps the newer value and hands it back, and now knows its number.
        // Written again, the Status goes on top of it.
        for _ in 0..PUBLISH_ATTEMPTS {
            let newer = self
                .routing
                .set_dht_value(key.clone(), STATUS_SUBKEY, status.clone(), None)
                .await
                .map_err(|err| record_error(&identity.key, err))?;
            match newer {
                None => return Ok(()),
                Some(held) if held.data() == status.as_slice() => return Ok(()),
                Some(held) => tracing::debug!(target: "ddcp", seq = %held.seq(),
                    "The network held a newer status than this node's: writing over it"),
            }
        }
        Err(NetError::Record {
            key: identity.key.to_string(),
            reason: format!(
                "the network kept a newer value over {PUBLISH_ATTEMPTS} writes of this status"
            ),
        })
    }

    /// Writes this database's unchanged Status again, the same bytes at the same sequence
    /// number, so that nodes that became the record's closest since hold it too
    /// ([`super::RefreshPauses`]). Unlike [`Network::publish`], never over a value this node
    /// did not write: when the record holds another (another node writing it, a restore
    /// elsewhere), nothing is written, and [`Rewrite::Superseded`] says so.
    pub async fn rewrite(
        &self,
        identity: &RecordIdentity,
        status: Vec<u8>,
    ) -> Result<Rewrite, NetError> {
        let key = veilid_key(&identity.key)?;
        let failed = |err| record_error(&identity.key, err);
        bounded(DHT_BOUND, async {
            // This node's copy, which a write that met a newer value has taken up: writing
            // other bytes over it would be a new value, at the next sequence number.
            let held = self
                .routing
                .get_dht_value(key.clone(), STATUS_SUBKEY, false)
                .await
                .map_err(failed)?;
            if held.is_some_and(|held| held.data() != status.as_slice()) {
                return Ok(Rewrite::Superseded);
            }
            let newer = self
                .routing
                .set_dht_value(key, STATUS_SUBKEY, status.clone(), None)
                .await
                .map_err(failed)?;
            Ok(match newer {
                Some(held) if held.data() != status.as_slice() => Rewrite::Superseded,
                _ => Rewrite::Written,
            })
        })
        .await?
    }

    /// Opens a peer's record for reading. A record nobody stores yet takes Veilid 10 s to
    /// call missing ([`NetError::RecordNotFound`]); an existing one opens in a round trip.
    pub async fn open_record(&self, key: &RecordKey) -> Result<(), NetError> {
        self.open_record_within(key, DHT_BOUND).await
    }

    /// [`Network::open_record`], given up ([`NetError::Timeout`]) after `bound`: a cut-short
    /// look leaves nothing behind in Veilid, so it can be tried again at once.
    pub async fn open_record_within(
        &self,
        key: &RecordKey,
        bound: Duration,
    ) -> Result<(), NetError> {
        self.open_record_as(RecordHolder::THIS_COMMAND, key, bound)
            .await
    }

    /// [`Network::open_record_within`] for `holder`: the record stays open until every holder
    /// closed it ([`Network::close_record_as`]). A record this node writes is open already.
    pub async fn open_record_as(
        &self,
        holder: RecordHolder,
        key: &RecordKey,
        bound: Duration,
    ) -> Result<(), NetError> {
        let _locked = self.lock_record(key).await;
        if self.records.lock().open(&key.to_string(), holder) == Veilid::Leave {
            return Ok(());
        }
        let veilid = veilid_key(key)?;
        bounded(bound, self.routing.open_dht_record(veilid, None, None))
            .await?
            .map(|_| ())
            .map_err(|err| record_error(key, err))
    }

    /// Reads a peer's Status from the network (not from the local cache); `None` while the
    /// peer has published nothing.
    pub async fn read_record(&self, key: &RecordKey) -> Result<Option<Vec<u8>>, NetError> {
        let veilid = veilid_key(key)?;
        bounded(
            DHT_BOUND,
            self.routing.get_dht_value(veilid, STATUS_SUBKEY, true),
        )
        .await?
        .map(|value| value.map(|value| value.data().to_vec()))
        .map_err(|err| record_error(key, err))
    }

    /// Asks the network to report changes of a peer's record as
    /// [`super::NetEvent::ValueChanged`]; false when no node accepted the watch.
    pub async fn watch_record(&self, key: &RecordKey) -> Result<bool, NetError> {
        let veilid = veilid_key(key)?;
        bounded(
            DHT_BOUND,
            self.routing.watch_dht_values(veilid, None, None, None),
        )
        .await?
        .map_err(|err| record_error(key, err))
    }

    /// The lock of `key`'s opens and closes.
    async fn lock_record(&self, key: &RecordKey) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.record_locks.lock();
            Arc::clone(locks.entry(key.to_string()).or_default())
        };
        lock.lock_owned().await
    }

    /// Lets go of a peer's record.
    pub async fn close_record(&self, key: &RecordKey) {
        self.close_record_as(RecordHolder::THIS_COMMAND, key).await;
    }

    /// `holder` lets go of a peer's record: closed (its watch ended) when no one else holds
    /// it.
    pub async fn close_record_as(&self, holder: RecordHolder, key: &RecordKey) {
        let _locked = self.lock_record(key).await;
        if self.records.lock().close(&key.to_string(), holder) == Veilid::Leave {
            return;
        }
        if let Ok(veilid) = veilid_key(key) {
            let _ = bounded(DHT_BOUND, self.routing.close_dht_record(veilid)).await;
        }
    }
}

/// Nothing is sent that Veilid would refuse: the protocol keeps every message within
/// [`MAX_MESSAGE_BYTES`], and this says so loudly if it ever did not.
fn fits(message: &[u8]) -> Result<(), NetError> {
    if message.len() > MAX_MESSAGE_BYTES {
        tracing::error!(target: "ddcp", bytes = message.len(), "Refusing to send a message over 32 KiB");
        return Err(NetError::TooBig(message.len()));
    }
    Ok(())
}

/// Waits for `work` at most `bound`.
async fn bounded<T>(
    bound: Duration,
    work: impl std::future::Future<Output = T>,
) -> Result<T, NetError> {
    tokio::time::timeout(bound, work)
        .await
        .map_err(|_| NetError::Timeout(bound))
}

fn veilid_key(key: &RecordKey) -> Result<veilid_core::RecordKey, NetError> {
    key.reveal()
        .to_string()
        .parse()
        .map_err(|err: VeilidAPIError| record_error(key, err))
}

/// The error for `key`, without its secret: veilid-core's messages may quote the key whole.
fn record_error(key: &RecordKey, err: VeilidAPIError) -> NetError {
    let mut reason = err.to_string();
    if let Some(secret) = key.secret_text() {
        reason = reason.replace(&secret, "<secret>");
    }
    let key = key.to_string();
    match err {
        // Nodes answered that nobody has it, or none answered, or the node is not on the DHT
        // yet: all normal while a peer is starting.
        VeilidAPIError::KeyNotFound { .. } | VeilidAPIError::TryAgain { .. } => {
            NetError::RecordNotFound { key, reason }
        }
        _ => NetError::Record { key, reason },
    }
}

/// A record key Veilid reported, in ddcp's form.
pub(super) fn to_record_key(key: &veilid_core::RecordKey) -> Option<RecordKey> {
    key.to_string().parse().ok()
}
