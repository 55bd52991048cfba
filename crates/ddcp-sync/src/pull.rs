//! The asking side of the protocol: a state machine that says what to send and makes sense of
//! what comes back, whatever the network does to it (loss, repeats, reordering). It holds at
//! most one answer being reassembled; the cursor it advances is persisted by whoever applies
//! the pages (see `db`), so a restarted puller resumes where the database says.

use super::codec::{CodecError, decode_message, encode_message};
use super::compress::Compression;
use super::cursor::Cursor;
use super::fragment::{Reassembly, ReassemblyError};
use super::ids::SiteId;
use super::protocol::{
    ChangesPage, ChangesRequest, ErrorCode, FragmentRequest, Hash, Listen, Message, ProtocolError,
};
use super::schema::SchemaFingerprint;

/// Fragment requests in flight at once.
pub const FRAGMENT_WINDOW: usize = 8;

/// Default page budget. A page costs two round trips (manifest, then fragments 8 at a time)
/// plus its apply, so bigger pages move a backlog faster: measured on the private network
/// (benches/network.rs, 20k rows), 256 KiB pages ran at 0.41 of raw app_call throughput,
/// 1 MiB at 0.55, 4 MiB no better. Small changes still travel in one message: a page is only
/// as big as what there is to send.
pub const DEFAULT_PAGE_BYTES: u32 = 1 << 20;

/// Why a pull cannot go on as it is.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // each #[error] says what the variant means
pub enum PullError {
    #[error("remote sent a malformed answer: {0}")]
    Malformed(#[from] CodecError),
    #[error("remote sent inconsistent fragments: {0}")]
    Fragments(#[from] ReassemblyError),
    #[error("remote sent a page that does not follow from the request: {0}")]
    BadPage(&'static str),
    #[error("remote refused: {0}")]
    Refused(ProtocolError),
}

impl PullError {
    /// The remote's error code, when the remote refused.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            PullError::Refused(error) => Some(error.code),
            _ => None,
        }
    }
}

/// What an answer meant.
#[derive(Debug, PartialEq)]
pub enum Received {
    /// A late, repeated or unrelated answer (a fragment the puller holds already too):
    /// nothing to do.
    Ignored,
    /// A fragmented answer's manifest, or a fragment of it the puller did not hold: send
    /// [`Puller::requests`] again.
    Progress {
        /// Fragments received so far ...
        fragments: u32,
        /// ... of this many.
        of: u32,
    },
    /// A page to apply. The puller's cursor has moved to `page.after`.
    Page(Box<ChangesPage>),
}

/// Pulls one remote database's changes, page after page.
#[derive(Debug)]
pub struct Puller {
    asker: SiteId,
    remote: SiteId,
    schema_fingerprint: SchemaFingerprint,
    max_bytes: u32,
    cursor: Cursor,
    /// Where the remote is asked to tell this puller of its new versions, if anywhere.
    listen: Option<Listen>,
    /// The encoded request for the page after `cursor`.
    request: Vec<u8>,
    reassembly: Option<Reassembly>,
    up_to_date: bool,
}

impl Puller {
    /// A puller of `remote`'s changes after `cursor`, for the database `asker` whose CRR schema
    /// has `schema_fingerprint`.
    pub fn new(
        asker: SiteId,
        remote: SiteId,
        schema_fingerprint: SchemaFingerprint,
        cursor: Cursor,
        max_bytes: u32,
    ) -> Self {
        let mut puller = Puller {
            asker,
            remote,
            schema_fingerprint,
            max_bytes,
            cursor,
            listen: None,
            request: Vec::new(),
            reassembly: None,
            up_to_date: false,
        };
        puller.request = puller.encode_request();
        puller
    }

    /// Asks the remote, in every request, to tell `listen`'s route of its new versions.
    pub fn with_listen(mut self, listen: Listen) -> Self {
        self.listen = Some(listen);
        self.request = self.encode_request();
        self
    }

    fn encode_request(&self) -> Vec<u8> {
        encode_message(
            &Message::ChangesRequest(ChangesRequest {
                asker: self.asker,
                since: self.cursor.clone(),
                max_bytes: self.max_bytes,
                schema_fingerprint: self.schema_fingerprint,
                listen: self.listen.clone(),
            }),
            Compression::None,
        )
    }

    /// Where the puller stands.
    pub fn cursor(&self) -> &Cursor {
        &self.cursor
    }

    /// True once a page said the remote had nothing beyond it.
    pub fn is_up_to_date(&self) -> bool {
        self.up_to_date
    }

    /// What to send now (again, after a timeout): the page request, or the missing fragments.
    pub fn requests(&self) -> Vec<Vec<u8>> {
        if self.up_to_date {
            return Vec::new();
        }
        let Some(reassembly) = &self.reassembly else {
            return vec![self.request.clone()];
        };
        let hash = reassembly.manifest().hash;
        reassembly
            .missing()
            .take(FRAGMENT_WINDOW)
            .map(|index| fragment_request(&self.request, hash, index))
            .collect()
    }

    /// Makes sense of one answer.
    pub fn receive(&mut self, answer: &[u8]) -> Result<Received, PullError> {
        match decode_message(answer)? {
            Message::ChangesPage(page) => self.page(page),
            Message::Fragmented(manifest) => {
                // One answer at a time: a second manifest is a repeat or answers an older
                // request. (A stale manifest taken while idle is harmless: its page is
                // recognized as stale once reassembled, or the remote says fragmentGone.)
                if self.reassembly.is_some() {
                    return Ok(Received::Ignored);
                }
                let reassembly = Reassembly::new(manifest)?;
                let (fragments, of) = reassembly.progress();
                self.reassembly = Some(reassembly);
                Ok(Received::Progress { fragments, of })
            }
            Message::Fragment(fragment) => {
                let Some(reassembly) = self.reassembly.as_mut() else {
                    return Ok(Received::Ignored);
                };
                if reassembly.manifest().hash != fragment.hash {
                    return Ok(Received::Ignored);
                }
                let (before, _) = reassembly.progress();
                match reassembly.add(fragment.index, fragment.bytes) {
                    Ok(None) => {
                        let (fragments, of) = reassembly.progress();
                        // A fragment it has already is no progress: a peer answering every
                        // request with the same one must not keep a puller asking forever.
                        if fragments == before {
                            return Ok(Received::Ignored);
                        }
                        Ok(Received::Progress { fragments, of })
                    }
                    Ok(Some(whole)) => {
                        self.reassembly = None;
                        match decode_message(&whole)? {
                            Message::ChangesPage(page) => self.page(page),
                            _ => Err(PullError::BadPage("fragments held something else")),
                        }
                    }
                    Err(err) => {
                        self.reassembly = None;
                        Err(err.into())
                    }
                }
            }
            Message::Error(error) if error.code == ErrorCode::FragmentGone => {
                // The remote's answer changed under us: ask for the page again.
                self.reassembly = None;
                Ok(Received::Ignored)
            }
            Message::Error(error) => Err(PullError::Refused(error)),
            _ => Ok(Received::Ignored),
        }
    }

    fn page(&mut self, page: ChangesPage) -> Result<Received, PullError> {
        if page.since != self.cursor || page.site_id != self.remote {
            return Ok(Received::Ignored);
        }
        check_page(&page, self.asker)?;
        self.cursor = page.after.clone();
        self.up_to_date = !page.more && page.group_complete;
        self.request = self.encode_request();
        self.reassembly = None;
        Ok(Received::Page(Box::new(page)))
    }
}

/// The request for fragment `index` of the answer to `original`, whose hash is `hash`.
fn fragment_request(original: &[u8], hash: Hash, index: u32) -> Vec<u8> {
    let request = FragmentRequest {
        original: original.to_vec(),
        hash,
        index,
    };
    encode_message(&Message::FragmentRequest(request), Compression::None)
}

/// A page must hold only what its request asked for, in order, and say where it ends truthfully:
/// a remote that lies is refused before anything reaches the database.
fn check_page(page: &ChangesPage, asker: SiteId) -> Result<(), PullError> {
    let mut previous = page.since.clone();
    for change in &page.changes {
        if !previous.admits(change) {
            return Err(PullError::BadPage(
                "changes out of order or before the cursor",
            ));
        }
        if change.site_id == asker {
            return Err(PullError::BadPage("holds the asker's own changes"));
        }
        previous = Cursor::after_change(change);
    }
    if let Some(last) = page.changes.last() {
        if page.after.admits(last) {
            return Err(PullError::BadPage("ends before its last change"));
        }
        if page.after.db_version < last.db_version {
            return Err(PullError::BadPage("ends before its last group"));
        }
    }
    if page.after.db_version < page.since.db_version {
        return Err(PullError::BadPage("moves the cursor back"));
    }
    let touched: std::collections::HashSet<(&str, &[u8])> = page
        .changes
        .iter()
        .map(|change| (change.table.as_str(), change.pk.as_slice()))
        .collect();
    for cell in &page.rows {
        if cell.db_version > page.since.db_version {
            return Err(PullError::BadPage(
                "carries a row's cell from after the cursor",
            ));
        }
        if cell.site_id == asker {
            return Err(PullError::BadPage("holds the asker's own changes"));
        }
        if !touched.contains(&(cell.table.as_str(), cell.pk.as_slice())) {
            return Err(PullError::BadPage(
                "carries a row none of its changes touch",
            ));
        }
    }
    if !page.group_complete {
        // The group being cut: the one the cursor is inside, or the page's first.
        let first = page
            .changes
            .first()
            .map_or(page.since.db_version, |c| c.db_version);
        let group = page.since.db_version.max(first);
        if page.changes.iter().any(|c| c.db_version != group) || page.after.within.is_none() {
            return Err(PullError::BadPage("a part of a group spans several groups"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fragment::{self, FRAGMENT_BYTES};
    use crate::protocol::Fragment;

    fn puller() -> Puller {
        Puller::new(
            SiteId([1; 16]),
            SiteId([2; 16]),
            SchemaFingerprint([3; 32]),
            Cursor::default(),
            DEFAULT_PAGE_BYTES,
        )
    }

    #[test]
    fn a_fragment_it_has_already_is_no_progress() {
        let mut puller = puller();
        let answer = vec![7; FRAGMENT_BYTES * 2 + 1];
        let manifest = fragment::manifest(&answer);
        let fragment_answer = |index: u32| {
            let bytes = fragment::fragment(&answer, index).unwrap().to_vec();
            let hash = manifest.hash;
            encode_message(
                &Message::Fragment(Fragment { hash, index, bytes }),
                Compression::None,
            )
        };
        let manifest = encode_message(&Message::Fragmented(manifest.clone()), Compression::None);
        assert!(matches!(
            puller.receive(&manifest),
            Ok(Received::Progress {
                fragments: 0,
                of: 3
            })
        ));
        assert_eq!(puller.requests().len(), 3);
        assert!(matches!(
            puller.receive(&fragment_answer(0)),
            Ok(Received::Progress {
                fragments: 1,
                of: 3
            })
        ));
        assert!(matches!(
            puller.receive(&fragment_answer(0)),
            Ok(Received::Ignored)
        ));
        assert!(matches!(
            puller.receive(&fragment_answer(2)),
            Ok(Received::Progress {
                fragments: 2,
                of: 3
            })
        ));
        // Still asking for the one missing.
        assert_eq!(puller.requests().len(), 1);
    }
}
