//! `ddcp migrate`: the changes of schema that peers still on the old version of an app keep
//! replicating with (see docs/schema-evolution.md): a new table (made a CRR), a new column
//! (nullable, or NOT NULL with a default), a new index. Anything else is refused with one line
//! that says why and what to do instead, and the whole migration is one transaction: nothing of
//! it is applied unless all of it is.

use super::migration_guard::run_guarded;
use super::migration_plan::{Planned, plan};
use super::{Db, DbError, RemoteName};

/// One step of a migration, as it was applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MigrationStep {
    /// A table was created and made a CRR.
    CreateTable(String),
    /// A column was added to a table (inside `crsql_begin_alter`/`crsql_commit_alter` when the
    /// table is a CRR).
    AddColumn {
        /// The table.
        table: String,
        /// The column.
        column: String,
    },
    /// An index was created.
    CreateIndex(String),
}

impl std::fmt::Display for MigrationStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MigrationStep::CreateTable(table) => write!(f, "created table {table} (a CRR)"),
            MigrationStep::AddColumn { table, column } => {
                write!(f, "added column {table}.{column}")
            }
            MigrationStep::CreateIndex(index) => write!(f, "created index {index}"),
        }
    }
}

/// What a migration did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Migrated {
    /// The steps it applied, in order.
    pub applied: Vec<MigrationStep>,
    /// The steps this database had already (made by hand, or by the same migration taken from
    /// another peer): left as they are.
    pub present: Vec<MigrationStep>,
}

impl Db {
    /// Applies `sql`, a migration: CREATE TABLE (then made a CRR), ALTER TABLE ... ADD COLUMN
    /// and CREATE INDEX statements, all in one transaction, and records it in the schema
    /// history peers follow; the changes held for what it adds are merged after. With
    /// `dry_run`, checks it and says what it would do, changing nothing.
    pub fn migrate(&mut self, sql: &str, dry_run: bool) -> Result<Migrated, DbError> {
        let migrated = self.apply_migration(sql, None, dry_run)?;
        if !dry_run {
            self.apply_held()?;
        }
        Ok(migrated)
    }

    /// Applies one migration in one transaction, its steps this database has already left
    /// out, and records it in the schema history as made here or taken from `origin`. The
    /// held changes are left for the caller to apply.
    pub(super) fn apply_migration(
        &mut self,
        sql: &str,
        origin: Option<&RemoteName>,
        dry_run: bool,
    ) -> Result<Migrated, DbError> {
        let planned = plan(sql)?;
        if planned.is_empty() {
            return Err(DbError::EmptyMigration);
        }
        let fast = self.fast_add_column;
        // Each step is prepared under an authorizer of its own, which replaces the apps'.
        self.app_guard = None;
        let tx = self.conn_mut().transaction()?;
        let mut migrated = Migrated::default();
        // Tables made by this migration become CRRs at its end, with every column it gave
        // them: cr-sqlite 0.16.3 fails to compact a table altered in the transaction that made
        // it a CRR after another table's alteration ("failed compacting tables post
        // alteration"), and then rolls the whole transaction back.
        let mut made = Vec::new();
        for (index, Planned { step, sql }) in planned.iter().enumerate() {
            let failed = |reason: String| DbError::BadMigration {
                statement: index + 1,
                reason,
            };
            let sqlite_failed = |err: rusqlite::Error| failed(super::error::sqlite_message(&err));
            if is_present(&tx, step)? {
                migrated.present.push(step.clone());
                continue;
            }
            // A CRR (made earlier in this migration too; SQLite's names ignore case) is
            // altered inside cr-sqlite's begin and commit, which rebuild its triggers and
            // clocks for the new column.
            let altered_crr = match step {
                MigrationStep::AddColumn { table, .. } => super::schema::crr_tables(&tx)?
                    .into_iter()
                    .find(|crr| crr.eq_ignore_ascii_case(table)),
                _ => None,
            };
            if let Some(crr) = &altered_crr {
                tx.query_row("select crsql_begin_alter(?1)", [crr], |_| Ok(()))
                    .map_err(sqlite_failed)?;
            }
            // Checked by SQLite as it runs: what the step says, and nothing else.
            run_guarded(&tx, step, sql).map_err(failed)?;
            if let Some(crr) = &altered_crr {
                // Only a column was added: cr-sqlite's fast path, when this build has it.
                super::schema::commit_added_columns(&tx, crr, fast).map_err(sqlite_failed)?;
                // Its mirrors (remotes pulled --into) get the column too.
                super::mirrors::add_columns_to_mirrors(&tx, crr, fast)
                    .map_err(|err| failed(err.to_string()))?;
            }
            if let MigrationStep::CreateTable(table) = step {
                made.push((index, table));
            }
            migrated.applied.push(step.clone());
        }
        for (index, table) in made {
            tx.query_row("select crsql_as_crr(?1)", [table], |_| Ok(()))
                .map_err(|err| DbError::BadMigration {
                    statement: index + 1,
                    reason: super::error::sqlite_message(&err),
                })?;
        }
        // A migration taken from a remote that made nothing here is not recorded: a remote
        // must not fill this database's history with migrations that do nothing. (One run
        // here is, so that a step made by hand can be published.)
        if origin.is_none() || !migrated.applied.is_empty() {
            super::schema_history::record_migration(&tx, &normalized(&planned), origin)?;
        }
        if dry_run {
            tx.rollback()?;
        } else {
            tx.commit()?;
        }
        Ok(migrated)
    }
}

/// Whether this database has what `step` makes (SQLite's names ignore case).
fn is_present(conn: &rusqlite::Connection, step: &MigrationStep) -> Result<bool, DbError> {
    let found: i64 = match step {
        MigrationStep::CreateTable(table) => conn.query_row(
            "select count(*) from sqlite_master where type = 'table' and name = ?1 collate nocase",
            [table],
            |row| row.get(0),
        )?,
        MigrationStep::AddColumn { table, column } => conn.query_row(
            "select count(*) from pragma_table_info(?1) where name = ?2 collate nocase",
            [table, column],
            |row| row.get(0),
        )?,
        MigrationStep::CreateIndex(index) => conn.query_row(
            "select count(*) from sqlite_master where type = 'index' and name = ?1 collate nocase",
            [index],
            |row| row.get(0),
        )?,
    };
    Ok(found > 0)
}

/// The steps of `sql` this database lacks: what applying it would do. A migration that does
/// not plan is refused as `Db::migrate` would refuse it.
pub(super) fn missing_steps(
    conn: &rusqlite::Connection,
    sql: &str,
) -> Result<Vec<MigrationStep>, DbError> {
    let mut missing = Vec::new();
    for Planned { step, .. } in plan(sql)? {
        if !is_present(conn, &step)? {
            missing.push(step);
        }
    }
    Ok(missing)
}

/// A migration's text as the history keeps it: its statements without comments, one a line,
/// so that the same migration written twice has one id.
fn normalized(planned: &[Planned]) -> String {
    planned
        .iter()
        .map(|planned| format!("{};\n", planned.sql))
        .collect()
}

impl MigrationStep {
    /// What it makes, in words.
    pub(super) fn made(&self) -> String {
        match self {
            MigrationStep::CreateTable(table) => format!("table {table}"),
            MigrationStep::AddColumn { table, column } => format!("column {table}.{column}"),
            MigrationStep::CreateIndex(index) => format!("index {index}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::test_support::temp_db;

    const NOTES: &str = "create table notes (id integer primary key not null, body text);
        select crsql_as_crr('notes');";

    #[test]
    fn an_additive_migration_is_applied_whole() {
        let (_dir, mut db) = temp_db();
        db.conn().execute_batch(NOTES).unwrap();
        db.conn()
            .execute_batch("insert into notes values (1, 'first')")
            .unwrap();
        let steps = db
            .migrate(
                "-- v2: tags, links
                 alter table notes add column tag text;
                 ALTER TABLE \"notes\" ADD pri integer not null default 0;
                 create table if not exists links (id integer primary key not null, url text);
                 alter table LINKS add column title text;
                 create index links_by_url on links (url);",
                false,
            )
            .unwrap();
        assert_eq!(
            steps
                .applied
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            [
                "added column notes.tag",
                "added column notes.pri",
                "created table links (a CRR)",
                "added column LINKS.title",
                "created index links_by_url"
            ]
        );
        // The column added to the table made in the same migration replicates too.
        db.conn()
            .execute_batch("insert into links values (1, 'u', 't')")
            .unwrap();
        let titled: i64 = db
            .conn()
            .query_row(
                "select count(*) from crsql_changes where cid = 'title'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(titled, 1);
        assert_eq!(db.crr_tables().unwrap(), ["links", "notes"]);
        // A CHECK, an index on an expression and a partial index, with pure functions.
        let steps = db
            .migrate(
                "create table checked (id integer primary key not null, v text check (length(v) < 9));
                 create index notes_by_lower on notes (lower(body)) where body is not null;",
                false,
            )
            .unwrap();
        assert_eq!(steps.applied.len(), 2);
        // The new columns replicate: a write to them is a change.
        db.conn()
            .execute_batch("update notes set tag = 'x' where id = 1")
            .unwrap();
        let tagged: i64 = db
            .conn()
            .query_row(
                "select count(*) from crsql_changes where cid = 'tag'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(tagged, 1);
    }

    #[test]
    fn a_destructive_or_unknown_statement_refuses_the_whole_migration() {
        let (_dir, mut db) = temp_db();
        db.conn().execute_batch(NOTES).unwrap();
        let before = db.schema().unwrap();
        for (sql, said) in [
            ("alter table notes drop column body", "dropping a column"),
            ("alter table notes rename to posts", "a rename"),
            ("alter table notes rename column body to text", "a rename"),
            ("drop table notes", "dropping a table"),
            (
                "alter table notes add column n integer not null",
                "NOT NULL without a default",
            ),
            ("create unique index u on notes (body)", "UNIQUE index"),
            (
                "insert into notes values (2, 'x')",
                "CREATE TABLE, ALTER TABLE",
            ),
        ] {
            let migration = format!("alter table notes add column ok text; {sql}");
            let err = db.migrate(&migration, false).unwrap_err().to_string();
            assert!(err.contains(said), "{sql}: {err}");
            assert_eq!(db.schema().unwrap(), before, "{sql}");
        }
        assert!(matches!(
            db.migrate("-- nothing", false),
            Err(DbError::EmptyMigration)
        ));
        // SQLite's own refusal, by statement, and nothing applied.
        let err = db
            .migrate(
                "alter table notes add column ok text; alter table nope add column x text",
                false,
            )
            .unwrap_err()
            .to_string();
        assert!(err.contains("statement 2") && err.contains("nope"), "{err}");
        assert_eq!(db.schema().unwrap(), before);
        // A dry run says what it would do and does nothing.
        let steps = db
            .migrate("alter table notes add column later text", true)
            .unwrap();
        assert_eq!(steps.applied.len(), 1);
        assert_eq!(db.schema().unwrap(), before);
    }

    /// ddcp's fast path for added columns (patches/crsqlite-0.16.3-fast-add-column.patch)
    /// skips the compaction and backfill of cr-sqlite's usual commit: after an ADD COLUMN they
    /// find nothing to do, so both leave the same clock rows and changes, and writes after
    /// replicate the same.
    #[test]
    fn the_fast_path_for_added_columns_keeps_what_the_usual_commit_keeps() {
        let (_dir, mut db) = temp_db();
        let both = |sql: &str| {
            // Each statement for both tables in one transaction: the same db_versions.
            format!(
                "begin; {}; {}; commit;",
                sql.replace("T", "usual"),
                sql.replace("T", "fast")
            )
        };
        for table in ["usual", "fast"] {
            db.conn()
                .execute_batch(&format!(
                    "create table {table} (id integer primary key not null, body text, n integer default 3);
                     select crsql_as_crr('{table}');"
                ))
                .unwrap();
        }
        for sql in [
            "insert into T (id, body) with recursive n(i) as (select 1 union all select i + 1 from n where i < 40) select i, 'row ' || i from n",
            "update T set n = id * 2 where id % 3 = 0",
            "delete from T where id % 7 = 0",
            "insert into T (id, body) values (7, 'back')",
        ] {
            db.conn().execute_batch(&both(sql)).unwrap();
        }
        db.conn()
            .execute_batch(
                "select crsql_begin_alter('usual');
                 alter table usual add column tag text;
                 alter table usual add column pri integer not null default 7;
                 select crsql_commit_alter('usual');",
            )
            .unwrap();
        db.migrate(
            "alter table fast add column tag text;
             alter table fast add column pri integer not null default 7;",
            false,
        )
        .unwrap();
        let clock = |db: &Db, table: &str| -> Vec<String> {
            let sql = format!(
                "select key || ' ' || col_name || ' ' || col_version || ' ' || db_version
                 from {table}__crsql_clock order by key, col_name"
            );
            let mut statement = db.conn().prepare(&sql).unwrap();
            statement
                .query_map([], |row| row.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        let changes = |db: &Db, table: &str| -> Vec<String> {
            let mut statement = db
                .conn()
                .prepare(
                    "select hex(pk) || ' ' || cid || ' ' || quote(val) || ' ' || col_version
                       || ' ' || db_version || ' ' || cl
                     from crsql_changes where \"table\" = ?1 order by pk, cid",
                )
                .unwrap();
            statement
                .query_map([table], |row| row.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        assert!(!clock(&db, "usual").is_empty());
        assert_eq!(clock(&db, "fast"), clock(&db, "usual"));
        assert_eq!(changes(&db, "fast"), changes(&db, "usual"));
        for sql in [
            "update T set tag = 'x', pri = 1 where id < 5",
            "insert into T (id, body, tag) values (100, 'new', 'y')",
            "delete from T where id = 2",
        ] {
            db.conn().execute_batch(&both(sql)).unwrap();
        }
        assert_eq!(clock(&db, "fast"), clock(&db, "usual"));
        assert_eq!(changes(&db, "fast"), changes(&db, "usual"));
    }
}
