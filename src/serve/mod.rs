//! `ddcp serve` at run time: a supervision tree of ractor actors.
//!
//! ```text
//! Host                  owns the Veilid node every database shares; restarts a failed database
//!  │                    alone (`host`)
//!  ├─ NodeActor         the Veilid node: hands each call and note to the database whose route
//!  │                    it came in on (`doors`); record changes to every database
//!  └─ Supervisor × N    one database's tree: routes events between its children; restarts a
//!     │                 failed publisher or remote alone, with backoff; stops when its
//!     │                 database or its route keeper fails
//!     ├─ DoorActor      the database's private route (re-made when it dies), the answering of
//!     │                 the calls on it, notes to the peers listening for new versions
//!     ├─ DbActor        the one writer: every page applied goes through its mailbox; answers
//!     │                 peers' requests; notices local commits, by ddcp or any other process
//!     ├─ PublisherActor writes this database's Status into its DHT record when it changes
//!     ├─ RemoteActor × N one per remote: watches its record (polls only when watching fails),
//!     │                 listens for its notes, pulls its changes page by page into the DbActor
//!     ├─ ControlActor   the state dir's control socket: answers the CLI from what the
//!     │                 supervisor tells it; has the remotes' actors pull for `ddcp pull`
//!     └─ ApiActor       the HTTP API apps use (src/api), its writes through the DbActor
//! ```
//!
//! A private database's [`AccessGate`] is shared by the answering of calls and the publisher:
//! members only are answered, and the Status is sealed for them.
//!
//! Network calls are made through [`crate::net::Network`] handles, not through the NodeActor's
//! mailbox: a call takes from 0.1 to several seconds, and remotes must not wait for each other.

mod access;
mod answering;
mod api;
mod call_queue;
pub(crate) mod control;
mod door;
mod doors;
mod feed_stream;
mod host;
mod listeners;
mod node;
mod note_inbox;
mod one_timer;
mod publisher;
mod remote;
mod restart;
mod setup;
mod supervisor;

pub use access::{AccessGate, Admission};
pub use api::{ApiActor, ApiSetup};
pub use control::{ControlQuery, pull_remotes};
pub use feed_stream::FeedSource;
pub use host::{
    BadDbName, DbName, Host, HostArgs, HostFolder, HostMsg, HostedDatabase, OnFailure, RunningHost,
};
pub use node::{NodeActor, NodeMsg};
pub use publisher::{PublisherActor, PublisherMsg};
pub use remote::{
    CHECK_EVERY, LISTEN_RENEW, QUIET_AFTER, QUIET_CHECK_EVERY, RemoteActor, RemoteMsg,
};
pub use setup::{ApiOptions, DatabaseSetup, ServeError, ServeOptions, open_database, remote_links};
pub use supervisor::{Supervisor, SupervisorArgs, SupervisorMsg};
