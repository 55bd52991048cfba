//! Filters as stored (JSON in a text column; '' for none) and as `--json` output prints them,
//! and the filter this database shares with every reader (`ddcp share`, in `ddcp_meta`).

use rusqlite::{Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::{Db, DbError};
use crate::sync::filter::ChangeFilter;

/// A filter's parts, for JSON: only the parts that are set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterJson {
    /// Only these tables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tables: Option<Vec<String>>,
    /// Never these tables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_tables: Vec<String>,
    /// Never these columns, as TABLE.COLUMN.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_columns: Vec<String>,
    /// Only rows for which this SQL expression holds.
    #[serde(default, rename = "where", skip_serializing_if = "Option::is_none")]
    pub rows: Option<String>,
}

impl From<&ChangeFilter> for FilterJson {
    fn from(filter: &ChangeFilter) -> Self {
        let (tables, exclude_tables, exclude_columns, rows) = filter.parts();
        FilterJson {
            tables,
            exclude_tables,
            exclude_columns,
            rows,
        }
    }
}

/// The stored form of `filter`: '' when it lets everything pass.
pub fn stored_filter(filter: &ChangeFilter) -> String {
    if filter.is_open() {
        return String::new();
    }
    serde_json::to_string(&FilterJson::from(filter)).expect("plain strings serialize")
}

/// A filter from its stored form; `what` names it in the error.
pub fn read_stored_filter(text: &str, what: &str) -> Result<ChangeFilter, DbError> {
    if text.is_empty() {
        return Ok(ChangeFilter::default());
    }
    let corrupt = || DbError::CorruptMetadata(format!("{what}'s filter"));
    let json: FilterJson = serde_json::from_str(text).map_err(|_| corrupt())?;
    ChangeFilter::from_parts(
        json.tables,
        json.exclude_tables,
        json.exclude_columns,
        json.rows,
    )
    .map_err(|_| corrupt())
}

pub(super) fn read_share_filter(conn: &Connection) -> Result<ChangeFilter, DbError> {
    let text: Option<String> = conn
        .query_row(
            "select value from ddcp_meta where key = 'share_filter'",
            [],
            |row| row.get(0),
        )
        .optional()?;
    read_stored_filter(text.as_deref().unwrap_or(""), "the shared")
}

impl Db {
    /// What this database lets every reader have (all when never set).
    pub fn share_filter(&self) -> Result<ChangeFilter, DbError> {
        read_share_filter(self.conn())
    }

    /// Sets what every reader may have, after checking it against this database.
    pub fn set_share_filter(&mut self, filter: &ChangeFilter) -> Result<(), DbError> {
        self.check_read_filter(filter)?;
        self.conn().execute(
            "insert into ddcp_meta (key, value) values ('share_filter', ?1)
             on conflict (key) do update set value = excluded.value",
            [stored_filter(filter)],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::filter_args::FilterFlags;
    use crate::db::test_support::temp_db;

    #[test]
    fn filters_are_stored_and_read_back() {
        let filter = FilterFlags {
            tables: Some("posts"),
            exclude_columns: Some("posts.secret"),
            rows: Some("owner = 'bob'"),
            ..FilterFlags::default()
        }
        .applied_to(&ChangeFilter::default())
        .unwrap();
        let text = stored_filter(&filter);
        assert_eq!(
            text,
            r#"{"tables":["posts"],"exclude_columns":["posts.secret"],"where":"owner = 'bob'"}"#
        );
        assert_eq!(read_stored_filter(&text, "x").unwrap(), filter);
        assert_eq!(stored_filter(&ChangeFilter::default()), "");
        assert!(read_stored_filter("{", "remote \"a\"").is_err());
    }

    #[test]
    fn the_shared_filter_is_checked_and_kept() {
        let (_dir, mut db) = temp_db();
        db.conn()
            .execute_batch(
                "create table posts (id integer primary key not null, secret text);
                 select crsql_as_crr('posts');",
            )
            .unwrap();
        assert!(db.share_filter().unwrap().is_open());
        let bad = FilterFlags {
            tables: Some("nope"),
            ..FilterFlags::default()
        }
        .applied_to(&ChangeFilter::default())
        .unwrap();
        assert!(db.set_share_filter(&bad).is_err());
        let good = FilterFlags {
            exclude_columns: Some("posts.secret"),
            ..FilterFlags::default()
        }
        .applied_to(&ChangeFilter::default())
        .unwrap();
        db.set_share_filter(&good).unwrap();
        assert_eq!(db.share_filter().unwrap(), good);
    }
}
