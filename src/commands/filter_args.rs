//! The filter flags (`--tables`, `--exclude-tables`, `--exclude-columns`, `--where`,
//! `--no-filter`) as remote, member, share and bundle commands take them.

use std::collections::BTreeSet;

use super::CommandError;
use crate::cli::FilterArgs;
use crate::db::FilterJson;
use crate::sync::filter::{BadFilter, ChangeFilter, ColumnRef, RowPredicate};

/// The filter flags as typed: each `None` when not given. The command line's form of a
/// filter (comma-separated names); the replication core knows filters by their parts only.
#[derive(Clone, Debug, Default)]
pub struct FilterFlags<'a> {
    /// `--tables`.
    pub tables: Option<&'a str>,
    /// `--exclude-tables`.
    pub exclude_tables: Option<&'a str>,
    /// `--exclude-columns`.
    pub exclude_columns: Option<&'a str>,
    /// `--where`.
    pub rows: Option<&'a str>,
}

/// Why filter flags are refused, in the flags' own words.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BadFilterFlags {
    /// A comma-separated list with an empty name in it.
    #[error("{flag} takes names separated by commas; {text:?} has an empty one")]
    EmptyName { flag: &'static str, text: String },
    /// A name the filter itself refuses.
    #[error("{flag}: {reason}")]
    Filter {
        flag: &'static str,
        reason: BadFilter,
    },
}

impl FilterFlags<'_> {
    /// True when no flag was given.
    pub fn is_empty(&self) -> bool {
        self.tables.is_none()
            && self.exclude_tables.is_none()
            && self.exclude_columns.is_none()
            && self.rows.is_none()
    }

    /// `current` with the parts these flags name replaced (an empty value drops that part).
    pub fn applied_to(&self, current: &ChangeFilter) -> Result<ChangeFilter, BadFilterFlags> {
        let mut filter = current.clone();
        if let Some(text) = self.tables {
            let tables = names("--tables", text)?;
            filter.tables = (!tables.is_empty()).then_some(tables);
        }
        if let Some(text) = self.exclude_tables {
            filter.exclude_tables = names("--exclude-tables", text)?;
        }
        if let Some(text) = self.exclude_columns {
            let refused = |reason| BadFilterFlags::Filter {
                flag: "--exclude-columns",
                reason,
            };
            filter.exclude_columns = names("--exclude-columns", text)?
                .iter()
                .map(|name| ColumnRef::parse(name).map_err(refused))
                .collect::<Result<_, _>>()?;
        }
        if let Some(text) = self.rows {
            filter.rows = RowPredicate::parse(text).map_err(|reason| BadFilterFlags::Filter {
                flag: "--where",
                reason,
            })?;
        }
        Ok(filter)
    }
}

/// A comma-separated list of names; empty for an empty text ('' drops a part).
fn names(flag: &'static str, text: &str) -> Result<BTreeSet<String>, BadFilterFlags> {
    if text.trim().is_empty() {
        return Ok(BTreeSet::new());
    }
    text.split(',')
        .map(|name| match name.trim() {
            "" => Err(BadFilterFlags::EmptyName {
                flag,
                text: crate::sync::text::printable(text, 80),
            }),
            name => Ok(name.to_string()),
        })
        .collect()
}

impl FilterArgs {
    /// True when no filter flag was given.
    pub fn is_empty(&self) -> bool {
        !self.no_filter && self.flags().is_empty()
    }

    fn flags(&self) -> FilterFlags<'_> {
        FilterFlags {
            tables: self.tables.as_deref(),
            exclude_tables: self.exclude_tables.as_deref(),
            exclude_columns: self.exclude_columns.as_deref(),
            rows: self.rows.as_deref(),
        }
    }

    /// `current` with the parts these flags name replaced (all of it dropped with
    /// `--no-filter`). Names are checked against the database where it is stored.
    pub fn applied_to(&self, current: &ChangeFilter) -> Result<ChangeFilter, CommandError> {
        if self.no_filter {
            return Ok(ChangeFilter::default());
        }
        Ok(self.flags().applied_to(current)?)
    }
}

/// A filter as `--json` output shows it: `null` when everything passes.
pub fn filter_json(filter: &ChangeFilter) -> Option<FilterJson> {
    (!filter.is_open()).then(|| FilterJson::from(filter))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::filter::SENTINEL_CID;
    use crate::sync::{Change, DbVersion, Seq, SiteId, Value};

    fn change(table: &str, cid: &str) -> Change {
        Change {
            table: table.into(),
            pk: vec![1],
            cid: cid.into(),
            val: Value::Null,
            col_version: 1,
            db_version: DbVersion(1),
            site_id: SiteId([1; 16]),
            cl: 1,
            seq: Seq(0),
        }
    }

    #[test]
    fn flags_replace_the_parts_they_name_and_an_empty_one_drops_it() {
        let narrow = FilterFlags {
            tables: Some("bookmarks, notes"),
            exclude_columns: Some("notes.secret"),
            ..FilterFlags::default()
        }
        .applied_to(&ChangeFilter::default())
        .unwrap();
        assert!(!narrow.admits(&change("tags", "name")));
        let wider = FilterFlags {
            tables: Some(""),
            ..FilterFlags::default()
        }
        .applied_to(&narrow)
        .unwrap();
        assert!(wider.admits(&change("tags", "name")));
        assert!(!wider.admits(&change("notes", "secret")));
        let excluded = FilterFlags {
            exclude_tables: Some("tags"),
            ..FilterFlags::default()
        }
        .applied_to(&ChangeFilter::default())
        .unwrap();
        assert!(!excluded.admits(&change("tags", SENTINEL_CID)));
    }

    #[test]
    fn bad_flags_are_refused_naming_the_flag() {
        let open = ChangeFilter::default();
        let refused = |flags: FilterFlags<'_>| flags.applied_to(&open).unwrap_err().to_string();
        assert_eq!(
            refused(FilterFlags {
                tables: Some("a,,b"),
                ..FilterFlags::default()
            }),
            "--tables takes names separated by commas; \"a,,b\" has an empty one"
        );
        assert!(
            refused(FilterFlags {
                exclude_columns: Some("nodot"),
                ..FilterFlags::default()
            })
            .starts_with("--exclude-columns: a column is named as TABLE.COLUMN")
        );
        let long = "x".repeat(crate::sync::filter::MAX_PREDICATE_CHARS + 1);
        assert!(
            refused(FilterFlags {
                rows: Some(&long),
                ..FilterFlags::default()
            })
            .starts_with("--where: a row filter is one SQL expression")
        );
    }
}
