//! The answering side of the protocol: turns request bytes into answer bytes, every answer at
//! most one message. What it reads comes through [`ChangeSource`], so the logic is tested
//! without a database and the database layer stays free of protocol rules.

mod build;

use std::collections::VecDeque;
use std::ops::RangeInclusive;
use std::sync::Arc;

use super::change::Change;
use super::codec::{decode_request, encode_message};
use super::compress::Compression;
use super::cursor::Cursor;
use super::filter::{ChangeFilter, RowPredicate};
use super::fragment::{self, FRAGMENT_BYTES};
use super::ids::{DbVersion, Incarnation, SiteId};
use super::page::Visit;
use super::protocol::{
    ChangesRequest, ErrorCode, Fragment, FragmentRequest, Hash, MAX_ANSWER_BYTES, Message,
    ProtocolError, PublishedSchema,
};
use super::schema::SchemaDesc;
use super::schema_history::SchemaHistory;
use super::shared_pages::{PageKey, SharedPage, SharedPages};
use build::{Read, Standing, page, page_budget};

/// A failure of the source (the database). The asker is told only that the database could not
/// answer; the detail (SQLite's message, paths) stays here, for the local log.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);

/// What an asker is told when the database fails: nothing about this machine.
pub const INTERNAL_REASON: &str = "the database could not answer; ask again later";

/// The answer to a request when the database failed before a responder could run: the asker
/// is told only [`INTERNAL_REASON`].
pub fn internal_answer() -> Vec<u8> {
    let error = ProtocolError::new(ErrorCode::Internal, INTERNAL_REASON);
    encode_message(&Message::Error(error), Compression::None)
}

/// The answer to any request while this database answers as many as it will at once: the
/// asker waits a moment and asks again.
pub fn too_busy_answer() -> Vec<u8> {
    let error = ProtocolError::new(ErrorCode::TooBusy, "too many requests; ask again shortly");
    encode_message(&Message::Error(error), Compression::None)
}

/// Why an answer is an error: a refusal the asker is told about as it is, or a failure of the
/// source, whose detail is kept for the local log.
enum Failure {
    Refused(ProtocolError),
    Source(SourceError),
}

impl From<ProtocolError> for Failure {
    fn from(err: ProtocolError) -> Self {
        Failure::Refused(err)
    }
}

impl From<SourceError> for Failure {
    fn from(err: SourceError) -> Self {
        Failure::Source(err)
    }
}

/// What the answering side reads: one database's changes and shape.
pub trait ChangeSource {
    /// The database's site id.
    fn site_id(&self) -> Result<SiteId, SourceError>;
    /// Its newest version.
    fn db_version(&self) -> Result<DbVersion, SourceError>;
    /// Its life since its last restore, which the versions count in.
    fn incarnation(&self) -> Result<Incarnation, SourceError>;
    /// Its CRR schema.
    fn schema(&self) -> Result<SchemaDesc, SourceError>;
    /// The migrations that made its schema, oldest first.
    fn schema_history(&self) -> Result<SchemaHistory, SourceError>;
    /// Offers the changes after `after` not authored by `except`, in cursor order, to `visit`
    /// until it answers [`Visit::Stop`].
    fn visit_changes(
        &self,
        after: &Cursor,
        except: SiteId,
        visit: &mut dyn FnMut(Change) -> Visit,
    ) -> Result<(), SourceError>;
    /// Whether the row of `table` whose packed key is `pk` holds `predicate` now (false when
    /// there is no such row).
    fn row_matches(
        &self,
        table: &str,
        pk: &[u8],
        predicate: &RowPredicate,
    ) -> Result<bool, SourceError>;
    /// The row's current cells (its sentinel too, when it has one) whose db_version is at most
    /// `through`, as `crsql_changes` would give them.
    fn row_cells(
        &self,
        table: &str,
        pk: &[u8],
        through: DbVersion,
    ) -> Result<Vec<Change>, SourceError>;
    /// Whether the database holds a change authored by `site` at a version within `versions`.
    fn holds_changes_of(
        &self,
        site: SiteId,
        versions: RangeInclusive<DbVersion>,
    ) -> Result<bool, SourceError>;
}

/// The largest page budget a responder grants, whatever the asker wants: bounds what one request
/// makes it read and hold.
pub const MAX_PAGE_BUDGET: u32 = 4 << 20;

/// Bytes of fragmented answers kept for the fragment requests that follow: a few pages per
/// puller being served. A forgotten answer is rebuilt, so this bounds memory, not correctness.
const CACHE_BYTES: usize = 16 << 20;

/// Answers requests; keeps recent fragmented answers so fragments need not rebuild them.
pub struct Responder {
    compression: Compression,
    /// Fragmented answers, with the filter they were read through: a reader gets fragments of
    /// answers built for its own filter only.
    cache: VecDeque<(Hash, ChangeFilter, Arc<Vec<u8>>)>,
    cached_bytes: usize,
    /// Big pages read through no filter, kept for the next asker of the same page.
    shared: SharedPages,
    /// Pages answered with a page kept for another asker.
    pages_shared: u64,
    served: Option<Served>,
    source_failure: Option<SourceError>,
}

impl std::fmt::Debug for Responder {
    /// What it holds, in counts.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder")
            .field("compression", &self.compression)
            .field("cached_answers", &self.cache.len())
            .field("cached_bytes", &self.cached_bytes)
            .field("pages_shared", &self.pages_shared)
            .finish_non_exhaustive()
    }
}

/// A page built for a peer, for the record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Served {
    /// Changes in the page.
    pub changes: u64,
}

impl Default for Responder {
    fn default() -> Self {
        Responder::new(Compression::default())
    }
}

impl Responder {
    /// A responder compressing pages with `compression`.
    pub fn new(compression: Compression) -> Self {
        Responder {
            compression,
            cache: VecDeque::new(),
            cached_bytes: 0,
            shared: SharedPages::default(),
            pages_shared: 0,
            served: None,
            source_failure: None,
        }
    }

    /// The answer to `request`: always one message of at most [`MAX_ANSWER_BYTES`] (room left to seal it), an error
    /// message when the request is garbage or cannot be served. When the source failed, the
    /// answer says only [`INTERNAL_REASON`]; [`Responder::take_source_failure`] has the detail.
    pub fn respond(&mut self, source: &impl ChangeSource, request: &[u8]) -> Vec<u8> {
        let everything = ChangeFilter::default();
        self.respond_within(source, request, MAX_PAGE_BUDGET, &everything)
    }

    /// [`Responder::respond`], with pages of at most `budget` bytes of changes whatever the
    /// asker asked for (a busy node keeps every answer cheap; the asker just asks more often),
    /// holding only what `filter` lets this asker read.
    pub fn respond_within(
        &mut self,
        source: &impl ChangeSource,
        request: &[u8],
        budget: u32,
        filter: &ChangeFilter,
    ) -> Vec<u8> {
        let answer = match decode_request(request) {
            Ok(Message::FragmentRequest(fragment)) => {
                self.fragment(source, &fragment, budget, filter)
            }
            Ok(Message::ChangesRequest(request)) => self.changes(source, &request, budget, filter),
            Ok(message) => self
                .answer(source, &message, budget, filter)
                .map(|answer| self.fit(answer, filter).0),
            Err(err) => Err(ProtocolError::new(ErrorCode::Malformed, err.to_string()).into()),
        };
        let error = match answer {
            Ok(answer) => return answer,
            Err(Failure::Refused(error)) => error,
            Err(Failure::Source(failure)) => {
                self.source_failure = Some(failure);
                ProtocolError::new(ErrorCode::Internal, INTERNAL_REASON)
            }
        };
        encode_message(&Message::Error(error), Compression::None)
    }

    /// Why the source failed during the last [`Responder::respond`], if it did: for the local
    /// log, never for the asker.
    pub fn take_source_failure(&mut self) -> Option<SourceError> {
        self.source_failure.take()
    }

    /// The page the last [`Responder::respond`] built, if it built one (a fragment request
    /// only sends parts of a page counted already).
    pub fn take_served(&mut self) -> Option<Served> {
        self.served.take()
    }

    /// Pages answered with a page built for another asker (one that read none of its changes,
    /// kept while the database did not change).
    pub fn pages_shared(&self) -> u64 {
        self.pages_shared
    }

    /// The answer to a request for changes: a page kept for another asker when this one may
    /// have it, else one built for it (and kept, when every asker may have it). A kept page
    /// of the size asked for is given even when `budget` is smaller (a loaded node): it costs
    /// nothing to build, and the pullers it goes to stay on the same pages.
    fn changes(
        &mut self,
        source: &impl ChangeSource,
        request: &ChangesRequest,
        budget: u32,
        filter: &ChangeFilter,
    ) -> Result<Vec<u8>, Failure> {
        let stand = Standing::read(source)?;
        let schema = stand.schema.fingerprint();
        let key = |budget: usize| PageKey {
            since: request.since.clone(),
            budget,
            schema,
            db_version: stand.db_version,
            incarnation: stand.incarnation,
        };
        let (asked, granted) = (
            page_budget(request, MAX_PAGE_BUDGET),
            page_budget(request, budget),
        );
        // (An asker of another schema is told so, whatever was kept.)
        let shareable = filter.is_open() && request.schema_fingerprint == schema;
        if shareable {
            for size in [asked, granted] {
                if let Some(kept) = self.shared.find(&key(size), request.asker)
                    && self.cached(&kept.hash, filter).is_some()
                {
                    let (changes, manifest) = (kept.changes, kept.manifest.clone());
                    self.served = Some(Served { changes });
                    self.pages_shared += 1;
                    return Ok(manifest);
                }
            }
        }
        let key = key(granted);
        let mut read = Read::default();
        let page = page(source, &stand, request, budget, filter, &mut read)?;
        // Where the asker's changes, left out, would have been: from the cursor to the newest
        // change read, or to the end when the page went that far.
        let read_to = match page.more {
            true => read.newest,
            false => stand.db_version,
        };
        let changes = page.changes.len() as u64;
        self.served = Some(Served { changes });
        let answer = encode_message(&Message::ChangesPage(page), self.compression);
        let (sent, fragmented) = self.fit(answer, filter);
        if let Some(hash) = fragmented
            && shareable
            && !source.holds_changes_of(request.asker, request.since.db_version..=read_to)?
        {
            self.shared.keep(SharedPage {
                key,
                authors: read.authors,
                changes,
                hash,
                manifest: sent.clone(),
            });
        }
        Ok(sent)
    }

    /// The whole answer to a request other than a fragment request, however big.
    fn answer(
        &mut self,
        source: &impl ChangeSource,
        message: &Message,
        budget: u32,
        filter: &ChangeFilter,
    ) -> Result<Vec<u8>, Failure> {
        let answer = match message {
            Message::ChangesRequest(request) => {
                let stand = Standing::read(source)?;
                let page = page(
                    source,
                    &stand,
                    request,
                    budget,
                    filter,
                    &mut Read::default(),
                )?;
                self.served = Some(Served {
                    changes: page.changes.len() as u64,
                });
                Message::ChangesPage(page)
            }
            Message::SchemaRequest => Message::Schema(PublishedSchema {
                shape: source.schema()?,
                history: source.schema_history()?,
            }),
            _ => {
                return Err(ProtocolError::new(
                    ErrorCode::Malformed,
                    "not a request this database answers",
                )
                .into());
            }
        };
        Ok(encode_message(&answer, self.compression))
    }

    /// `answer` itself when it fits one message, else its manifest (and it goes to the cache,
    /// under the hash given back).
    fn fit(&mut self, answer: Vec<u8>, filter: &ChangeFilter) -> (Vec<u8>, Option<Hash>) {
        if answer.len() <= MAX_ANSWER_BYTES {
            return (answer, None);
        }
        let manifest = fragment::manifest(&answer);
        let hash = manifest.hash;
        self.remember(hash, filter, Arc::new(answer));
        (
            encode_message(&Message::Fragmented(manifest), Compression::None),
            Some(hash),
        )
    }

    /// The fragmented answer kept under `hash` for readers through `filter`.
    fn cached(&self, hash: &Hash, filter: &ChangeFilter) -> Option<Arc<Vec<u8>>> {
        self.cache
            .iter()
            .find(|(cached, cached_filter, _)| cached == hash && cached_filter == filter)
            .map(|(_, _, answer)| Arc::clone(answer))
    }

    fn remember(&mut self, hash: Hash, filter: &ChangeFilter, answer: Arc<Vec<u8>>) {
        let known = |(cached, cached_filter, _): &(Hash, ChangeFilter, _)| {
            *cached == hash && cached_filter == filter
        };
        if self.cache.iter().any(known) {
            return;
        }
        self.cached_bytes += answer.len();
        self.cache.push_back((hash, filter.clone(), answer));
        while self.cached_bytes > CACHE_BYTES && self.cache.len() > 1 {
            let (_, _, old) = self.cache.pop_front().expect("not empty");
            self.cached_bytes -= old.len();
        }
    }

    fn fragment(
        &mut self,
        source: &impl ChangeSource,
        request: &FragmentRequest,
        budget: u32,
        filter: &ChangeFilter,
    ) -> Result<Vec<u8>, Failure> {
        let answer = match self.cached(&request.hash, filter) {
            Some(answer) => answer,
            None => {
                // Forgotten (evicted, or this process restarted): build the answer again; it is
                // the same unless the database changed meanwhile.
                let original = decode_request(&request.original)
                    .map_err(|err| ProtocolError::new(ErrorCode::Malformed, err.to_string()))?;
                let answer = Arc::new(self.answer(source, &original, budget, filter)?);
                // A rebuilt page was counted when it was first built (or is not sent at all).
                self.served = None;
                if fragment::hash(&answer) != request.hash {
                    return Err(ProtocolError::new(
                        ErrorCode::FragmentGone,
                        "the answer changed; ask again",
                    )
                    .into());
                }
                self.remember(request.hash, filter, Arc::clone(&answer));
                answer
            }
        };
        let bytes = fragment::fragment(&answer, request.index).ok_or_else(|| {
            ProtocolError::new(ErrorCode::Malformed, "fragment index out of range")
        })?;
        debug_assert!(bytes.len() <= FRAGMENT_BYTES);
        Ok(encode_message(
            &Message::Fragment(Fragment {
                hash: request.hash,
                index: request.index,
                bytes: bytes.to_vec(),
            }),
            Compression::None,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::decode_message;
    use crate::schema_fetch::schema_request;

    /// A database that fails every read, with the kind of detail SQLite gives.
    struct Failing;

    const DETAIL: &str = "disk I/O error at /home/alice/private/app.db";

    impl ChangeSource for Failing {
        fn site_id(&self) -> Result<SiteId, SourceError> {
            Err(SourceError(DETAIL.into()))
        }
        fn db_version(&self) -> Result<DbVersion, SourceError> {
            Err(SourceError(DETAIL.into()))
        }
        fn incarnation(&self) -> Result<Incarnation, SourceError> {
            Err(SourceError(DETAIL.into()))
        }
        fn schema(&self) -> Result<SchemaDesc, SourceError> {
            Err(SourceError(DETAIL.into()))
        }
        fn schema_history(&self) -> Result<SchemaHistory, SourceError> {
            Err(SourceError(DETAIL.into()))
        }
        fn visit_changes(
            &self,
            _after: &Cursor,
            _except: SiteId,
            _visit: &mut dyn FnMut(Change) -> Visit,
        ) -> Result<(), SourceError> {
            Err(SourceError(DETAIL.into()))
        }
        fn row_matches(
            &self,
            _table: &str,
            _pk: &[u8],
            _predicate: &RowPredicate,
        ) -> Result<bool, SourceError> {
            Err(SourceError(DETAIL.into()))
        }
        fn row_cells(
            &self,
            _table: &str,
            _pk: &[u8],
            _through: DbVersion,
        ) -> Result<Vec<Change>, SourceError> {
            Err(SourceError(DETAIL.into()))
        }
        fn holds_changes_of(
            &self,
            _site: SiteId,
            _versions: RangeInclusive<DbVersion>,
        ) -> Result<bool, SourceError> {
            Err(SourceError(DETAIL.into()))
        }
    }

    #[test]
    fn a_failing_database_tells_the_asker_a_code_and_keeps_the_detail_local() {
        let mut responder = Responder::default();
        let answer = responder.respond(&Failing, &schema_request());
        match decode_message(&answer).unwrap() {
            Message::Error(error) => {
                assert_eq!(error.code, ErrorCode::Internal);
                assert_eq!(error.message, INTERNAL_REASON);
            }
            other => panic!("not an error: {other:?}"),
        }
        assert!(!String::from_utf8_lossy(&answer).contains("/home/alice"));
        assert_eq!(
            responder.take_source_failure().map(|failure| failure.0),
            Some(DETAIL.to_string())
        );
        assert!(responder.take_source_failure().is_none());
        // A refusal is no failure of this database: nothing to log.
        responder.respond(&Failing, b"garbage");
        assert!(responder.take_source_failure().is_none());
    }
}
