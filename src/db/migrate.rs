//! `ddcp migrate`: the changes of schema that peers still on the old version of an app keep
//! replicating with (see docs/schema-evolution.md): a new table (made a CRR), a new column
//! (nullable, or NOT NULL with a default), a new index. Anything else is refused with one line
//! that says why and what to do instead, and the whole migration is one transaction: nothing of
//! it is applied unless all of it is.

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

/// A statement of a migration, understood.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Planned {
    step: MigrationStep,
    sql: String,
}

/// Refusals, said to the user with what to do instead.
const DESTRUCTIVE: &str = "peers still on the old version keep sending changes to the old shape, which cannot be merged into the new one: make a new table with the new shape, copy the rows into it, and move the app to it (docs/schema-evolution.md)";

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
            // One statement, exactly: a migration taken from a peer must not carry another
            // past the splitter (SQLite refuses to prepare two).
            tx.prepare(sql)
                .and_then(|mut statement| statement.execute([]))
                .map_err(sqlite_failed)?;
            // It did what it says, in this database's own schema (not another one's, as
            // `temp.t` or an attached database's would).
            if !is_present(&tx, step)? {
                return Err(failed(format!(
                    "it did not make {} in this database (a schema-qualified name?)",
                    step.made()
                )));
            }
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
        super::schema_history::record_migration(&tx, &normalized(&planned), origin)?;
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
    fn made(&self) -> String {
        match self {
            MigrationStep::CreateTable(table) => format!("table {table}"),
            MigrationStep::AddColumn { table, column } => format!("column {table}.{column}"),
            MigrationStep::CreateIndex(index) => format!("index {index}"),
        }
    }
}

/// The statements of `sql`, each understood, or the first refused.
fn plan(sql: &str) -> Result<Vec<Planned>, DbError> {
    let mut planned = Vec::new();
    for (index, statement) in statements(sql).into_iter().enumerate() {
        let refused = |reason: String| DbError::BadMigration {
            statement: index + 1,
            reason,
        };
        let tokens = tokens(&statement);
        let words: Vec<String> = tokens.iter().map(|t| t.to_ascii_uppercase()).collect();
        let word = |at: usize| words.get(at).map(String::as_str).unwrap_or("");
        // Names of ddcp's, cr-sqlite's and SQLite's own tables are not a migration's: a
        // migration taken from a peer must not reach them.
        let own = |name: &str| {
            let name = name.to_ascii_lowercase();
            ["ddcp_", "crsql_", "sqlite_", "__crsql"]
                .iter()
                .any(|prefix| name.starts_with(prefix))
        };
        let refused_own = |name: &str| {
            refused(format!(
                "{name} is one of ddcp's, cr-sqlite's or SQLite's own"
            ))
        };
        let step = match (word(0), word(1)) {
            ("CREATE", "TABLE") => {
                let table = name_after(&tokens, &words, 2)
                    .ok_or_else(|| refused("it names no table".into()))?;
                if own(&table) {
                    return Err(refused_own(&table));
                }
                // CREATE TABLE ... AS SELECT copies rows: a migration makes shapes, and one
                // taken from a peer must read nothing of this database.
                if words.windows(2).any(|w| w[0] == "AS" && w[1] == "SELECT") {
                    return Err(refused(
                        "CREATE TABLE ... AS SELECT: a migration makes tables, not rows (copy rows with `ddcp shell`)".into(),
                    ));
                }
                MigrationStep::CreateTable(table)
            }
            ("CREATE", "TEMP" | "TEMPORARY") => {
                return Err(refused("a temporary table is not replicated".into()));
            }
            ("CREATE", "INDEX") => {
                let index = name_after(&tokens, &words, 2)
                    .ok_or_else(|| refused("it names no index".into()))?;
                let on = words
                    .iter()
                    .position(|w| w == "ON")
                    .and_then(|at| tokens.get(at + 1))
                    .map(|table| unquoted(table))
                    .ok_or_else(|| refused("it names no table".into()))?;
                if let Some(name) = [&index, &on].into_iter().find(|name| own(name)) {
                    return Err(refused_own(name));
                }
                MigrationStep::CreateIndex(index)
            }
            ("CREATE", "UNIQUE") => {
                return Err(refused(
                    "a UNIQUE index: rows written apart on two peers could not both be merged; make the unique columns the primary key of a table of their own".into(),
                ));
            }
            ("ALTER", "TABLE") => {
                let table = name_after(&tokens, &words, 2)
                    .ok_or_else(|| refused("it names no table".into()))?;
                if own(&table) {
                    return Err(refused_own(&table));
                }
                // ALTER TABLE name ADD [COLUMN] column ...
                let action = 3;
                match word(action) {
                    "ADD" => {
                        let at = if word(action + 1) == "COLUMN" {
                            action + 2
                        } else {
                            action + 1
                        };
                        let column = tokens
                            .get(at)
                            .cloned()
                            .ok_or_else(|| refused("ADD COLUMN names no column".into()))?;
                        let rest = &words[at..];
                        let not_null = rest.windows(2).any(|w| w[0] == "NOT" && w[1] == "NULL");
                        if not_null && !rest.iter().any(|w| w == "DEFAULT") {
                            return Err(refused(format!(
                                "column {table}.{column} is NOT NULL without a default: rows that peers on the old version write could not hold it; give it a DEFAULT"
                            )));
                        }
                        MigrationStep::AddColumn {
                            table,
                            column: unquoted(&column),
                        }
                    }
                    "RENAME" => return Err(refused(format!("a rename: {DESTRUCTIVE}"))),
                    "DROP" => return Err(refused(format!("dropping a column: {DESTRUCTIVE}"))),
                    _ => return Err(refused("an ALTER TABLE a migration does not know".into())),
                }
            }
            ("DROP", "TABLE") => return Err(refused(format!("dropping a table: {DESTRUCTIVE}"))),
            ("DROP", "INDEX") => {
                return Err(refused(
                    "dropping an index: run it with `ddcp shell` (an index is this database's own, not its schema's)".into(),
                ));
            }
            _ => {
                return Err(refused(
                    "a migration holds CREATE TABLE, ALTER TABLE ... ADD COLUMN and CREATE INDEX only (write data with `ddcp shell`)".into(),
                ));
            }
        };
        planned.push(Planned {
            step,
            sql: statement,
        });
    }
    Ok(planned)
}

/// The name after `at` (past IF NOT EXISTS), unquoted.
fn name_after(tokens: &[String], words: &[String], at: usize) -> Option<String> {
    let at = if words.get(at).map(String::as_str) == Some("IF") {
        at + 3
    } else {
        at
    };
    tokens.get(at).map(|name| unquoted(name))
}

/// `name` without its quotes ("x", `x`, [x]), with doubled quotes made one.
fn unquoted(name: &str) -> String {
    let mut chars = name.chars();
    match (chars.next(), name.chars().last()) {
        (Some('"'), Some('"')) | (Some('`'), Some('`')) if name.len() >= 2 => {
            let quote = &name[..1];
            name[1..name.len() - 1].replace(&quote.repeat(2), quote)
        }
        (Some('['), Some(']')) if name.len() >= 2 => name[1..name.len() - 1].to_string(),
        _ => name.to_string(),
    }
}

/// The statements of `sql`: cut at each ';' outside quotes and comments, comments dropped,
/// blank ones left out.
fn statements(sql: &str) -> Vec<String> {
    let mut statements = Vec::new();
    let mut current = String::new();
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' | '`' | '[' => {
                let close = if c == '[' { ']' } else { c };
                current.push(c);
                for c in chars.by_ref() {
                    current.push(c);
                    if c == close {
                        break;
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
                current.push(' ');
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut star = false;
                for c in chars.by_ref() {
                    if star && c == '/' {
                        break;
                    }
                    star = c == '*';
                }
                current.push(' ');
            }
            ';' => {
                if !current.trim().is_empty() {
                    statements.push(current.trim().to_string());
                }
                current.clear();
            }
            c => current.push(c),
        }
    }
    if !current.trim().is_empty() {
        statements.push(current.trim().to_string());
    }
    statements
}

/// The words and quoted names of a statement, up to its first '(' (enough to tell what it
/// does), then every word after (for a column's definition).
fn tokens(statement: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut chars = statement.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' | '`' | '[' => {
                let close = if c == '[' { ']' } else { c };
                let mut name = String::from(c);
                while let Some(c) = chars.next() {
                    name.push(c);
                    if c == close {
                        if close != ']' && chars.peek() == Some(&close) {
                            name.push(close);
                            chars.next();
                        } else {
                            break;
                        }
                    }
                }
                tokens.push(name);
            }
            '\'' => {
                // A string: its words are not the statement's.
                let mut text = String::from(c);
                for c in chars.by_ref() {
                    text.push(c);
                    if c == '\'' {
                        break;
                    }
                }
                tokens.push(text);
            }
            c if c.is_alphanumeric() || c == '_' => {
                let mut word = String::from(c);
                while let Some(&next) = chars.peek() {
                    if next.is_alphanumeric() || next == '_' || next == '$' {
                        word.push(next);
                        chars.next();
                    } else {
                        break;
                    }
                }
                tokens.push(word);
            }
            _ => {}
        }
    }
    tokens
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
