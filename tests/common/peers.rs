//! Databases in one process for the tests of replication logic: a peer is a database in a
//! scratch folder, and a pull runs the protocol's both sides between two of them as the daemon
//! does (the remote's schema history seen, its shape fitted, pages until up to date), without
//! a network.

use ddcp::db::{AcceptPolicy, Db, DbError, Extension, Migrated, RemoteName};
use ddcp::sync::SiteId;
use ddcp::sync::filter::ChangeFilter;
use ddcp::sync::pull::{Puller, Received};
use ddcp::sync::serve::{MAX_PAGE_BUDGET, Responder};

/// The table every peer starts with.
pub const NOTES: &str = "create table notes (id integer primary key not null, body text);
    select crsql_as_crr('notes');";

pub struct Peer {
    _dir: tempfile::TempDir,
    pub db: Db,
    pub site: SiteId,
}

pub fn peer() -> Peer {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::create(&dir.path().join("peer.db"), &Extension::BuiltIn).unwrap();
    db.connection().execute_batch(NOTES).unwrap();
    Peer {
        site: db.site_id().unwrap(),
        _dir: dir,
        db,
    }
}

impl Peer {
    pub fn sql(&self, sql: &str) {
        self.db.connection().execute_batch(sql).unwrap();
    }

    pub fn rows(&self, query: &str) -> Vec<String> {
        let mut statement = self.db.connection().prepare(query).unwrap();
        statement
            .query_map([], |row| row.get::<_, String>(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    /// `ddcp migrate` on this peer.
    pub fn migrate(&mut self, sql: &str) -> Migrated {
        self.db.migrate(sql, false).unwrap()
    }

    pub fn notes(&self) -> Vec<String> {
        self.rows("select id || ':' || coalesce(body, '-') from notes order by id")
    }
}

/// The name `reader` knows `source` by: after its site.
pub fn remote_name(source: &Peer) -> RemoteName {
    format!("r{}", hex(&source.site.0[..4])).parse().unwrap()
}

/// Adds `source` as a remote of `reader`'s (once), under `policy`.
pub fn add_remote(reader: &mut Peer, source: &Peer, policy: &AcceptPolicy) {
    let name = remote_name(source);
    if !reader.db.remotes().unwrap().iter().any(|r| r.name == name) {
        let key = format!(
            "VLD0:{}",
            base64_url(&[source.site.0, source.site.0].concat())
        );
        reader
            .db
            .add_remote(&name, &key.parse().unwrap(), policy, false)
            .unwrap();
    }
}

/// `reader` pulls from `source` until up to date, as the daemon does: the schemas are fitted
/// first, and the requests name the source's schema once this database knows it fits.
pub fn pull(reader: &mut Peer, source: &Peer) -> u64 {
    pull_with(reader, source, &AcceptPolicy::default())
}

/// [`pull`] under `policy`.
pub fn pull_with(reader: &mut Peer, source: &Peer, policy: &AcceptPolicy) -> u64 {
    try_pull_with(reader, source, policy).unwrap()
}

/// [`pull_with`], its refusal returned: the first page reader refuses ends it.
pub fn try_pull_with(
    reader: &mut Peer,
    source: &Peer,
    policy: &AcceptPolicy,
) -> Result<u64, DbError> {
    let policy = policy.clone();
    let name = remote_name(source);
    add_remote(reader, source, &policy);
    // The remote's history first (followed when reader follows it), then its shape fitted to
    // reader's as it is now.
    if policy.into.is_none() {
        let history = source.db.schema_history().unwrap();
        reader.db.see_remote_history(&name, &history).unwrap();
    }
    let theirs = source.db.shared_schema().unwrap();
    let fit = reader.db.schema_fit(&theirs, policy.into.as_ref()).unwrap();
    reader.db.note_remote_site(&name, source.site).unwrap();
    reader.db.align_cursor(source.site, &policy).unwrap();
    let mut responder = Responder::default();
    let mut puller = Puller::new(
        reader.site,
        source.site,
        theirs.fingerprint(),
        reader.db.cursor(source.site).unwrap(),
        64 << 10,
    );
    let mut admitted = 0;
    while !puller.is_up_to_date() {
        for request in puller.requests() {
            let answer = responder.respond_within(
                &source.db,
                &request,
                MAX_PAGE_BUDGET,
                &ChangeFilter::default(),
            );
            if let Received::Page(page) = puller.receive(&answer).unwrap() {
                let outcome = reader
                    .db
                    .accept_page_fitting(source.site, *page, &policy, &fit)?;
                admitted += outcome.admitted;
            }
        }
    }
    Ok(admitted)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// RFC 4648 base64url without padding, as record keys are written.
fn base64_url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut text = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (*b as u32) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            text.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    text
}
