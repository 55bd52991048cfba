//! Random steps for the property tests of peers on different releases of an app
//! (tests/schema_evolution.rs, tests/schema_history.rs): writes to what a release has, pulls
//! between three peers, and the rows they end with.

use super::peers::{Peer, pull};

/// The statement that writes `value` into what release `at` has, `column` choosing among it.
pub fn write_sql(at: usize, id: u8, column: u8, value: u8) -> String {
    let available: Vec<(&str, &str)> = [
        (0, "notes", "body"),
        (1, "notes", "tag"),
        (2, "links", "url"),
        (3, "notes", "pri"),
        (4, "links", "title"),
    ]
    .into_iter()
    .filter(|(needs, _, _)| *needs <= at)
    .map(|(_, table, column)| (table, column))
    .collect();
    let (table, column) = available[column as usize % available.len()];
    format!(
        "insert into {table} (id, {column}) values ({id}, {value})
         on conflict (id) do update set {column} = excluded.{column}"
    )
}

pub fn table_rows(peer: &Peer) -> Vec<String> {
    let mut rows = peer.rows("select 'notes ' || id || ' ' || coalesce(body, '-') || ' ' || coalesce(tag, '-') || ' ' || coalesce(pri, '-') from notes order by id");
    rows.extend(peer.rows(
        "select 'links ' || id || ' ' || coalesce(url, '-') || ' ' || coalesce(title, '-') from links order by id",
    ));
    rows
}

#[derive(Clone, Debug)]
pub enum Step {
    /// The peer's app moves to its next release.
    Migrate(usize),
    /// The peer writes `value` to row `id` of what its release has, `column` choosing where.
    Write {
        peer: usize,
        id: u8,
        column: u8,
        value: u8,
    },
    /// `reader` pulls from `source`.
    Pull { reader: usize, source: usize },
}

pub fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    prop_oneof![
        1 => (0..3usize).prop_map(Step::Migrate),
        4 => (0..3usize, 0..6u8, 0..5u8, any::<u8>())
            .prop_map(|(peer, id, column, value)| Step::Write { peer, id, column, value }),
        3 => (0..3usize, 0..3usize)
            .prop_filter("a peer does not pull from itself", |(r, s)| r != s)
            .prop_map(|(reader, source)| Step::Pull { reader, source }),
    ]
}

/// `peers[reader]`, to change, and `peers[source]`, to read.
pub fn pair(peers: &mut [Peer; 3], reader: usize, source: usize) -> (&mut Peer, &Peer) {
    let [a, b, c] = peers;
    match (reader, source) {
        (0, 1) => (a, &*b),
        (0, 2) => (a, &*c),
        (1, 0) => (b, &*a),
        (1, 2) => (b, &*c),
        (2, 0) => (c, &*a),
        _ => (c, &*b),
    }
}

/// `peers[reader]` pulls from `peers[source]`.
pub fn pull_between(peers: &mut [Peer; 3], reader: usize, source: usize) {
    let (reader, source) = pair(peers, reader, source);
    pull(reader, source);
}
