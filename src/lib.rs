//! DDCP, Database-to-Database Copy: a git-like CLI for cr-sqlite databases and the layer that
//! replicates their changes between peers.
//!
//! - `sync`: the replication core, pure logic with no I/O: ids, record keys, changes, cursors,
//!   the protocol's pages and fragments, the capnp codec (schema/ddcp.capnp), bundles. It is
//!   the crate `ddcp-sync` (crates/ddcp-sync), re-exported here.
//! - `db`: SQLite and cr-sqlite, the one place that speaks SQL.
//! - `net`: veilid-core, the one place that touches it: the node, routes, calls, records.
//! - `db_actor`: the DbActor, the database's one writer, and its handle.
//! - `pull`: one pull of one remote, page by page into the DbActor.
//! - `serve`: `ddcp serve` at run time, a ractor supervision tree over the above.
//! - `app`: an app's way into the database (transactions, queries, subscriptions); `api`
//!   serves it as HTTP; `embed`: the tree and the app's way in, for another Rust program
//!   (docs/embedding.md), which `ddcp serve` uses too; `hosting`: many databases on one node
//!   (`ddcp serve --databases`).
//! - `control`: the CLI <-> daemon protocol over the state dir's socket.
//! - `commands`, `cli`, `config`: the CLI; `member_file`: this database's member identity;
//!   `metrics`: every metric, in one place; `backoff`: the pauses of every retry loop;
//!   `memory`: gives the memory big work freed back to the system.
//!
//! Imports run one way: `commands` -> `hosting` -> `embed` -> `serve` -> (`api` -> `app`), `pull` ->
//! `db_actor` -> (`db`, `net`) -> `sync`; `control`, `metrics`, `backoff` and `memory` are leaves that any of them may use. `sync`
//! knows nothing of this crate: it is a crate of its own.

pub mod api;
pub mod app;
pub mod backoff;
pub mod cli;
pub mod commands;
pub mod config;
pub mod control;
#[warn(missing_docs)]
pub mod db;
pub mod db_actor;
pub mod embed;
pub mod hosting;
pub mod member_file;
pub mod memory;
pub mod metrics;
#[warn(missing_docs)]
pub mod net;
pub mod pull;
pub mod removals_file;
pub mod serve;
pub mod status_report;
pub use ddcp_sync as sync;
