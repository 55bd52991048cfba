//! A veilid-core node: its configuration from the state dir and network settings, and startup.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::mpsc;
use veilid_core::{UpdateCallback, VeilidAPI, VeilidConfig, VeilidUpdate, api_startup};

use super::NetError;

/// veilid-core partitions its stores by program name: never change it, or nodes lose their
/// identity and records.
const PROGRAM_NAME: &str = "ddcp";

/// Which Veilid network to join. The defaults join the public network; a private network (the
/// tests', or an organisation's own) names its bootstrap nodes and a network key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetworkSettings {
    /// Bootstrap records (`0|0|VLD0:<node key>|<address>|U5150,T5150,W5150/ws`); empty: the
    /// public network's own bootstrap.
    pub bootstrap_records: Vec<String>,
    /// The shared secret of a private network; nodes with another key never talk to this one.
    pub network_key: Option<String>,
    /// `host:port` to listen on for UDP, TCP and WebSocket; empty: Veilid's default.
    pub listen: Option<String>,
}

/// A started veilid-core node and the updates it reports.
pub struct Node {
    api: VeilidAPI,
    updates: mpsc::UnboundedReceiver<VeilidUpdate>,
}

impl Node {
    /// Starts a node whose identity and stores live in `storage_dir`. Nothing is sent on the
    /// network until [`Node::api`]'s `attach` is called.
    pub async fn start(storage_dir: &Path, settings: &NetworkSettings) -> Result<Node, NetError> {
        let startup_error = |reason: String| NetError::Startup {
            dir: storage_dir.to_path_buf(),
            reason,
        };
        std::fs::create_dir_all(storage_dir).map_err(|err| startup_error(err.to_string()))?;
        let (sender, updates) = mpsc::unbounded_channel();
        let callback: UpdateCallback = Arc::new(move |update| {
            // The receiver goes away at shutdown; updates after that have nowhere to go.
            let _ = sender.send(update);
        });
        let config = veilid_config(storage_dir, settings);
        let api = api_startup(callback, config)
            .await
            .map_err(|err| startup_error(err.to_string()))?;
        Ok(Node { api, updates })
    }

    /// The veilid-core API.
    pub fn api(&self) -> &VeilidAPI {
        &self.api
    }

    /// The updates veilid-core reports (app calls, value changes, route changes, ...).
    pub fn updates(&mut self) -> &mut mpsc::UnboundedReceiver<VeilidUpdate> {
        &mut self.updates
    }

    /// Shuts the node down, waiting for veilid-core to flush its stores.
    pub async fn shutdown(self) {
        self.api.shutdown().await;
    }
}

fn veilid_config(storage_dir: &Path, settings: &NetworkSettings) -> VeilidConfig {
    let dir: PathBuf = storage_dir.to_path_buf();
    let dir = dir.to_string_lossy();
    let mut config = VeilidConfig::new(PROGRAM_NAME, "ddcp", "ddcp", Some(&dir), Some(&dir));
    // Servers and CI have no OS keyring: the protected store is a file in the state dir, which
    // ddcp keeps readable by its owner only.
    config.protected_store.allow_insecure_fallback = true;
    config.protected_store.always_use_insecure_storage = true;
    // The node's identity and the database's record survive restarts.
    config.protected_store.delete = false;
    config.table_store.delete = false;
    config.block_store.delete = false;
    let network = &mut config.network;
    if !settings.bootstrap_records.is_empty() {
        network.routing_table.bootstrap = Vec::new();
        network.routing_table.bootstrap_keys = Vec::new();
        network.routing_table.bootstrap_records = settings.bootstrap_records.clone();
    }
    if let Some(key) = &settings.network_key {
        network.network_key_password = Some(key.clone());
    }
    if let Some(listen) = &settings.listen {
        network.protocol.udp.listen_address = listen.clone();
        network.protocol.tcp.listen_address = listen.clone();
        network.protocol.ws.listen_address = listen.clone();
    }
    config
}
