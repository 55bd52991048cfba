//! A veilid-core node: its configuration from the state dir and network settings, startup, and
//! the updates it reports, turned into ddcp's own [`NetEvent`]s.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use veilid_core::{
    AttachmentState, KeyPair, UpdateCallback, VeilidAPI, VeilidConfig,
    VeilidStateAttachmentCondition, VeilidUpdate, api_startup,
};

use super::NetError;
use super::events::{NetEvent, translate};
use super::network::Network;

/// veilid-core partitions its stores by program name: never change it, or nodes lose their
/// identity and records.
const PROGRAM_NAME: &str = "ddcp";

/// Which Veilid network to join. The defaults join the public network; a private network (the
/// tests', or an organisation's own) names its bootstrap nodes and a network key.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct NetworkSettings {
    /// Bootstrap records (`0|0|VLD0:<node key>|<address>|U5150,T5150,W5150/ws`); empty: the
    /// public network's own bootstrap.
    pub bootstrap_records: Vec<String>,
    /// The shared secret of a private network; nodes with another key never talk to this one.
    pub network_key: Option<String>,
    /// `host:port` to listen on for UDP, TCP and WebSocket; empty: Veilid's default.
    pub listen: Option<String>,
}

impl std::fmt::Debug for NetworkSettings {
    /// Whether a network key is set, never the key: it is the private network's secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkSettings")
            .field("bootstrap_records", &self.bootstrap_records)
            .field("network_key_set", &self.network_key.is_some())
            .field("listen", &self.listen)
            .finish()
    }
}

impl NetworkSettings {
    /// A private network names its own bootstrap nodes.
    fn is_private(&self) -> bool {
        !self.bootstrap_records.is_empty()
    }
}

/// How one node of a process is set up, beyond the network settings: [`Node::start`] uses the
/// defaults; the test network runs several nodes, one of them its bootstrap.
#[derive(Clone, Debug, Default)]
pub struct NodeRole {
    /// Partitions veilid-core's stores when one process runs several nodes.
    pub namespace: String,
    /// A fixed node identity (the bootstrap node's, which its bootstrap record names).
    pub identity: Option<KeyPair>,
    /// Answer bootstrap requests directly (the bootstrap node of a private network).
    pub serves_bootstrap: bool,
}

/// Events the node reported and ddcp has not taken yet. Bounded: peers' calls arrive as fast as
/// peers send them; past the bound, a call is dropped (its asker times out and asks again)
/// rather than held.
pub const EVENT_QUEUE: usize = 256;

/// Places of [`EVENT_QUEUE`] that calls never take: the node's own events (a route that died,
/// a watch that ended) arrive at Veilid's pace, not peers', and losing one would leave this
/// node unreachable or a remote unwatched.
const RESERVED_FOR_EVENTS: usize = 64;

/// A started veilid-core node and the events it reports.
#[derive(Debug)]
pub struct Node {
    network: Network,
    events: mpsc::Receiver<NetEvent>,
}

/// Checks a listen address before Veilid takes it: Veilid retries one it cannot resolve or
/// bind in error lines of its own, every second, until the attach times out (two minutes for
/// `ddcp serve`), where the user should get one line now.
fn check_listen(listen: &str) -> Result<(), NetError> {
    use std::net::ToSocketAddrs;
    let resolves = listen
        .to_socket_addrs()
        .is_ok_and(|mut addresses| addresses.next().is_some());
    match resolves {
        true => Ok(()),
        false => Err(NetError::BadListen(listen.to_string())),
    }
}

impl Node {
    /// Starts a node whose identity and stores live in `storage_dir`. Nothing is sent on the
    /// network until [`Node::attach`].
    pub async fn start(storage_dir: &Path, settings: &NetworkSettings) -> Result<Node, NetError> {
        Node::start_as(storage_dir, settings, &NodeRole::default()).await
    }

    /// Starts a node in `role` (see [`NodeRole`]).
    pub async fn start_as(
        storage_dir: &Path,
        settings: &NetworkSettings,
        role: &NodeRole,
    ) -> Result<Node, NetError> {
        let startup_error = |reason: String| NetError::Startup {
            dir: storage_dir.to_path_buf(),
            reason,
        };
        if let Some(listen) = &settings.listen {
            check_listen(listen)?;
        }
        std::fs::create_dir_all(storage_dir).map_err(|err| startup_error(err.to_string()))?;
        let (sender, events) = mpsc::channel(EVENT_QUEUE);
        let callback: UpdateCallback = Arc::new(move |update: VeilidUpdate| {
            let Some(event) = translate(update) else {
                return;
            };
            // Peers' calls and notes may come in floods: they never take the node's own
            // events' reserve.
            let from_a_peer = matches!(event, NetEvent::Call(_) | NetEvent::Message { .. });
            if from_a_peer && sender.capacity() <= RESERVED_FOR_EVENTS {
                crate::metrics::shed(
                    &crate::metrics::DbLabel::default(),
                    crate::metrics::ShedReason::QueueFull,
                );
                return;
            }
            match sender.try_send(event) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    // Only when the node's own events outrun the reader by the whole reserve.
                    tracing::warn!(target: "ddcp", "Event queue full: dropped a Veilid event");
                }
                // The receiver goes away at shutdown; events after that have nowhere to go.
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        });
        let config = veilid_config(storage_dir, settings, role);
        let api = api_startup(callback, config)
            .await
            .map_err(|err| startup_error(err.to_string()))?;
        let network = Network::new(api).map_err(|err| startup_error(err.to_string()))?;
        Ok(Node { network, events })
    }

    /// The handle that makes calls and reads records; clones share the node.
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// Takes the events this node reports (app calls, value changes, route deaths, ...): they
    /// go to one consumer.
    pub fn take_events(&mut self) -> mpsc::Receiver<NetEvent> {
        std::mem::replace(&mut self.events, mpsc::channel(1).1)
    }

    /// Joins the network and waits until the node can use the DHT and private routes, at most
    /// `timeout`.
    pub async fn attach(&self, timeout: Duration) -> Result<(), NetError> {
        let api = self.api();
        api.attach()
            .await
            .map_err(|err| NetError::Attach(err.to_string()))?;
        let ready = VeilidStateAttachmentCondition {
            opt_min_state: Some(AttachmentState::AttachedWeak),
            opt_public_internet_ready: Some(true),
            ..Default::default()
        };
        api.wait_for_attachment_condition(Some(ready), Some(timeout))
            .await
            .map(|_| ())
            .map_err(|_| NetError::AttachTimeout(timeout))
    }

    /// Joins the network without waiting (a test network's bootstrap process: its own nodes
    /// are too few to become ready until the others join).
    pub async fn attach_in_background(&self) -> Result<(), NetError> {
        self.api()
            .attach()
            .await
            .map_err(|err| NetError::Attach(err.to_string()))
    }

    fn api(&self) -> &VeilidAPI {
        self.network.api()
    }

    /// Shuts the node down, waiting (at most a bound) for veilid-core to flush its stores.
    pub async fn shutdown(self) {
        let api = self.network.api().clone();
        drop(self.network);
        if tokio::time::timeout(SHUTDOWN_BOUND, api.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(target: "ddcp", "The Veilid node took too long to shut down");
        }
    }
}

/// How long a node's shutdown may take before ddcp gives up waiting.
const SHUTDOWN_BOUND: Duration = Duration::from_secs(30);

fn veilid_config(storage_dir: &Path, settings: &NetworkSettings, role: &NodeRole) -> VeilidConfig {
    let dir: PathBuf = storage_dir.to_path_buf();
    let dir = dir.to_string_lossy();
    let mut config = VeilidConfig::new(PROGRAM_NAME, "ddcp", "ddcp", Some(&dir), Some(&dir));
    config.namespace = role.namespace.clone();
    // Servers and CI have no OS keyring: the protected store is a file in the state dir, which
    // ddcp keeps readable by its owner only.
    config.protected_store.allow_insecure_fallback = true;
    config.protected_store.always_use_insecure_storage = true;
    // The node's identity and the database's record survive restarts.
    config.protected_store.delete = false;
    config.table_store.delete = false;
    config.block_store.delete = false;
    let network = &mut config.network;
    if settings.is_private() {
        network.routing_table.bootstrap = Vec::new();
        network.routing_table.bootstrap_keys = Vec::new();
        network.routing_table.bootstrap_records = settings.bootstrap_records.clone();
        // A private network's addresses are fixed and known: no router to ask, nothing to
        // rediscover.
        network.upnp = false;
        network.detect_address_changes = Some(false);
    }
    if let Some(key) = &settings.network_key {
        network.network_key_password = Some(key.clone());
    }
    if let Some(listen) = &settings.listen {
        network.protocol.udp.listen_address = listen.clone();
        network.protocol.tcp.listen_address = listen.clone();
        network.protocol.ws.listen_address = listen.clone();
    }
    if let Some(identity) = &role.identity {
        network.routing_table.public_keys = identity.key().into();
        network.routing_table.secret_keys = identity.secret().into();
    }
    network.routing_table.serve_direct_bootstrap = role.serves_bootstrap;
    config
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::TestNetPlan;

    #[test]
    fn a_private_networks_key_stays_out_of_debug_output() {
        let settings = NetworkSettings {
            bootstrap_records: vec!["0|0|VLD0:abc|10.0.0.1|U5150".into()],
            network_key: Some("our-shared-secret".into()),
            listen: None,
        };
        let plan = TestNetPlan {
            hosts: vec!["vtnode1".into()],
            port: 5150,
            network_key: "our-shared-secret".into(),
            dir: PathBuf::from("/tmp/x"),
        };
        for shown in [format!("{settings:?}"), format!("{plan:?}")] {
            assert!(!shown.contains("our-shared-secret"), "{shown}");
        }
        assert!(format!("{settings:?}").contains("network_key_set: true"));
    }

    #[test]
    fn a_listen_address_must_be_a_host_and_port_of_this_machine() {
        assert!(check_listen("127.0.0.1:5150").is_ok());
        assert!(check_listen("localhost:0").is_ok());
        for bad in ["nonsense", "127.0.0.1", "127.0.0.1:port", ":5150"] {
            let err = check_listen(bad).unwrap_err().to_string();
            assert!(
                err.contains("is not a HOST:PORT that resolves"),
                "{bad}: {err}"
            );
        }
    }
}
