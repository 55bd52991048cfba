//! The filter flags (`--tables`, `--exclude-tables`, `--exclude-columns`, `--where`,
//! `--no-filter`) as remote, member, share and bundle commands take them.

use super::CommandError;
use crate::cli::FilterArgs;
use crate::db::{DbError, FilterJson};
use crate::sync::filter::{ChangeFilter, FilterFlags};

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
        current
            .with_flags(&self.flags())
            .map_err(|err| CommandError::Db(DbError::BadFilter(err)))
    }
}

/// A filter as `--json` output shows it: `null` when everything passes.
pub fn filter_json(filter: &ChangeFilter) -> Option<FilterJson> {
    (!filter.is_open()).then(|| FilterJson::from(filter))
}
