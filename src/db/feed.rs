//! The change feed (`ddcp watch`): every change this database holds after a cursor, in the
//! order it got them (db_version, then seq), each with where it came from: a local commit, a
//! remote's pull, or a bundle (see `ChangeApplier::note_arrival`). cr-sqlite keeps the newest
//! state of each cell only: a cell changed twice before the feed reads it shows once, with its
//! newer value at its newer version.

use std::collections::HashMap;

use serde_json::Value as Json;

use super::{Db, DbError};
use crate::control::watch::{MAX_FEED_VALUE, WatchedChange};
use crate::sync::cursor::Cursor;
use crate::sync::filter::SENTINEL_CID;
use crate::sync::{Change, DbVersion, SiteId, Value, packed_pk};

/// Where a change came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Arrival {
    /// Written here.
    Local,
    /// Pulled from the remote of this name (or, once removed, from this site).
    Remote(String),
    /// Merged from a bundle made by this site.
    Bundle(SiteId),
}

/// One change of the feed.
#[derive(Clone, Debug, PartialEq)]
pub struct FeedChange {
    /// The change as `crsql_changes` holds it.
    pub change: Change,
    /// Its primary key, column by column (names from the table's key).
    pub key: Vec<(String, Value)>,
    /// True for a row's deletion.
    pub deleted: bool,
    /// Where it came from.
    pub arrival: Arrival,
}

impl Db {
    /// The changes after `after`, in order, about `max_bytes` of them at most (at least one);
    /// and the cursor after the last one (`after` when there are none).
    pub fn read_feed(
        &self,
        after: &Cursor,
        max_bytes: usize,
    ) -> Result<(Vec<FeedChange>, Cursor), DbError> {
        let mut changes = Vec::new();
        let mut size = 0;
        self.visit_changes_from(after, None, &mut |change| {
            size += change.size();
            changes.push(change);
            if size >= max_bytes {
                crate::sync::page::Visit::Stop
            } else {
                crate::sync::page::Visit::Continue
            }
        })?;
        let next = changes
            .last()
            .map_or_else(|| after.clone(), Cursor::after_change);
        let arrivals = self.arrivals_of(&changes)?;
        let arrival_at = |version: DbVersion| {
            arrivals
                .iter()
                .find(|(first, last, _)| (*first..=*last).contains(&version.0))
                .map_or(Arrival::Local, |(_, _, arrival)| arrival.clone())
        };
        let keys = self.key_columns()?;
        let feed = changes
            .into_iter()
            .map(|change| {
                let names = keys.get(&change.table).map(Vec::as_slice).unwrap_or(&[]);
                let values = packed_pk::unpack(&change.pk).unwrap_or_default();
                let key = values
                    .into_iter()
                    .enumerate()
                    .map(|(index, value)| {
                        let name = names
                            .get(index)
                            .cloned()
                            .unwrap_or_else(|| index.to_string());
                        (name, value)
                    })
                    .collect();
                let deleted = change.cid == SENTINEL_CID && change.cl % 2 == 0;
                let arrival = arrival_at(change.db_version);
                FeedChange {
                    change,
                    key,
                    deleted,
                    arrival,
                }
            })
            .collect();
        Ok((feed, next))
    }

    /// Each CRR's key columns, in key order.
    fn key_columns(&self) -> Result<HashMap<String, Vec<String>>, DbError> {
        Ok(self
            .schema()?
            .tables
            .into_iter()
            .map(|table| {
                let mut key: Vec<_> = table
                    .columns
                    .into_iter()
                    .filter(|c| c.pk_index > 0)
                    .collect();
                key.sort_by_key(|column| column.pk_index);
                (
                    table.name,
                    key.into_iter().map(|column| column.name).collect(),
                )
            })
            .collect())
    }

    /// The merges that gave versions within those of `changes`: (first, last, where from).
    /// A version in none of them is a local commit's.
    fn arrivals_of(&self, changes: &[Change]) -> Result<Vec<(i64, i64, Arrival)>, DbError> {
        let (Some(first), Some(last)) = (changes.first(), changes.last()) else {
            return Ok(Vec::new());
        };
        let (low, high) = (first.db_version.0, last.db_version.0);
        let mut statement = self.conn().prepare_cached(
            "select a.first, a.last, a.via, a.kind, r.name from ddcp_arrivals a
             left join ddcp_remotes r on r.site_id = a.via
             where a.last >= ?1 and a.first <= ?2",
        )?;
        let rows = statement.query_map([low, high], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, Vec<u8>>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, Option<String>>(4)?,
            ))
        })?;
        let mut ranges = Vec::new();
        for row in rows {
            let (first, last, via, kind, name) = row?;
            let via = SiteId::from_slice(&via)?;
            let arrival = match (kind.as_str(), name) {
                ("bundle", _) => Arrival::Bundle(via),
                (_, Some(name)) => Arrival::Remote(name),
                (_, None) => Arrival::Remote(via.to_string()),
            };
            ranges.push((first, last, arrival));
        }
        Ok(ranges)
    }
}

/// A value as the feed's JSON gives it.
fn json_value(value: &Value) -> Json {
    if value.size() > MAX_FEED_VALUE {
        return serde_json::json!({ "omitted_bytes": value.size() });
    }
    match value {
        Value::Null => Json::Null,
        Value::Integer(int) => Json::from(*int),
        // JSON has no NaN or infinities: those become null.
        Value::Real(real) => serde_json::Number::from_f64(*real).map_or(Json::Null, Json::Number),
        Value::Text(text) => Json::String(text.clone()),
        Value::Blob(bytes) | Value::RawText(bytes) => {
            serde_json::json!({ "hex": hex::encode(bytes) })
        }
    }
}

impl From<&FeedChange> for WatchedChange {
    fn from(feed: &FeedChange) -> Self {
        let change = &feed.change;
        let sentinel = change.cid == SENTINEL_CID;
        WatchedChange {
            db_version: change.db_version.0,
            seq: change.seq.0,
            table: change.table.clone(),
            key: feed
                .key
                .iter()
                .map(|(name, value)| (name.clone(), json_value(value)))
                .collect(),
            column: (!sentinel).then(|| change.cid.clone()),
            value: json_value(&change.val),
            deleted: feed.deleted,
            author: change.site_id.to_string(),
            source: match &feed.arrival {
                Arrival::Local => "local".to_string(),
                Arrival::Remote(name) => format!("remote:{name}"),
                Arrival::Bundle(site) => format!("bundle:{site}"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::test_support::temp_db;

    const SCHEMA: &str = "create table pairs (a integer not null, b text not null, note text,
        primary key (a, b)); select crsql_as_crr('pairs');";

    #[test]
    fn the_feed_names_keys_and_where_each_change_came_from() {
        let (_dir, mut db) = temp_db();
        let (_other_dir, other) = temp_db();
        db.conn().execute_batch(SCHEMA).unwrap();
        other.conn().execute_batch(SCHEMA).unwrap();
        db.conn()
            .execute_batch("insert into pairs values (1, 'x', 'here')")
            .unwrap();
        other
            .conn()
            .execute_batch("insert into pairs values (2, 'y', 'there')")
            .unwrap();
        let theirs = other.changes_since(DbVersion(0)).unwrap();
        let mut applier = db.begin_apply().unwrap();
        applier.apply(&theirs).unwrap();
        applier
            .note_arrival(other.site_id().unwrap(), "bundle")
            .unwrap();
        applier.commit().unwrap();
        db.conn()
            .execute_batch("delete from pairs where a = 1")
            .unwrap();

        let (feed, next) = db.read_feed(&Cursor::START, usize::MAX).unwrap();
        let seen: Vec<(i64, &str, &Arrival, bool)> = feed
            .iter()
            .map(|c| {
                (
                    c.change.db_version.0,
                    c.change.cid.as_str(),
                    &c.arrival,
                    c.deleted,
                )
            })
            .collect();
        let bundle = Arrival::Bundle(other.site_id().unwrap());
        assert_eq!(
            seen,
            [
                (2, "note", &bundle, false),
                (3, "-1", &Arrival::Local, true),
            ]
        );
        assert_eq!(
            feed[0].key,
            [
                ("a".to_string(), Value::Integer(2)),
                ("b".into(), Value::Text("y".into()))
            ]
        );
        // Read on from where it stopped: nothing is repeated, nothing skipped.
        let (first, after_first) = db.read_feed(&Cursor::START, 1).unwrap();
        assert_eq!(first.len(), 1);
        let (rest, end) = db.read_feed(&after_first, usize::MAX).unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(end, next);
        assert!(db.read_feed(&end, usize::MAX).unwrap().0.is_empty());
    }
}
