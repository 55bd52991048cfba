//! The answering side of the protocol: turns request bytes into answer bytes, every answer at
//! most one message. What it reads comes through [`ChangeSource`], so the logic is tested
//! without a database and the database layer stays free of protocol rules.

use std::collections::VecDeque;
use std::sync::Arc;

use super::change::Change;
use super::codec::{decode_message, encode_message};
use super::compress::Compression;
use super::cursor::Cursor;
use super::fragment::{self, FRAGMENT_BYTES};
use super::ids::{DbVersion, SiteId};
use super::page::{PageBuilder, Visit};
use super::protocol::{
    ChangesPage, ChangesRequest, ErrorCode, Fragment, FragmentRequest, Hash, MAX_ANSWER_BYTES,
    Message, ProtocolError,
};
use super::schema::SchemaDesc;

/// A failure of the source (the database). The asker is told only that the database could not
/// answer; the detail (SQLite's message, paths) stays here, for the local log.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);

/// What an asker is told when the database fails: nothing about this machine.
pub const INTERNAL_REASON: &str = "the database could not answer; ask again later";

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
    /// Its CRR schema.
    fn schema(&self) -> Result<SchemaDesc, SourceError>;
    /// Offers the changes after `after` not authored by `except`, in cursor order, to `visit`
    /// until it answers [`Visit::Stop`].
    fn visit_changes(
        &self,
        after: &Cursor,
        except: SiteId,
        visit: &mut dyn FnMut(Change) -> Visit,
    ) -> Result<(), SourceError>;
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
    cache: VecDeque<(Hash, Arc<Vec<u8>>)>,
    cached_bytes: usize,
    served: Option<Served>,
    source_failure: Option<SourceError>,
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
            served: None,
            source_failure: None,
        }
    }

    /// The answer to `request`: always one message of at most [`MAX_ANSWER_BYTES`] (room left to seal it), an error
    /// message when the request is garbage or cannot be served. When the source failed, the
    /// answer says only [`INTERNAL_REASON`]; [`Responder::take_source_failure`] has the detail.
    pub fn respond(&mut self, source: &impl ChangeSource, request: &[u8]) -> Vec<u8> {
        self.respond_within(source, request, MAX_PAGE_BUDGET)
    }

    /// [`Responder::respond`], with pages of at most `budget` bytes of changes whatever the
    /// asker asked for (a busy node keeps every answer cheap; the asker just asks more often).
    pub fn respond_within(
        &mut self,
        source: &impl ChangeSource,
        request: &[u8],
        budget: u32,
    ) -> Vec<u8> {
        let answer = match decode_message(request) {
            Ok(Message::FragmentRequest(fragment)) => self.fragment(source, &fragment, budget),
            Ok(message) => self
                .answer(source, &message, budget)
                .map(|answer| self.fit(answer)),
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

    /// The whole answer to a request other than a fragment request, however big.
    fn answer(
        &mut self,
        source: &impl ChangeSource,
        message: &Message,
        budget: u32,
    ) -> Result<Vec<u8>, Failure> {
        let answer = match message {
            Message::ChangesRequest(request) => {
                let page = page(source, request, budget)?;
                self.served = Some(Served {
                    changes: page.changes.len() as u64,
                });
                Message::ChangesPage(page)
            }
            Message::SchemaRequest => Message::Schema(source.schema()?),
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

    /// `answer` itself when it fits one message, else its manifest (and it goes to the cache).
    fn fit(&mut self, answer: Vec<u8>) -> Vec<u8> {
        if answer.len() <= MAX_ANSWER_BYTES {
            return answer;
        }
        let manifest = fragment::manifest(&answer);
        self.remember(manifest.hash, Arc::new(answer));
        encode_message(&Message::Fragmented(manifest), Compression::None)
    }

    fn remember(&mut self, hash: Hash, answer: Arc<Vec<u8>>) {
        if self.cache.iter().any(|(cached, _)| *cached == hash) {
            return;
        }
        self.cached_bytes += answer.len();
        self.cache.push_back((hash, answer));
        while self.cached_bytes > CACHE_BYTES && self.cache.len() > 1 {
            let (_, old) = self.cache.pop_front().expect("not empty");
            self.cached_bytes -= old.len();
        }
    }

    fn fragment(
        &mut self,
        source: &impl ChangeSource,
        request: &FragmentRequest,
        budget: u32,
    ) -> Result<Vec<u8>, Failure> {
        let cached = self
            .cache
            .iter()
            .find(|(hash, _)| *hash == request.hash)
            .map(|(_, answer)| Arc::clone(answer));
        let answer = match cached {
            Some(answer) => answer,
            None => {
                // Forgotten (evicted, or this process restarted): build the answer again; it is
                // the same unless the database changed meanwhile.
                let original = decode_message(&request.original)
                    .map_err(|err| ProtocolError::new(ErrorCode::Malformed, err.to_string()))?;
                let answer = Arc::new(self.answer(source, &original, budget)?);
                // A rebuilt page was counted when it was first built (or is not sent at all).
                self.served = None;
                if fragment::hash(&answer) != request.hash {
                    return Err(ProtocolError::new(
                        ErrorCode::FragmentGone,
                        "the answer changed; ask again",
                    )
                    .into());
                }
                self.remember(request.hash, Arc::clone(&answer));
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

/// The page that answers `request`.
fn page(
    source: &impl ChangeSource,
    request: &ChangesRequest,
    budget: u32,
) -> Result<ChangesPage, Failure> {
    let schema = source.schema()?;
    let ours = schema.fingerprint();
    if ours != request.schema_fingerprint {
        return Err(ProtocolError::new(
            ErrorCode::SchemaMismatch,
            format!(
                "CRR schema {} differs from the asker's {}",
                ours, request.schema_fingerprint
            ),
        )
        .into());
    }
    let db_version = source.db_version()?;
    if request.since.db_version > db_version {
        return Err(ProtocolError::new(
            ErrorCode::UnknownCursor,
            format!(
                "cursor at db_version {} is ahead of this database ({db_version})",
                request.since.db_version
            ),
        )
        .into());
    }
    let budget = request.max_bytes.clamp(1, budget.clamp(1, MAX_PAGE_BUDGET)) as usize;
    let mut builder = PageBuilder::new(request.since.clone(), budget);
    source.visit_changes(&request.since, request.asker, &mut |change| {
        builder.offer(change)
    })?;
    let plan = builder.finish();
    Ok(ChangesPage {
        site_id: source.site_id()?,
        since: request.since.clone(),
        after: plan.after,
        group_complete: plan.group_complete,
        more: plan.more,
        db_version,
        changes: plan.changes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pull::schema_request;

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
        fn schema(&self) -> Result<SchemaDesc, SourceError> {
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
