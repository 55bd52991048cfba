//! A change as `ddcp watch` gives it: one JSON object per change, the same from a running
//! `ddcp serve` and from the command alone. The database's side makes it (db/feed.rs).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

/// A value larger than this is not carried in the feed (`{"omitted_bytes": N}`): read it from
/// the table by its key. Keeps every message of the feed small, whatever the database holds.
pub const MAX_FEED_VALUE: usize = 1 << 20;

/// One change of the feed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WatchedChange {
    /// This database's version of the change; resume after it with `--since`.
    pub db_version: i64,
    /// Its place within that version.
    pub seq: i64,
    /// The table.
    pub table: String,
    /// The row's primary key, column by column.
    pub key: Map<String, Json>,
    /// The column written; `null` for a row created (with no other column) or deleted.
    pub column: Option<String>,
    /// Its new value: `null`, a number or a string; a blob as `{"hex": "..."}`; a value over
    /// 1 MiB as `{"omitted_bytes": N}`.
    pub value: Json,
    /// True when the row was deleted.
    pub deleted: bool,
    /// The site that wrote it (hex).
    pub author: String,
    /// Where it came from: `local`, `remote:NAME`, or `bundle:SITE`.
    pub source: String,
}

impl WatchedChange {
    /// One line for people: `12 bookmarks {id: "a1"} title = "x" (remote:alice, by 3ad3...)`.
    pub fn line(&self) -> String {
        let key: Vec<String> = self.key.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        let what = match (&self.column, self.deleted) {
            (_, true) => "deleted".to_string(),
            (Some(column), false) => format!("{column} = {}", self.value),
            (None, false) => "created".to_string(),
        };
        let author: String = self.author.chars().take(8).collect();
        format!(
            "{} {} {{{}}} {what} ({}, by {author}...)",
            self.db_version,
            self.table,
            key.join(", "),
            self.source
        )
    }
}
