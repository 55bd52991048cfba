//! Pages made up for the codec's benchmarks: what a puller would get for a database's first
//! transaction, whole.

use ddcp::sync::cursor::Cursor;
use ddcp::sync::protocol::{ChangesPage, Message};
use ddcp::sync::{Change, DbVersion, Incarnation, SiteId};

/// A complete page of `changes`, all of the first version.
pub fn first_version_page(changes: &[Change]) -> Message {
    Message::ChangesPage(ChangesPage {
        site_id: SiteId([1; 16]),
        since: Cursor::START,
        after: Cursor::after_group(DbVersion(1)),
        group_complete: true,
        more: false,
        db_version: DbVersion(1),
        incarnation: Incarnation(1),
        changes: changes.to_vec(),
        rows: Vec::new(),
    })
}
