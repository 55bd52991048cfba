//! Every metric ddcp exports, in one place, and the Prometheus exporter (`--metrics-addr`).
//! Names follow Prometheus conventions. Every label value comes from a set this node bounds:
//! remote names (the user's own), error kinds, actor kinds, refusal reasons; never from what a
//! peer claims (an unauthenticated asker could grow the series without bound).

use std::net::SocketAddr;
use std::sync::Arc;

use metrics::{
    Label, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};

/// This database's db_version.
pub const DB_VERSION: &str = "ddcp_db_version";
/// Changes received from a remote and accepted (label `remote`).
pub const CHANGES_APPLIED: &str = "ddcp_changes_applied_total";
/// Changes sent to peers in pages (no label: askers are not authenticated).
pub const CHANGES_SERVED: &str = "ddcp_changes_served_total";
/// App call bytes received (questions answered and answers to this node's questions).
pub const BYTES_IN: &str = "ddcp_bytes_in_total";
/// App call bytes sent.
pub const BYTES_OUT: &str = "ddcp_bytes_out_total";
/// Changes a remote sent that its author policy (`--authors`) refused (label `remote`).
pub const CHANGES_REFUSED: &str = "ddcp_changes_refused_total";
/// How long pulls took, from the Status to up to date (label `remote`).
pub const PULL_DURATION: &str = "ddcp_pull_duration_seconds";
/// The remote's db_version seen minus the one pulled (label `remote`).
pub const REMOTE_LAG: &str = "ddcp_remote_lag_versions";
/// Restarts of failed actors (label `actor`: `remote` or `publisher`; `remote` for remotes).
pub const ACTOR_RESTARTS: &str = "ddcp_actor_restarts_total";
/// 1 when the Veilid node can use the DHT and private routes, else 0.
pub const VEILID_READY: &str = "ddcp_veilid_ready";
/// Peers the Veilid node talks to.
pub const VEILID_PEERS: &str = "ddcp_veilid_peers";
pub const PRIVATE_ROUTES: &str = "ddcp_private_routes";
/// Watches set on remotes' records (label `remote`).
pub const WATCHES: &str = "ddcp_remote_watches_total";
/// Remotes whose record could not be watched, polled instead (label `remote`); 1 while polling.
pub const POLLING: &str = "ddcp_remote_polling";
/// Changes of a watched remote found by the periodic Status check, not told of by its watch
/// (label `remote`): how often watches go quiet.
pub const MISSED_NOTIFICATIONS: &str = "ddcp_remote_missed_notifications_total";
/// Failures by kind (label `kind`: `net`, `garbage`, `schema`, `refused`, `db`, ...).
pub const ERRORS: &str = "ddcp_errors_total";
/// Pages answered with a page built for another puller (pullers catching up at once).
pub const PAGES_SHARED: &str = "ddcp_pages_shared_total";
/// Answers from a remote telling this node it is too busy (label `remote`): how often it sheds
/// this node's requests.
pub const REMOTE_BUSY: &str = "ddcp_remote_busy_total";
/// Peers' requests not answered in full, by reason (label `reason`, see [`ShedReason`]).
pub const REQUESTS_SHED: &str = "ddcp_requests_shed_total";
/// Requests to this private database refused (label `reason`: `unauthenticated`,
/// `not_member`, `stale_epoch`, `bad_signature`).
pub const REQUESTS_REFUSED: &str = "ddcp_requests_refused_total";

/// Peers listening for this database's new versions (a puller's `listen`), told by notes.
pub const LISTENERS: &str = "ddcp_listeners";
/// Notes sent to listeners (label `outcome`: `sent`, `failed`).
pub const NOTES_SENT: &str = "ddcp_notes_sent_total";
/// Notes received from remotes (label `outcome`: `taken`, a remote's actor took it (opened it,
/// when sealed); `unknown`, no remote of this node's gave that token; `malformed`; `unopened`,
/// not sealed as the remote's access says, or not opening with this member's key). A note that
/// comes while the last one waits replaces it, uncounted.
pub const NOTES_RECEIVED: &str = "ddcp_notes_received_total";

/// Rewrites of this database's unchanged Status (label `outcome`: `written`; `superseded`, the
/// record holds a Status another node wrote, left as it is; `failed`).
pub const STATUS_REWRITES: &str = "ddcp_status_rewrites_total";

/// Changes held for tables or columns this database lacks (a remote runs a newer version of
/// the app), applied once it has them.
pub const HELD_CHANGES: &str = "ddcp_held_changes";

/// Every metric, for the checks that the README, the dashboard and the alerts name only these.
pub const ALL: &[&str] = &[
    DB_VERSION,
    HELD_CHANGES,
    CHANGES_APPLIED,
    CHANGES_REFUSED,
    CHANGES_SERVED,
    PAGES_SHARED,
    BYTES_IN,
    BYTES_OUT,
    PULL_DURATION,
    REMOTE_LAG,
    ACTOR_RESTARTS,
    VEILID_READY,
    VEILID_PEERS,
    PRIVATE_ROUTES,
    WATCHES,
    POLLING,
    MISSED_NOTIFICATIONS,
    ERRORS,
    REQUESTS_SHED,
    REQUESTS_REFUSED,
    LISTENERS,
    NOTES_SENT,
    NOTES_RECEIVED,
    STATUS_REWRITES,
];

/// Why a peer's request was not answered in full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShedReason {
    /// The queue of waiting calls was full and this one was picked to leave it: the asker
    /// was told `tooBusy`.
    Busy,
    /// The asker stopped waiting before the database got to it: not built.
    Expired,
    /// The node's event queue was full: dropped unanswered.
    QueueFull,
    /// It came in on no route of a database this node serves (one let go of, or never made
    /// here): dropped unanswered.
    NoSuchRoute,
}

impl ShedReason {
    fn label(self) -> &'static str {
        match self {
            ShedReason::Busy => "busy",
            ShedReason::Expired => "expired",
            ShedReason::QueueFull => "queue_full",
            ShedReason::NoSuchRoute => "no_such_route",
        }
    }
}

/// Starts the Prometheus exporter on `address` (`/metrics`) and describes every metric.
pub fn install(address: SocketAddr) -> Result<(), String> {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(address)
        .install()
        .map_err(|err| format!("cannot serve metrics on {address}: {err}"))?;
    describe_gauge!(DB_VERSION, "This database's db_version.");
    describe_gauge!(
        HELD_CHANGES,
        "Changes held for tables or columns this database lacks."
    );
    describe_counter!(
        CHANGES_APPLIED,
        "Changes received from a remote and accepted."
    );
    describe_counter!(
        CHANGES_REFUSED,
        "Changes a remote sent that its author policy refused."
    );
    describe_counter!(CHANGES_SERVED, "Changes sent to peers in pages.");
    describe_counter!(
        PAGES_SHARED,
        "Pages answered with a page built for another puller."
    );
    describe_counter!(BYTES_IN, "App call bytes received.");
    describe_counter!(BYTES_OUT, "App call bytes sent.");
    describe_histogram!(
        PULL_DURATION,
        metrics::Unit::Seconds,
        "How long pulls took."
    );
    describe_gauge!(REMOTE_LAG, "Remote versions seen but not pulled yet.");
    describe_counter!(ACTOR_RESTARTS, "Restarts of failed actors.");
    describe_gauge!(VEILID_READY, "1 when the Veilid node is ready.");
    describe_gauge!(VEILID_PEERS, "Peers the Veilid node talks to.");
    describe_gauge!(
        PRIVATE_ROUTES,
        "Private routes the Veilid node keeps for the databases it serves (one each; two while one is renewed)."
    );
    describe_counter!(WATCHES, "Watches set on remotes' records.");
    describe_counter!(
        REMOTE_BUSY,
        "Answers from a remote saying it is too busy (its shedding of this node's requests)."
    );
    describe_gauge!(
        POLLING,
        "1 while a remote is polled because its record cannot be watched."
    );
    describe_counter!(
        MISSED_NOTIFICATIONS,
        "Changes of watched remotes found by a Status check, not told of by the watch."
    );
    describe_counter!(ERRORS, "Failures, by kind.");
    describe_counter!(
        REQUESTS_SHED,
        "Peers' requests not answered in full, by reason."
    );
    describe_counter!(
        REQUESTS_REFUSED,
        "Requests to this private database refused, by reason."
    );
    describe_gauge!(
        LISTENERS,
        "Peers listening for this database's new versions."
    );
    describe_counter!(NOTES_SENT, "Notes sent to listening peers, by outcome.");
    describe_counter!(NOTES_RECEIVED, "Notes received from remotes, by outcome.");
    describe_counter!(
        STATUS_REWRITES,
        "Rewrites of this database's unchanged Status, by outcome."
    );
    Ok(())
}

/// Which database a metric is of: none for a `ddcp serve` of one database, whose metrics keep
/// the labels they always had; the database's name (its folder's) under a host of many
/// (`ddcp serve --databases`), as the label `db`. Its values are the databases the operator
/// put in the host's folder: a bounded set (docs/hosting.md says how far it goes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DbLabel(Option<Arc<str>>);

impl DbLabel {
    /// The label of the hosted database `name`.
    pub fn named(name: &str) -> DbLabel {
        DbLabel(Some(name.into()))
    }

    /// The span a hosted database's actors log in, so that each of their lines names the
    /// database (`db{db=NAME}: ddcp: ...`); none for a database served alone.
    pub fn span(&self) -> tracing::Span {
        match &self.0 {
            Some(name) => tracing::info_span!(target: "ddcp", "db", db = %name),
            None => tracing::Span::none(),
        }
    }

    /// `pairs`, and the database's own label when it has one.
    fn with(&self, pairs: &[(&'static str, &str)]) -> Vec<Label> {
        let mut labels: Vec<Label> = pairs
            .iter()
            .map(|(key, value)| Label::new(*key, value.to_string()))
            .collect();
        if let Some(name) = &self.0 {
            labels.push(Label::new("db", name.to_string()));
        }
        labels
    }
}

/// `count` peers listen for this database's new versions.
pub fn listeners(db: &DbLabel, count: usize) {
    gauge!(LISTENERS, db.with(&[])).set(count as f64);
}

/// A note to a listener went out (`sent`) or could not (`failed`).
pub fn note_sent(db: &DbLabel, sent: bool) {
    let outcome = if sent { "sent" } else { "failed" };
    counter!(NOTES_SENT, db.with(&[("outcome", outcome)])).increment(1);
}

/// What became of a rewrite of the unchanged Status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RewriteOutcome {
    /// It went out again.
    Written,
    /// The record holds a Status another node wrote: left as it is.
    Superseded,
    /// It could not be written (the next rewrite comes all the same).
    Failed,
}

/// The unchanged Status was written again, or not.
pub fn status_rewrite(db: &DbLabel, outcome: RewriteOutcome) {
    let outcome = match outcome {
        RewriteOutcome::Written => "written",
        RewriteOutcome::Superseded => "superseded",
        RewriteOutcome::Failed => "failed",
    };
    counter!(STATUS_REWRITES, db.with(&[("outcome", outcome)])).increment(1);
}

/// What became of a note received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoteOutcome {
    /// A remote's actor took it (opened it, when sealed).
    Taken,
    /// No remote of this node's gave that token.
    Unknown,
    /// Not a note.
    Malformed,
    /// Not sealed as the remote's access says, or not opening.
    Unopened,
}

/// A note was received, and this became of it.
pub fn note_received(db: &DbLabel, outcome: NoteOutcome) {
    let outcome = match outcome {
        NoteOutcome::Taken => "taken",
        NoteOutcome::Unknown => "unknown",
        NoteOutcome::Malformed => "malformed",
        NoteOutcome::Unopened => "unopened",
    };
    counter!(NOTES_RECEIVED, db.with(&[("outcome", outcome)])).increment(1);
}

/// The database moved to `version`.
pub fn db_version(db: &DbLabel, version: i64) {
    gauge!(DB_VERSION, db.with(&[])).set(version as f64);
}

/// `changes` are held for tables or columns this database lacks.
pub fn held(db: &DbLabel, changes: u64) {
    gauge!(HELD_CHANGES, db.with(&[])).set(changes as f64);
}

/// A page of `changes` from `remote` was accepted.
pub fn applied(db: &DbLabel, remote: &str, changes: u64) {
    counter!(CHANGES_APPLIED, db.with(&[("remote", remote)])).increment(changes);
}

/// `changes` from `remote` were skipped: its author policy refuses their authors.
pub fn refused_changes(db: &DbLabel, remote: &str, changes: u64) {
    if changes > 0 {
        counter!(CHANGES_REFUSED, db.with(&[("remote", remote)])).increment(changes);
    }
}

/// A page of `changes` went to a peer.
pub fn served(db: &DbLabel, changes: u64) {
    counter!(CHANGES_SERVED, db.with(&[])).increment(changes);
}

/// A page was answered with one built for another puller.
pub fn page_shared(db: &DbLabel) {
    counter!(PAGES_SHARED, db.with(&[])).increment(1);
}

/// App call bytes in and out.
pub fn traffic(db: &DbLabel, bytes_in: usize, bytes_out: usize) {
    counter!(BYTES_IN, db.with(&[])).increment(bytes_in as u64);
    counter!(BYTES_OUT, db.with(&[])).increment(bytes_out as u64);
}

/// A pull of `remote` took `seconds`.
pub fn pull_took(db: &DbLabel, remote: &str, seconds: f64) {
    histogram!(PULL_DURATION, db.with(&[("remote", remote)])).record(seconds);
}

/// `remote` is `lag` versions behind.
pub fn lag(db: &DbLabel, remote: &str, lag: i64) {
    gauge!(REMOTE_LAG, db.with(&[("remote", remote)])).set(lag as f64);
}

/// An actor of kind `actor` was restarted (a whole database's tree: `database`).
pub fn restarted(db: &DbLabel, actor: &'static str) {
    counter!(ACTOR_RESTARTS, db.with(&[("actor", actor)])).increment(1);
}

/// The Veilid node's attachment: one node, whatever the databases it serves.
pub fn attachment(ready: bool, peers: u64) {
    gauge!(VEILID_READY).set(if ready { 1.0 } else { 0.0 });
    gauge!(VEILID_PEERS).set(peers as f64);
}

/// The node keeps `count` private routes for its databases.
pub fn private_routes(count: usize) {
    gauge!(PRIVATE_ROUTES).set(count as f64);
}

/// A watch was set on `remote`'s record.
pub fn watched(db: &DbLabel, remote: &str) {
    counter!(WATCHES, db.with(&[("remote", remote)])).increment(1);
    gauge!(POLLING, db.with(&[("remote", remote)])).set(0.0);
}

/// A change of `remote` came to light at a Status check, not through its watch.
pub fn missed_notification(db: &DbLabel, remote: &str) {
    counter!(MISSED_NOTIFICATIONS, db.with(&[("remote", remote)])).increment(1);
}

/// `remote` is polled: its record could not be watched.
pub fn polling(db: &DbLabel, remote: &str) {
    gauge!(POLLING, db.with(&[("remote", remote)])).set(1.0);
}

/// A remote's actor started: its counters show from the start, at 0 (a scrape that finds
/// none cannot tell "never" from "not exported").
pub fn remote_started(db: &DbLabel, remote: &str) {
    counter!(REMOTE_BUSY, db.with(&[("remote", remote)])).increment(0);
}

/// `remote` answered that it is too busy.
pub fn remote_busy(db: &DbLabel, remote: &str) {
    counter!(REMOTE_BUSY, db.with(&[("remote", remote)])).increment(1);
}

/// A peer's request was shed: by a database's answering (`db`), or by the node before any
/// database took it (none).
pub fn shed(db: &DbLabel, reason: ShedReason) {
    counter!(REQUESTS_SHED, db.with(&[("reason", reason.label())])).increment(1);
}

/// A request to this private database was refused; `reason` is one of a fixed set.
pub fn refused(db: &DbLabel, reason: &'static str) {
    counter!(REQUESTS_REFUSED, db.with(&[("reason", reason)])).increment(1);
}

/// A failure of kind `kind`.
pub fn error(db: &DbLabel, kind: &'static str) {
    counter!(ERRORS, db.with(&[("kind", kind)])).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hosted_database_adds_its_name_and_a_database_served_alone_adds_nothing() {
        let alone = DbLabel::default().with(&[("remote", "bob")]);
        assert_eq!(alone, vec![Label::new("remote", "bob")]);
        let hosted = DbLabel::named("x").with(&[("remote", "bob")]);
        assert_eq!(
            hosted,
            vec![Label::new("remote", "bob"), Label::new("db", "x")]
        );
    }
}
