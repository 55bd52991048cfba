//! Pages built once for many askers. Pullers catching up at once (the members of a new
//! database, a hub's peers after a burst of writes) ask for the same pages: a big page built
//! for one asker is kept, and the same request from another is answered with it, without the
//! database read, the encoding and the compression being done again.
//!
//! A page leaves out its asker's own changes, so one is kept only when none of its asker's
//! changes lie where it read (then nothing was left out: it is the page of every asker), and
//! given only to an asker none of whose changes it read (a page that read some of them would
//! send them back).

use std::collections::{BTreeSet, VecDeque};

use super::cursor::Cursor;
use super::ids::{DbVersion, Incarnation, SiteId};
use super::protocol::Hash;
use super::schema::SchemaFingerprint;

/// Pages kept: a few pages in flight for each of many pullers; each is a manifest and a set
/// of authors (the answers themselves are in the responder's fragment cache).
const KEPT: usize = 16;

/// What makes two requests the same page: where they start and how much they may take, and
/// the database as it stands (every write moves its version, a restore its incarnation, a
/// change of its shared tables its fingerprint).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageKey {
    pub since: Cursor,
    pub budget: usize,
    pub schema: SchemaFingerprint,
    pub db_version: DbVersion,
    pub incarnation: Incarnation,
}

/// A page kept for other askers.
#[derive(Clone, Debug)]
pub struct SharedPage {
    pub key: PageKey,
    /// The authors of every change the page read, the one it stopped at included.
    pub authors: BTreeSet<SiteId>,
    /// Its changes, for the record of pages served.
    pub changes: u64,
    /// The whole answer's hash (the answer is in the fragment cache) ...
    pub hash: Hash,
    /// ... and what is sent: its manifest.
    pub manifest: Vec<u8>,
}

/// The pages kept, the newest last.
#[derive(Debug, Default)]
pub struct SharedPages {
    pages: VecDeque<SharedPage>,
}

impl SharedPages {
    /// The page kept for `key` that `asker` may have: one that read none of its changes.
    pub fn find(&self, key: &PageKey, asker: SiteId) -> Option<&SharedPage> {
        self.pages
            .iter()
            .find(|page| page.key == *key && !page.authors.contains(&asker))
    }

    /// Keeps `page` (in place of one kept for the same key), forgetting the oldest beyond
    /// [`KEPT`].
    pub fn keep(&mut self, page: SharedPage) {
        self.pages.retain(|kept| kept.key != page.key);
        self.pages.push_back(page);
        while self.pages.len() > KEPT {
            self.pages.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(db_version: i64) -> PageKey {
        PageKey {
            since: Cursor::default(),
            budget: 1 << 20,
            schema: SchemaFingerprint([7; 32]),
            db_version: DbVersion(db_version),
            incarnation: Incarnation(1),
        }
    }

    fn page(db_version: i64, authors: &[u8]) -> SharedPage {
        SharedPage {
            key: key(db_version),
            authors: authors.iter().map(|a| SiteId([*a; 16])).collect(),
            changes: 3,
            hash: [db_version as u8; 32],
            manifest: vec![db_version as u8],
        }
    }

    #[test]
    fn a_page_goes_to_askers_it_read_nothing_of_for_the_same_request_only() {
        let mut pages = SharedPages::default();
        pages.keep(page(5, &[1, 2]));
        assert!(pages.find(&key(5), SiteId([3; 16])).is_some());
        assert!(pages.find(&key(5), SiteId([2; 16])).is_none());
        assert!(pages.find(&key(6), SiteId([3; 16])).is_none());
        let mut other_budget = key(5);
        other_budget.budget = 1 << 10;
        assert!(pages.find(&other_budget, SiteId([3; 16])).is_none());
    }

    #[test]
    fn the_oldest_pages_go_first_and_a_key_is_kept_once() {
        let mut pages = SharedPages::default();
        for version in 0..(KEPT as i64 + 4) {
            pages.keep(page(version, &[1]));
        }
        pages.keep(page(KEPT as i64 + 3, &[2]));
        assert_eq!(pages.pages.len(), KEPT);
        assert!(pages.find(&key(3), SiteId([9; 16])).is_none());
        assert!(pages.find(&key(4), SiteId([9; 16])).is_some());
        let newest = pages.find(&key(KEPT as i64 + 3), SiteId([9; 16])).unwrap();
        assert!(newest.authors.contains(&SiteId([2; 16])));
    }
}
