//! DDCP, Database-to-Database Copy: a git-like CLI for cr-sqlite databases and the layer that
//! replicates their changes between peers.
//!
//! Imports run one way: `commands` -> (`db`, `net`) -> `sync`. `sync` is pure logic and knows
//! nothing else of this crate; `db` is the one place that speaks SQL, `net` the one that touches
//! veilid-core.

pub mod actors;
pub mod cli;
pub mod commands;
pub mod config;
pub mod control;
#[warn(missing_docs)]
pub mod db;
pub mod metrics;
#[warn(missing_docs)]
pub mod net;
#[warn(missing_docs)]
pub mod sync;
