//! SQL an app runs through ddcp (the HTTP API, docs/api.md): its statements in one transaction
//! on the one writer's connection, and read queries on a connection of their own. What it may
//! do is checked by SQLite's authorizer as each statement is prepared, whatever its spelling:
//! read and write its own tables; not touch ddcp's or cr-sqlite's (record secrets live there),
//! change the schema (that is `ddcp migrate`'s, so that peers follow it), attach files or
//! manage transactions itself. Every statement runs within a deadline, and what it returns is
//! bounded.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::limits::Limit;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, Statement};

use super::changes::{SqlValue, value_from_sql};
use super::migration_plan::is_own_name;
use super::{Db, DbError};
use crate::sync::{DbVersion, Value};

/// Statements one transaction may hold.
pub const MAX_STATEMENTS: usize = 100;
/// Rows one statement may return.
pub const MAX_RESULT_ROWS: usize = 10_000;
/// Bytes (of values) one statement may return.
pub const MAX_RESULT_BYTES: usize = 8 << 20;
/// How long one request's statements may run, together: a runaway query must not hold the
/// writer (and so replication) or a reader.
pub const STATEMENT_DEADLINE: Duration = Duration::from_secs(10);

/// One statement of an app's, with its parameters (`?1`, `?2`, ... in order).
#[derive(Clone, Debug, PartialEq)]
pub struct AppStatement {
    /// The SQL.
    pub sql: String,
    /// Its parameters.
    pub params: Vec<Value>,
}

impl AppStatement {
    /// `sql` without parameters.
    pub fn new(sql: impl Into<String>) -> AppStatement {
        AppStatement {
            sql: sql.into(),
            params: Vec::new(),
        }
    }

    /// `sql` with its parameters, in order.
    pub fn with_params(sql: impl Into<String>, params: Vec<Value>) -> AppStatement {
        AppStatement {
            sql: sql.into(),
            params,
        }
    }
}

/// Rows a statement returned.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AppRows {
    /// The columns' names.
    pub columns: Vec<String>,
    /// The rows, each a value per column.
    pub rows: Vec<Vec<Value>>,
}

/// What one statement of a transaction did.
#[derive(Clone, Debug, PartialEq)]
pub struct StatementDone {
    /// Rows it inserted, changed or deleted.
    pub rows_affected: u64,
    /// The rows it returned (a SELECT, or `RETURNING`), if it returns any.
    pub rows: Option<AppRows>,
}

/// A committed transaction.
#[derive(Clone, Debug, PartialEq)]
pub struct Committed {
    /// Each statement's outcome, in order.
    pub results: Vec<StatementDone>,
    /// The database's version after it: what a subscriber sees it at.
    pub db_version: DbVersion,
}

impl Db {
    /// Runs an app's `statements` in one transaction: all of them or, when one fails or is
    /// refused, none (the error names it).
    pub fn run_app_transaction(
        &mut self,
        statements: &[AppStatement],
    ) -> Result<Committed, DbError> {
        if statements.is_empty() || statements.len() > MAX_STATEMENTS {
            return Err(DbError::AppStatementCount(statements.len()));
        }
        let guard = match &self.app_guard {
            Some(guard) => guard.clone(),
            None => {
                let guard = Guard::install(self.conn(), Access::Write)?;
                self.app_guard = Some(guard.clone());
                guard
            }
        };
        let tx = self.conn_mut().transaction()?;
        let limits = AppLimits::set(&tx)?;
        let deadline = Deadline::start(&tx)?;
        let mut results = Vec::with_capacity(statements.len());
        for (index, statement) in statements.iter().enumerate() {
            let done = run_statement(&tx, &guard, statement, Access::Write).map_err(|reason| {
                DbError::AppStatement {
                    statement: index + 1,
                    reason: deadline.explain(reason),
                }
            });
            match done {
                Ok(done) => results.push(done),
                Err(err) => {
                    deadline.end(&tx)?;
                    limits.restore(&tx)?;
                    return Err(err);
                }
            }
        }
        deadline.end(&tx)?;
        limits.restore(&tx)?;
        tx.commit()?;
        Ok(Committed {
            results,
            db_version: self.db_version()?,
        })
    }
}

/// A connection for an app's read queries, apart from the writer's: reads do not wait for
/// replication's applies, nor hold them up. Read-only; cr-sqlite is not loaded (reading its
/// tables needs none of it).
#[derive(Debug)]
pub struct Reader {
    conn: Connection,
    guard: Guard,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Guard")
    }
}

impl Reader {
    /// Opens `path` for reading.
    pub fn open(path: &Path) -> Result<Reader, DbError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(super::BUSY_TIMEOUT)?;
        // For good: a reader attaches nothing and makes no value bigger than a result.
        AppLimits::set(&conn)?;
        let guard = Guard::install(&conn, Access::Read)?;
        Ok(Reader { conn, guard })
    }

    /// Runs one read query: its rows, bounded.
    pub fn query(&self, statement: &AppStatement) -> Result<AppRows, DbError> {
        let deadline = Deadline::start(&self.conn)?;
        let done = run_statement(&self.conn, &self.guard, statement, Access::Read);
        deadline.end(&self.conn)?;
        let done = done.map_err(|reason| DbError::AppStatement {
            statement: 1,
            reason: deadline.explain(reason),
        })?;
        Ok(done.rows.unwrap_or_default())
    }
}

/// What a statement may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Access {
    /// Read the app's tables.
    Read,
    /// Read and write them.
    Write,
}

/// SQLite's authorizer on a connection that runs an app's statements: installed once, and for
/// good, on the writer (until a migration replaces it) and on a reader (installing or removing
/// one expires every statement prepared on the connection, cr-sqlite's cached ones too), and
/// judging only while an app's statement is prepared; what SQLite prepares as it runs
/// (cr-sqlite's own work, replication's) is not the app's.
#[derive(Clone)]
pub(super) struct Guard {
    judging: Arc<AtomicBool>,
    refusal: Arc<Mutex<Option<String>>>,
}

impl Guard {
    fn install(conn: &Connection, access: Access) -> Result<Guard, DbError> {
        let judging = Arc::new(AtomicBool::new(false));
        let refusal = Arc::new(Mutex::new(None));
        let policy = {
            let (judging, refusal) = (Arc::clone(&judging), Arc::clone(&refusal));
            move |context: AuthContext<'_>| {
                if !judging.load(Ordering::Relaxed) {
                    return Authorization::Allow;
                }
                match authorize(access, &context) {
                    Ok(()) => Authorization::Allow,
                    Err(reason) => {
                        refusal.lock().get_or_insert(reason);
                        Authorization::Deny
                    }
                }
            }
        };
        conn.authorizer(Some(policy))?;
        Ok(Guard { judging, refusal })
    }

    /// Why `err` happened, in words: the authorizer's refusal when it refused.
    fn explain(&self, err: rusqlite::Error) -> String {
        self.refusal
            .lock()
            .take()
            .unwrap_or_else(|| super::error::sqlite_message(&err))
    }

    /// Prepares an app's statement, judged.
    fn prepare<'c>(&self, conn: &'c Connection, sql: &str) -> Result<Statement<'c>, String> {
        self.judging.store(true, Ordering::Relaxed);
        // One statement: SQLite refuses to prepare text holding a second.
        let prepared = conn.prepare(sql);
        self.judging.store(false, Ordering::Relaxed);
        prepared.map_err(|err| self.explain(err))
    }
}

/// Prepares `statement` through the guard, runs it, and collects what it returns. The
/// reason, in words, when it is refused or fails.
fn run_statement(
    conn: &Connection,
    guard: &Guard,
    statement: &AppStatement,
    access: Access,
) -> Result<StatementDone, String> {
    let failed = |err: rusqlite::Error| guard.explain(err);
    let mut prepared = guard.prepare(conn, &statement.sql)?;
    // What no authorizer is asked about (VACUUM) must not run in a query.
    if access == Access::Read && !prepared.readonly() {
        return Err("it writes: a query only reads (write with a transaction)".into());
    }
    let expected = prepared.parameter_count();
    if expected != statement.params.len() {
        return Err(format!(
            "it takes {expected} parameters and was given {}",
            statement.params.len()
        ));
    }
    for (index, param) in statement.params.iter().enumerate() {
        prepared
            .raw_bind_parameter(index + 1, SqlValue(param))
            .map_err(failed)?;
    }
    if prepared.column_count() == 0 {
        let rows_affected = prepared.raw_execute().map_err(failed)? as u64;
        return Ok(StatementDone {
            rows_affected,
            rows: None,
        });
    }
    let rows = collect_rows(&mut prepared).map_err(|err| match err {
        Collect::Sqlite(err) => failed(err),
        Collect::TooBig(what) => what,
    })?;
    Ok(StatementDone {
        rows_affected: conn.changes(),
        rows: Some(rows),
    })
}

enum Collect {
    Sqlite(rusqlite::Error),
    TooBig(String),
}

/// The rows of a prepared statement, within [`MAX_RESULT_ROWS`] and [`MAX_RESULT_BYTES`].
fn collect_rows(statement: &mut Statement<'_>) -> Result<AppRows, Collect> {
    let columns: Vec<String> = statement
        .column_names()
        .into_iter()
        .map(String::from)
        .collect();
    let mut rows = Vec::new();
    let mut bytes = 0;
    let mut cursor = statement.raw_query();
    while let Some(row) = cursor.next().map_err(Collect::Sqlite)? {
        if rows.len() == MAX_RESULT_ROWS {
            return Err(Collect::TooBig(format!(
                "it returns more than {MAX_RESULT_ROWS} rows: page through them (LIMIT and a key)"
            )));
        }
        let mut values = Vec::with_capacity(columns.len());
        for index in 0..columns.len() {
            let value = row.get_ref(index).map_err(Collect::Sqlite)?;
            // Counted before it is copied.
            bytes += 8 + match value {
                ValueRef::Text(bytes) | ValueRef::Blob(bytes) => bytes.len(),
                _ => 8,
            };
            if bytes > MAX_RESULT_BYTES {
                return Err(Collect::TooBig(format!(
                    "it returns more than {MAX_RESULT_BYTES} bytes: page through the rows (LIMIT and a key)"
                )));
            }
            values.push(value_from_sql(value));
        }
        rows.push(values);
    }
    Ok(AppRows { columns, rows })
}

const SCHEMA_CHANGE: &str =
    "it changes the schema: run a migration (`ddcp migrate`), which peers follow";

/// cr-sqlite's functions that change its state or a table's shape: never an app's.
const STATE_CHANGING: &[&str] = &[
    "crsql_as_crr",
    "crsql_as_table",
    "crsql_automigrate",
    "crsql_begin_alter",
    "crsql_commit_alter",
    "crsql_config_set",
    "crsql_finalize",
    "crsql_fract_as_ordered",
];

/// cr-sqlite's functions its triggers call as they record a write.
const TRIGGERS_OWN: &[&str] = &[
    "crsql_after_delete",
    "crsql_after_insert",
    "crsql_after_update",
    "crsql_get_seq",
    "crsql_increment_and_get_seq",
    "crsql_internal_sync_bit",
    "crsql_next_db_version",
    "crsql_rows_impacted",
];

/// What an app's statement may do, as SQLite prepares it.
///
/// SQLite names an `accessor` for what a trigger does (cr-sqlite's, which record the app's
/// writes as changes in the tables' clocks) but also for what a view or a subquery named in a
/// FROM or WITH clause does, and that name is the app's to choose: so an accessor opens only
/// what triggers need (cr-sqlite's clock tables and its triggers' functions), never ddcp's
/// tables, SQLite's or cr-sqlite's own, nor a function that changes cr-sqlite's state.
fn authorize(access: Access, context: &AuthContext<'_>) -> Result<(), String> {
    let inner = context.accessor.is_some();
    if context.database_name.is_some_and(|name| name != "main") {
        return Err("it reaches another database than this one".into());
    }
    match context.action {
        AuthAction::Select | AuthAction::Recursive => Ok(()),
        AuthAction::Read { table_name, .. } => table_access(table_name, inner),
        AuthAction::Function { function_name } => function_access(function_name, inner),
        AuthAction::Insert { table_name }
        | AuthAction::Update { table_name, .. }
        | AuthAction::Delete { table_name }
            if table_name.eq_ignore_ascii_case("sqlite_master") =>
        {
            Err(SCHEMA_CHANGE.into())
        }
        AuthAction::Insert { .. } | AuthAction::Update { .. } | AuthAction::Delete { .. }
            if access == Access::Read =>
        {
            Err("it writes: a query only reads (write with a transaction)".into())
        }
        AuthAction::Insert { table_name }
        | AuthAction::Update { table_name, .. }
        | AuthAction::Delete { table_name } => table_access(table_name, inner),
        AuthAction::Transaction { .. } | AuthAction::Savepoint { .. } => Err(
            "each request is one transaction already: leave out BEGIN, COMMIT and savepoints"
                .into(),
        ),
        AuthAction::CreateTable { .. }
        | AuthAction::CreateIndex { .. }
        | AuthAction::AlterTable { .. }
        | AuthAction::DropTable { .. }
        | AuthAction::DropIndex { .. }
        | AuthAction::CreateView { .. }
        | AuthAction::DropView { .. }
        | AuthAction::CreateTrigger { .. }
        | AuthAction::DropTrigger { .. }
        | AuthAction::CreateVtable { .. }
        | AuthAction::DropVtable { .. } => Err(SCHEMA_CHANGE.into()),
        other => Err(format!(
            "it does what an app's statement may not ({other:?})"
        )),
    }
}

/// Whether a statement (or, `inner`, a trigger, view or named subquery of it) may read or
/// write `table`.
fn table_access(table: &str, inner: bool) -> Result<(), String> {
    let lower = table.to_ascii_lowercase();
    // A pragma read as a table runs the pragma unasked (and shows ddcp's tables' shape).
    if lower.starts_with("pragma_") || lower == "dbstat" {
        return Err(format!("it reads {table}: a pragma is not an app's"));
    }
    let clock = lower.contains("__crsql_");
    match (clock, is_own_name(table)) {
        // cr-sqlite's triggers keep a table's clock.
        (true, _) if inner => Ok(()),
        (_, false) => Ok(()),
        _ => Err(format!(
            "it reaches {table}, one of ddcp's, cr-sqlite's or SQLite's own tables"
        )),
    }
}

/// Whether a statement (or, `inner`, a trigger of it) may call `function`.
fn function_access(function: &str, inner: bool) -> Result<(), String> {
    let name = function.to_ascii_lowercase();
    if STATE_CHANGING.contains(&name.as_str()) {
        return Err(format!(
            "it calls {function}(), which changes cr-sqlite's state"
        ));
    }
    if TRIGGERS_OWN.contains(&name.as_str()) && !inner {
        return Err(format!(
            "it calls {function}(), which only cr-sqlite's triggers call"
        ));
    }
    Ok(())
}

/// SQLite's limits while an app's statement runs: no database attached (`VACUUM INTO` attaches
/// its output file, and no authorizer is asked about it), and no value bigger than a result
/// may be (`randomblob(1e9)` would be made whole before any bound is checked). The writer's
/// own limits come back after.
struct AppLimits {
    attached: i32,
    length: i32,
}

impl AppLimits {
    fn set(conn: &Connection) -> Result<AppLimits, DbError> {
        Ok(AppLimits {
            attached: conn.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0)?,
            length: conn.set_limit(Limit::SQLITE_LIMIT_LENGTH, MAX_RESULT_BYTES as i32)?,
        })
    }

    fn restore(&self, conn: &Connection) -> Result<(), DbError> {
        conn.set_limit(Limit::SQLITE_LIMIT_ATTACHED, self.attached)?;
        conn.set_limit(Limit::SQLITE_LIMIT_LENGTH, self.length)?;
        Ok(())
    }
}

/// A deadline for a request's statements: SQLite's progress handler interrupts them past it.
struct Deadline {
    started: Instant,
}

impl Deadline {
    fn start(conn: &Connection) -> Result<Deadline, DbError> {
        let started = Instant::now();
        conn.progress_handler(10_000, Some(move || started.elapsed() > STATEMENT_DEADLINE))?;
        Ok(Deadline { started })
    }

    fn end(&self, conn: &Connection) -> Result<(), DbError> {
        Ok(conn.progress_handler(0, None::<fn() -> bool>)?)
    }

    /// `reason`, or why the statement was interrupted.
    fn explain(&self, reason: String) -> String {
        match self.started.elapsed() > STATEMENT_DEADLINE {
            true => format!(
                "it ran past {} s and was stopped",
                STATEMENT_DEADLINE.as_secs()
            ),
            false => reason,
        }
    }
}
