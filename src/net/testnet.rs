//! A private Veilid network's plain nodes, all in one process: what `ddcp testnet` runs so that
//! a handful of ddcp processes find the DHT they need on a machine with no other Veilid nodes.
//! Veilid's DHT comes up only once every node sees four peers, so a test network needs five
//! nodes or more in all; these plus the ddcp processes make up the number.

use std::net::ToSocketAddrs;
use std::path::PathBuf;

use veilid_core::{CRYPTO_KIND_VLD0, Crypto};

use super::NetError;
use super::node::{NetworkSettings, Node, NodeRole};

/// What to start.
#[derive(Clone)]
pub struct TestNetPlan {
    /// One node per host name, each listening on `host:port`; the first is the bootstrap.
    /// Veilid wants each node on an address of its own (route hops skip peers sharing one).
    pub hosts: Vec<String>,
    /// The port every node listens on (UDP, TCP and WebSocket).
    pub port: u16,
    /// The shared key of the network.
    pub network_key: String,
    /// Where the nodes keep their stores.
    pub dir: PathBuf,
}

impl std::fmt::Debug for TestNetPlan {
    /// Never the network's key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestNetPlan")
            .field("hosts", &self.hosts)
            .field("port", &self.port)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// The running nodes.
#[derive(Debug)]
pub struct TestNet {
    nodes: Vec<Node>,
    bootstrap_record: String,
}

impl TestNet {
    /// Starts the nodes and asks them to attach (they become ready as peers join).
    pub async fn start(plan: &TestNetPlan) -> Result<TestNet, NetError> {
        let Some(bootstrap_host) = plan.hosts.first() else {
            return Err(NetError::Attach(
                "a test network needs at least one host".into(),
            ));
        };
        let address = ipv4_of(bootstrap_host, plan.port)?;
        let identity = Crypto::generate_keypair(CRYPTO_KIND_VLD0)
            .map_err(|err| NetError::Attach(err.to_string()))?;
        let port = plan.port;
        let bootstrap_record = format!(
            "0|0|{}|{address}|U{port},T{port},W{port}/ws",
            identity.key()
        );
        let mut nodes = Vec::new();
        for (index, host) in plan.hosts.iter().enumerate() {
            let settings = NetworkSettings {
                bootstrap_records: vec![bootstrap_record.clone()],
                network_key: Some(plan.network_key.clone()),
                listen: Some(format!("{host}:{port}")),
            };
            let is_bootstrap = index == 0;
            let role = NodeRole {
                namespace: format!("testnet{index}"),
                identity: is_bootstrap.then(|| identity.clone()),
                serves_bootstrap: is_bootstrap,
            };
            let dir = plan.dir.join(format!("node{index}"));
            let node = Node::start_as(&dir, &settings, &role).await?;
            nodes.push(node);
        }
        for node in &mut nodes {
            // Nothing in ddcp consumes a plain node's events: drop them as they come.
            let mut events = node.take_events();
            tokio::spawn(async move { while events.recv().await.is_some() {} });
            node.attach_in_background().await?;
        }
        Ok(TestNet {
            nodes,
            bootstrap_record,
        })
    }

    /// The record every node of the network (ddcp's included) bootstraps from.
    pub fn bootstrap_record(&self) -> &str {
        &self.bootstrap_record
    }

    /// Stops every node.
    pub async fn shutdown(self) {
        for node in self.nodes {
            node.shutdown().await;
        }
    }
}

/// The IPv4 address `host` resolves to: bootstrap records name addresses, not host names.
fn ipv4_of(host: &str, port: u16) -> Result<std::net::Ipv4Addr, NetError> {
    let unresolved = || NetError::Attach(format!("{host} has no IPv4 address"));
    (host, port)
        .to_socket_addrs()
        .map_err(|_| unresolved())?
        .find_map(|address| match address.ip() {
            std::net::IpAddr::V4(v4) => Some(v4),
            std::net::IpAddr::V6(_) => None,
        })
        .ok_or_else(unresolved)
}
