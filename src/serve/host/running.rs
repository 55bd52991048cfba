//! A Host started: its actor, the task that ends when it stops, and why it stopped when a part
//! it cannot do without failed. What `ddcp serve` (one database or many) and an embedding
//! program hold while serving.

use std::sync::Arc;

use parking_lot::Mutex;
use ractor::{Actor, ActorRef};
use tokio::task::JoinHandle;

use super::{Host, HostArgs, HostFolder, HostMsg, HostedDatabase, OnFailure};
use crate::net::Node;
use crate::serve::setup::{ServeError, ServeOptions};

/// A running host.
#[derive(Debug)]
pub struct RunningHost {
    host: ActorRef<HostMsg>,
    running: JoinHandle<()>,
    fatal: Arc<Mutex<Option<String>>>,
}

impl RunningHost {
    /// Starts the host of `databases` on `node`; with `folder`, databases may be added and
    /// removed through its socket.
    pub async fn start(
        node: Node,
        databases: Vec<HostedDatabase>,
        on_failure: OnFailure,
        folder: Option<(HostFolder, ServeOptions)>,
    ) -> Result<RunningHost, ServeError> {
        let fatal = Arc::new(Mutex::new(None));
        let args = HostArgs {
            node,
            databases,
            on_failure,
            fatal: fatal.clone(),
            folder,
        };
        let (host, running) = Actor::spawn(None, Host, args)
            .await
            .map_err(|err| ServeError::Stopped(err.to_string()))?;
        Ok(RunningHost {
            host,
            running,
            fatal,
        })
    }

    /// The host's actor, to ask it things.
    pub fn actor(&self) -> &ActorRef<HostMsg> {
        &self.host
    }

    /// Waits until the host stops by itself (a part it cannot do without failed), and why.
    pub async fn stopped(&mut self) -> Result<(), ServeError> {
        let _ = (&mut self.running).await;
        self.outcome()
    }

    /// Stops every database, then the node (its shutdown flushes Veilid's stores).
    pub async fn stop(mut self) -> Result<(), ServeError> {
        tracing::info!(target: "ddcp", "Stopping");
        self.host.stop(None);
        let _ = (&mut self.running).await;
        self.outcome()
    }

    fn outcome(&self) -> Result<(), ServeError> {
        match self.fatal.lock().take() {
            Some(reason) => Err(ServeError::Stopped(reason)),
            None => Ok(()),
        }
    }
}
