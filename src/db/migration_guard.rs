//! One statement of a migration, run so that it does what its words say and nothing else. A
//! migration may be text a stranger wrote (a remote this database follows publishes it), and
//! the words `ddcp migrate` reads are not SQLite's parser: so SQLite itself is asked. While the
//! statement is prepared an authorizer sees every table, column and function it resolved,
//! whatever the quoting, and allows only what the step needs; after it ran, the schema must
//! have changed by exactly what the step makes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};

use super::migrate::MigrationStep;
use super::migration_plan::is_own_name;

/// Functions a CHECK, an index's expression or a partial index's WHERE may call: pure, and
/// none makes more than its input.
const PURE_FUNCTIONS: &[&str] = &[
    "abs",
    "coalesce",
    "glob",
    "hex",
    "ifnull",
    "instr",
    "length",
    "like",
    "lower",
    "ltrim",
    "max",
    "min",
    "nullif",
    "round",
    "rtrim",
    "substr",
    "substring",
    "trim",
    "typeof",
    "unicode",
    "upper",
];

/// Runs `sql`, the statement of `step`, under the authorizer, then checks what it changed.
/// The reason it was refused, in words, when it was.
pub(super) fn run_guarded(
    conn: &Connection,
    step: &MigrationStep,
    sql: &str,
) -> Result<(), String> {
    let before = Snapshot::read(conn).map_err(|err| super::error::sqlite_message(&err))?;
    let refusal = Arc::new(Mutex::new(None));
    let policy = {
        let (step, refusal) = (step.clone(), Arc::clone(&refusal));
        move |context: AuthContext<'_>| match authorize(&step, &context) {
            Ok(()) => Authorization::Allow,
            Err(reason) => {
                if let Ok(mut first) = refusal.lock() {
                    first.get_or_insert(reason);
                }
                Authorization::Deny
            }
        }
    };
    let sqlite_failed = |err: rusqlite::Error| {
        let refused = refusal.lock().ok().and_then(|mut reason| reason.take());
        refused.unwrap_or_else(|| super::error::sqlite_message(&err))
    };
    conn.authorizer(Some(policy)).map_err(&sqlite_failed)?;
    // One statement, exactly: SQLite refuses to prepare text that holds a second.
    let prepared = conn.prepare(sql);
    conn.authorizer(None::<fn(AuthContext<'_>) -> Authorization>)
        .map_err(&sqlite_failed)?;
    prepared
        .and_then(|mut statement| statement.execute([]))
        .map_err(&sqlite_failed)?;
    let after = Snapshot::read(conn).map_err(|err| super::error::sqlite_message(&err))?;
    before.changed_only_by(conn, step, &after)
}

/// What `step`'s statement may do while SQLite prepares it, or why not.
fn authorize(step: &MigrationStep, context: &AuthContext<'_>) -> Result<(), String> {
    let in_main = context.database_name.is_none_or(|name| name == "main");
    let target = match step {
        MigrationStep::CreateTable(table) | MigrationStep::AddColumn { table, .. } => table,
        MigrationStep::CreateIndex(index) => index,
    };
    if !in_main {
        return Err(format!(
            "it reaches database {}: a migration changes this database's own schema (main)",
            context.database_name.unwrap_or_default()
        ));
    }
    let is_schema = |table: &str| table.eq_ignore_ascii_case("sqlite_master");
    let adds_column = matches!(step, MigrationStep::AddColumn { .. });
    match context.action {
        // Every change of the schema writes SQLite's own table of it.
        AuthAction::Insert { table_name }
        | AuthAction::Update { table_name, .. }
        | AuthAction::Delete { table_name }
            if is_schema(table_name) =>
        {
            Ok(())
        }
        AuthAction::Read { table_name, .. } if is_schema(table_name) => Ok(()),
        AuthAction::CreateTable { table_name } if matches!(step, MigrationStep::CreateTable(_)) => {
            own_or(table_name)
        }
        // A table's own index for its primary key or UNIQUE columns.
        AuthAction::CreateIndex {
            index_name,
            table_name,
        } if matches!(step, MigrationStep::CreateTable(_))
            && table_name.eq_ignore_ascii_case(target)
            && index_name.starts_with("sqlite_autoindex_") =>
        {
            Ok(())
        }
        AuthAction::CreateIndex {
            index_name,
            table_name,
        } if matches!(step, MigrationStep::CreateIndex(_)) => {
            own_or(index_name)?;
            own_or(table_name)
        }
        // CREATE INDEX fills the index it makes.
        AuthAction::Reindex { index_name } if index_name.eq_ignore_ascii_case(target) => Ok(()),
        AuthAction::AlterTable {
            database_name,
            table_name,
        } if adds_column && database_name == "main" => own_or(table_name),
        // A column of the table the step makes or alters (a CHECK's, an index's): not another
        // table's.
        AuthAction::Read { table_name, .. } => match step {
            MigrationStep::CreateIndex(_) | MigrationStep::CreateTable(_) => {
                own_or(table_name)?;
                match step {
                    MigrationStep::CreateTable(table)
                        if !table.eq_ignore_ascii_case(table_name) =>
                    {
                        Err(format!("it reads table {table_name}"))
                    }
                    _ => Ok(()),
                }
            }
            // SQLite's ALTER checks the table with quick_check.
            MigrationStep::AddColumn { .. } if table_name == "pragma_quick_check" => Ok(()),
            MigrationStep::AddColumn { table, .. } if table.eq_ignore_ascii_case(table_name) => {
                Ok(())
            }
            MigrationStep::AddColumn { .. } => Err(format!("it reads table {table_name}")),
        },
        // The SQL of SQLite's own ALTER (its new column's words hold no expression: `plan`
        // refuses CHECK, AS and the rest).
        AuthAction::Pragma { pragma_name, .. } if adds_column && pragma_name == "quick_check" => {
            Ok(())
        }
        AuthAction::Select | AuthAction::Function { .. } if adds_column => Ok(()),
        AuthAction::Function { function_name } => {
            match PURE_FUNCTIONS.contains(&function_name.to_ascii_lowercase().as_str()) {
                true => Ok(()),
                false => Err(format!(
                    "it calls {function_name}(), which a migration may not (pure functions only: {})",
                    PURE_FUNCTIONS.join(", ")
                )),
            }
        }
        AuthAction::Select => Err("it selects rows: a migration makes tables, not rows".into()),
        other => Err(format!("it does what a migration may not ({other:?})")),
    }
}

/// `name`, when it is none of ddcp's, cr-sqlite's or SQLite's own.
fn own_or(name: &str) -> Result<(), String> {
    match is_own_name(name) {
        true => Err(format!(
            "{name} is one of ddcp's, cr-sqlite's or SQLite's own"
        )),
        false => Ok(()),
    }
}

/// SQLite's own table of the schema: (type, name) to (table name, SQL).
struct Snapshot(BTreeMap<(String, String), (String, Option<String>)>);

impl Snapshot {
    fn read(conn: &Connection) -> rusqlite::Result<Self> {
        let mut statement =
            conn.prepare("select type, lower(name), lower(tbl_name), sql from sqlite_master")?;
        let rows = statement.query_map([], |row| {
            Ok(((row.get(0)?, row.get(1)?), (row.get(2)?, row.get(3)?)))
        })?;
        Ok(Snapshot(rows.collect::<Result<_, _>>()?))
    }

    /// Whether `after` differs from this by exactly what `step` makes.
    fn changed_only_by(
        &self,
        conn: &Connection,
        step: &MigrationStep,
        after: &Snapshot,
    ) -> Result<(), String> {
        let added: Vec<_> = after
            .0
            .keys()
            .filter(|key| !self.0.contains_key(*key))
            .collect();
        let removed = self.0.keys().any(|key| !after.0.contains_key(key));
        let changed: Vec<_> = self
            .0
            .iter()
            .filter(|(key, value)| after.0.get(*key).is_some_and(|now| now != *value))
            .map(|(key, _)| key)
            .collect();
        let is = |key: &(String, String), kind: &str, name: &str| {
            key.0 == kind && key.1 == name.to_ascii_lowercase()
        };
        let did = match step {
            MigrationStep::CreateTable(table) => {
                let table = table.to_ascii_lowercase();
                changed.is_empty()
                    && added.iter().any(|key| is(key, "table", &table))
                    // The table and its own indexes (a primary key's, a UNIQUE's).
                    && added.iter().all(|key| after.0[*key].0 == table)
            }
            MigrationStep::CreateIndex(index) => {
                changed.is_empty() && added.len() == 1 && is(added[0], "index", index)
            }
            MigrationStep::AddColumn { table, column } => {
                added.is_empty()
                    && changed.len() == 1
                    && is(changed[0], "table", table)
                    && adds_one_column(conn, table, column)
            }
        };
        match did && !removed {
            true => Ok(()),
            false => Err(format!(
                "it did not make {} alone in this database's own schema",
                step.made()
            )),
        }
    }
}

/// Whether `column` is the last column of `table` (SQLite appends what ADD COLUMN adds).
fn adds_one_column(conn: &Connection, table: &str, column: &str) -> bool {
    let last: rusqlite::Result<String> = conn.query_row(
        "select name from pragma_table_info(?1) order by cid desc limit 1",
        [table],
        |row| row.get(0),
    );
    last.is_ok_and(|last| last.eq_ignore_ascii_case(column))
}
