//! One pull of one remote, until its changes are all here: read its Status, call its route
//! page by page (fragments several at a time), hand each page to the DbActor. The RemoteActor
//! runs it whenever the remote changes; `ddcp pull` runs it once. A private remote's Status is
//! opened with this database's member identity, and every request to it is signed with it.

mod error;
mod fit;
mod remote_view;
mod report;
mod route;

pub use error::RemoteError;
pub use remote_view::{RemoteView, Session, open_published, read_status, remote_schema};
pub use report::{PullProgress, PullReport};
pub use route::check_owner;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::db::{AcceptPolicy, DbError, RemoteName};
use crate::db_actor::{DbCallError, DbHandle, LocalState};
use crate::metrics;
use crate::net::{ImportedRoute, NetError, Network};
use crate::sync::protocol::{ErrorCode, Listen, Status};
use crate::sync::pull::{DEFAULT_PAGE_BYTES, PullError, Puller, Received};
use crate::sync::schema_fit::SchemaFit;
use crate::sync::{MemberKeys, RecordKey, SchemaFingerprint, SiteId};
use fit::Ask;
use remote_view::Caller;
use route::{ROUTE_PATIENCE, ROUTE_PAUSE};

/// Calls in a row that may fail (a route being replaced, a lost message) before the pull
/// gives up; between them the remote's Status is read again for a fresh route, for at least
/// [`ROUTE_PATIENCE`] in all.
pub(super) const CALL_ATTEMPTS: u32 = 4;

/// Rounds of answers in a row that move nothing (late or repeated answers) before the pull
/// gives up: a peer must not keep a puller asking forever.
const IDLE_ROUNDS: u32 = 10;

/// Refusals in a row (`notAllowed`) while the remote's Status still opens for this database,
/// each after [`REFUSED_PAUSE`], before the pull gives up: the remote moved its key epoch on
/// (a member was removed) and its new Status is still on its way.
const REFUSED_ROUNDS: u32 = 10;
const REFUSED_PAUSE: Duration = Duration::from_secs(1);

/// A remote that is too busy is asked again after this long, and a random part of as much
/// again (pullers told at once do not all come back at once) ...
const BUSY_PAUSE: Duration = Duration::from_millis(250);

/// ... for this many rounds in a row (about two minutes): a remote under a flood answers some
/// calls and refuses others, and an honest puller keeps its place by asking again.
const BUSY_ROUNDS: u32 = 320;

/// A remote as the pull knows it.
#[derive(Clone, Debug)]
pub struct RemoteLink {
    /// Its name here.
    pub name: RemoteName,
    /// Its DHT record.
    pub key: RecordKey,
    /// What it may bring: whose changes, to which tables, columns and rows.
    pub accept: AcceptPolicy,
}

/// Pulls `link`'s changes until this database has them all. `view` is the remote's Status
/// when the caller has it fresh (from a record change); otherwise it is read from the DHT.
/// `me` signs the requests to a private remote. With `listen`, every request asks the remote
/// to send notes of its new versions there (`ddcp serve`'s pulls).
pub async fn pull_remote(
    network: &Network,
    db: &DbHandle,
    me: &MemberKeys,
    link: &RemoteLink,
    view: Option<RemoteView>,
    listen: Option<Listen>,
    progress: &mut (dyn FnMut(&PullProgress) + Send),
) -> Result<PullReport, RemoteError> {
    let view = match view {
        Some(view) => view,
        None => read_status(network, me, &link.key).await?,
    };
    check_owner(db, link, &view).await?;
    // Where the remote stands, before anything is fetched.
    progress(&PullProgress {
        remote_version: view.status.db_version,
        ..PullProgress::default()
    });
    let local: LocalState = db.state().await?;
    if view.status.site_id == local.site_id {
        return Err(RemoteError::SameSite);
    }
    if db
        .align_cursor(&link.name, view.status.site_id, &link.accept)
        .await?
    {
        tracing::info!(target: "ddcp", remote_name = %link.name, authors = %link.accept.authors,
            filter = %link.accept.filter,
            "What it may bring changed: pulling its changes again from the start");
    }
    // A pull from the start asks for everything the remote holds, this database's own changes
    // too: after a restore, what it wrote since the backup comes back from the peers that
    // pulled it (a merge of what it has is a no-op). Later pulls leave them out.
    let from_start = db.cursor(view.status.site_id).await? == crate::sync::Cursor::START;
    let asker = if from_start {
        SiteId([0; 16])
    } else {
        local.site_id
    };
    let mut pull = Pull {
        network,
        db,
        me,
        link,
        asker,
        local,
        route: network.import_route(&view.status.route)?,
        remote: view.status,
        session: view.session,
        fit: Arc::default(),
        listen,
        request_fingerprint: SchemaFingerprint([0; 32]),
        report: PullReport::default(),
    };
    pull.fit_schema(Ask::WhenItDiffers).await?;
    pull.run(progress).await?;
    let report = pull.report;
    if report.applied {
        tracing::info!(
            target: "ddcp",
            remote_name = ?link.name.as_str(),
            db_version = report.remote_version.0,
            changes = report.changes,
            refused = report.refused,
            "Pulled changes from remote database"
        );
    }
    Ok(report)
}

struct Pull<'a> {
    network: &'a Network,
    db: &'a DbHandle,
    me: &'a MemberKeys,
    link: &'a RemoteLink,
    /// Who the requests say asks: changes this site wrote are left out of the answers.
    asker: SiteId,
    local: LocalState,
    remote: Status,
    session: Option<Session>,
    /// Released when replaced by the remote's next route, and when the pull ends.
    route: ImportedRoute,
    /// How the remote's schema fits this database's: what of its changes must wait here.
    fit: Arc<SchemaFit>,
    /// Where the remote is asked to send notes, if anywhere.
    listen: Option<Listen>,
    /// The schema the requests name: the remote's own, once this database knows it fits.
    request_fingerprint: SchemaFingerprint,
    report: PullReport,
}

impl Pull<'_> {
    async fn run(
        &mut self,
        progress: &mut (dyn FnMut(&PullProgress) + Send),
    ) -> Result<(), RemoteError> {
        let mut puller = self.new_puller().await?;
        let mut failures = 0;
        // When the calls of the current run of failures began to fail.
        let mut failing_since = None;
        let mut idle_rounds = 0;
        let mut busy_rounds = 0;
        let mut cursor_reset = false;
        let mut refitted = false;
        let mut refused_rounds = 0;
        // When the page being fetched was first asked for (for the debug log of where a
        // pull's time goes).
        let mut asked_at = Instant::now();
        // What became of the answers for the next page, fetched and taken in while the last
        // one was applied.
        let mut prefetched = None;
        loop {
            // When this round's calls went out (a failing round counts from then).
            let round_sent = Instant::now();
            // The puller may be up to date with a page fetched ahead and not applied yet.
            let outcomes = match prefetched.take() {
                Some(outcomes) => outcomes,
                None if puller.is_up_to_date() => break,
                None => {
                    let answers = self.call_all(puller.requests()).await;
                    receive_all(&mut puller, answers)
                }
            };
            let mut answered = false;
            let mut moved = false;
            let mut busy = false;
            let mut refused = false;
            let mut last_error = None;
            for outcome in outcomes {
                let received = match outcome {
                    Outcome::Received(received) => received,
                    Outcome::Failed(err) => {
                        last_error = Some(err);
                        continue;
                    }
                };
                answered = true;
                match received {
                    Ok(Received::Ignored) => {}
                    Ok(Received::Progress { fragments, of }) => {
                        moved = true;
                        progress(&self.progress(Some((fragments, of))));
                    }
                    Ok(Received::Page(page)) => {
                        let (remote_version, incarnation) = (page.db_version, page.incarnation);
                        let (changes, complete) = (page.changes.len(), page.group_complete);
                        let fetched_at = Instant::now();
                        tracing::debug!(target: "ddcp_latency", db_version = remote_version.0, "page fetched");
                        // The next page is fetched and taken in while the database takes
                        // this one: the puller's cursor has moved past it already. Should the
                        // database refuse this one, what was fetched is dropped.
                        let accept = async {
                            let accepted = self.db.accept(
                                self.remote.site_id,
                                page,
                                &self.link.accept,
                                &self.fit,
                            );
                            let accepted = accepted.await;
                            tracing::debug!(target: "ddcp_latency", db_version = remote_version.0, "page applied");
                            (accepted, fetched_at.elapsed())
                        };
                        let ((accepted, accept_took), next) = tokio::join!(accept, async {
                            match puller.is_up_to_date() {
                                true => None,
                                false => Some(self.fetch_ahead(&mut puller).await),
                            }
                        });
                        tracing::debug!(target: "ddcp", remote_name = %self.link.name, changes,
                            group_complete = complete,
                            fetch_ms = (fetched_at - asked_at).as_secs_f64() * 1e3,
                            accept_ms = accept_took.as_secs_f64() * 1e3,
                            "Pulled a page");
                        asked_at = fetched_at;
                        if accepted.is_ok() {
                            prefetched = next;
                        }
                        match accepted {
                            Ok(outcome) => {
                                moved = true;
                                let name = self.link.name.as_str();
                                metrics::applied(self.db.metrics(), name, outcome.admitted);
                                metrics::refused_changes(self.db.metrics(), name, outcome.refused);
                                self.report.pages += 1;
                                self.report.changes += outcome.admitted;
                                self.report.refused += outcome.refused;
                                self.report.remote_version = remote_version;
                                self.report.remote_incarnation = incarnation;
                                let applied = outcome.applied;
                                self.report.applied |=
                                    applied.db_version_after != applied.db_version_before;
                                progress(&self.progress(None));
                            }
                            // Another pull of this remote moved the cursor: start from it.
                            Err(DbCallError::Db(DbError::StaleCursor)) => {
                                puller = self.new_puller().await?
                            }
                            // The cursor is of the remote's life before a restore: its
                            // versions since the backup name other changes now.
                            Err(DbCallError::Db(DbError::RemoteRestored)) if !cursor_reset => {
                                tracing::warn!(target: "ddcp", remote_name = %self.link.name,
                                    "The remote was restored from a backup since the last pull; pulling its changes again from the start");
                                cursor_reset = true;
                                self.db.reset_cursor(self.remote.site_id).await?;
                                puller = self.new_puller().await?;
                            }
                            Err(err) => return Err(err.into()),
                        }
                    }
                    Err(PullError::Refused(error)) => match error.code {
                        ErrorCode::UnknownCursor if !cursor_reset => {
                            // The remote's database was replaced: start over with it.
                            tracing::warn!(target: "ddcp", remote_name = %self.link.name,
                                "The remote does not know this database's cursor; starting over");
                            cursor_reset = true;
                            self.db.reset_cursor(self.remote.site_id).await?;
                            puller = self.new_puller().await?;
                        }
                        ErrorCode::TooBusy => {
                            metrics::remote_busy(self.db.metrics(), self.link.name.as_str());
                            busy = true;
                        }
                        ErrorCode::NotAllowed => refused = true,
                        // The remote's schema moved since its Status was read (an
                        // upgrade while it serves): fitted again, once a pull.
                        ErrorCode::SchemaMismatch if !refitted => {
                            refitted = true;
                            // Its Status may not name the new schema yet: asked for it.
                            self.fit_schema(Ask::Always).await?;
                            puller = self.new_puller().await?;
                        }
                        ErrorCode::SchemaMismatch => return Err(self.schema_mismatch().await),
                        _ => return Err(RemoteError::Refused(error)),
                    },
                    Err(err) => return Err(RemoteError::Garbage(err)),
                }
            }
            if refused && !moved {
                // The remote's key epoch moved on (a member was removed) or its access
                // changed: read its Status again. One that does not open for this database
                // ends the pull (not a member); one that does may be the previous one still:
                // ask again a little later, a few times.
                refused_rounds += 1;
                if refused_rounds > REFUSED_ROUNDS {
                    return Err(RemoteError::NotAMember(self.me.id()));
                }
                tokio::time::sleep(REFUSED_PAUSE).await;
                self.refresh_route().await?;
                continue;
            }
            if answered {
                (failures, failing_since) = (0, None);
                if moved {
                    (idle_rounds, busy_rounds) = (0, 0);
                    refused_rounds = 0;
                } else if busy {
                    busy_rounds += 1;
                    if busy_rounds >= BUSY_ROUNDS {
                        return Err(RemoteError::TooBusy);
                    }
                    tokio::time::sleep(busy_pause()).await;
                } else {
                    idle_rounds += 1;
                    if idle_rounds >= IDLE_ROUNDS {
                        return Err(RemoteError::NoProgress);
                    }
                }
                continue;
            }
            failures += 1;
            let since = *failing_since.get_or_insert(round_sent);
            if failures >= CALL_ATTEMPTS {
                if since.elapsed() >= ROUTE_PATIENCE {
                    return Err(last_error.map_or(RemoteError::NotPublished, RemoteError::from));
                }
                if failures == CALL_ATTEMPTS {
                    tracing::info!(target: "ddcp", remote_name = %self.link.name,
                        "The remote's route does not answer: reading its status again until it names one that does (up to a minute)");
                }
                tokio::time::sleep(ROUTE_PAUSE).await;
            }
            // The route may have died with the remote's restart, or with a node it went
            // through: its Status names the new one once the remote has made it.
            self.refresh_route_patiently(since).await?;
        }
        Ok(())
    }

    fn progress(&self, fragments: Option<(u32, u32)>) -> PullProgress {
        PullProgress {
            pages: self.report.pages,
            changes: self.report.changes,
            fragments,
            remote_version: self.report.remote_version,
        }
    }

    async fn new_puller(&self) -> Result<Puller, RemoteError> {
        let cursor = self.db.cursor(self.remote.site_id).await?;
        let puller = Puller::new(
            self.asker,
            self.remote.site_id,
            self.request_fingerprint,
            cursor,
            DEFAULT_PAGE_BYTES,
        );
        Ok(match &self.listen {
            Some(listen) => puller.with_listen(listen.clone()),
            None => puller,
        })
    }

    /// How a request is sent: as it is to a public remote, signed to a private one.
    fn caller(&self) -> Caller {
        Caller {
            network: self.network.clone(),
            route: self.route.id().clone(),
            sealed: self
                .session
                .map(|session| (session, self.me.clone(), self.link.key.clone())),
        }
    }

    /// Fetches the puller's next page and takes it in, while the database applies the last:
    /// the request for it, then its fragments a window at a time, until the page is whole or
    /// an answer is anything but progress (a failure, a refusal, garbage, a repeat), which the
    /// pull's loop then deals with as with any other. Each round goes on only when every
    /// answer was a fragment the puller did not have, so it ends.
    async fn fetch_ahead(&self, puller: &mut Puller) -> Vec<Outcome> {
        let mut outcomes = Vec::new();
        loop {
            let answers = self.call_all(puller.requests()).await;
            let round = receive_all(puller, answers);
            let only_progress = !round.is_empty()
                && round.iter().all(|outcome| {
                    matches!(outcome, Outcome::Received(Ok(Received::Progress { .. })))
                });
            outcomes.extend(round);
            // Only a page (never progress) makes the puller up to date.
            if !only_progress {
                return outcomes;
            }
        }
    }

    /// Sends `requests` at once; their answers (or failures) in any order.
    async fn call_all(&self, requests: Vec<Vec<u8>>) -> Vec<Result<Vec<u8>, NetError>> {
        let sizes: Vec<usize> = requests.iter().map(Vec::len).collect();
        let mut calls = JoinSet::new();
        for request in requests {
            let caller = self.caller();
            calls.spawn(async move { caller.call(request).await });
        }
        let mut answers = Vec::new();
        let sent: usize = sizes.iter().sum();
        while let Some(joined) = calls.join_next().await {
            // A call task cannot panic short of a bug in veilid-core; count it as lost.
            answers.push(joined.unwrap_or_else(|err| Err(NetError::Call(err.to_string()))));
        }
        let received = answers.iter().flatten().map(Vec::len).sum();
        metrics::traffic(self.db.metrics(), received, sent);
        answers
    }
}

/// What became of one call: it failed, or the puller made sense of its answer (or not).
enum Outcome {
    Failed(NetError),
    Received(Result<Received, PullError>),
}

/// The puller makes sense of `answers`, in order.
fn receive_all(puller: &mut Puller, answers: Vec<Result<Vec<u8>, NetError>>) -> Vec<Outcome> {
    answers
        .into_iter()
        .map(|answer| match answer {
            Ok(bytes) => Outcome::Received(puller.receive(&bytes)),
            Err(err) => Outcome::Failed(err),
        })
        .collect()
}

/// [`BUSY_PAUSE`] and a random part of as much again.
fn busy_pause() -> Duration {
    use std::hash::BuildHasher;
    let random = std::collections::hash_map::RandomState::new().hash_one(0u8);
    BUSY_PAUSE + BUSY_PAUSE.mul_f64((random % 1000) as f64 / 1000.0)
}
