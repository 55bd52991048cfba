//! Running SQL text as the `ddcp shell` does: whole scripts line by line, with triggers,
//! comments and strings that hold semicolons, reporting errors by line.
#![allow(unsafe_code)] // `sqlite3_complete` is called through SQLite's C API, which rusqlite does not wrap.

use std::ffi::CString;
use std::io;

use rusqlite::fallible_iterator::FallibleIterator;
use rusqlite::{Batch, Statement};

use super::changes::value_from_sql;
use super::error::sqlite_message;
use super::{Db, DbError};
use crate::sync::Value;

/// SQL text that ends in a complete statement, and the line where it starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingSql {
    /// The SQL text, one or more statements.
    pub sql: String,
    /// 1-based line of the script where `sql` starts.
    pub line: usize,
}

/// Cuts text into complete statements as lines arrive, the way the sqlite3 shell does: a line
/// ends a statement when SQLite's own `sqlite3_complete` says the text so far is complete, which
/// knows about strings, comments and `CREATE TRIGGER ... END;`.
#[derive(Debug, Default)]
pub struct StatementSplitter {
    buffer: String,
    first_line: usize,
    lines_seen: usize,
}

impl StatementSplitter {
    /// A splitter at line 1.
    pub fn new() -> Self {
        Self::default()
    }

    /// True when no incomplete statement is pending (comments alone do not count).
    pub fn is_empty(&self) -> bool {
        is_blank_or_comments(&self.buffer)
    }

    /// The 1-based number of the next line.
    pub fn next_line(&self) -> usize {
        self.lines_seen + 1
    }

    /// Counts a line that is not SQL (a dot-command) so that line numbers stay right.
    pub fn skip_line(&mut self) {
        self.lines_seen += 1;
    }

    /// Adds one line; returns the statements it completes, if it completes any.
    pub fn push_line(&mut self, line: &str) -> Option<PendingSql> {
        self.lines_seen += 1;
        // Comments before a statement are dropped, so that its line number is its own.
        if self.is_empty() {
            self.buffer.clear();
            self.first_line = self.lines_seen;
        }
        self.buffer.push_str(line);
        self.buffer.push('\n');
        if is_complete(&self.buffer) {
            Some(self.take())
        } else {
            None
        }
    }

    /// What is left at the end of the input, complete or not (SQLite then reports it).
    pub fn finish(&mut self) -> Option<PendingSql> {
        if self.is_empty() {
            return None;
        }
        Some(self.take())
    }

    fn take(&mut self) -> PendingSql {
        PendingSql {
            sql: std::mem::take(&mut self.buffer),
            line: self.first_line,
        }
    }
}

/// True when `text` holds nothing but whitespace and complete comments.
fn is_blank_or_comments(text: &str) -> bool {
    let mut rest = text.trim_start();
    loop {
        if rest.is_empty() {
            return true;
        }
        if let Some(comment) = rest.strip_prefix("--") {
            match comment.find('\n') {
                Some(end) => rest = comment[end..].trim_start(),
                None => return true,
            }
        } else if let Some(comment) = rest.strip_prefix("/*") {
            match comment.find("*/") {
                Some(end) => rest = comment[end + 2..].trim_start(),
                None => return false,
            }
        } else {
            return false;
        }
    }
}

fn is_complete(sql: &str) -> bool {
    match CString::new(sql) {
        // SAFETY: a NUL-terminated string that lives across the call.
        Ok(text) => unsafe { rusqlite::ffi::sqlite3_complete(text.as_ptr()) != 0 },
        // The shell refuses NUL bytes before they get here; complete, so SQLite reports it.
        Err(_) => true,
    }
}

/// Where the rows of queries go.
pub trait RowSink {
    /// A statement that returns rows starts, with these column names.
    fn begin(&mut self, columns: &[String]) -> io::Result<()>;
    /// One row.
    fn row(&mut self, values: &[Value]) -> io::Result<()>;
    /// The statement's rows are done.
    fn end(&mut self) -> io::Result<()>;
}

impl Db {
    /// Runs every statement of `pending` in turn, sending rows to `sink`. Stops at the first
    /// error, which names its line and statement; statements before it stay done.
    pub fn run_sql(&self, pending: &PendingSql, sink: &mut dyn RowSink) -> Result<(), DbError> {
        let mut batch = Batch::new(self.conn(), &pending.sql);
        loop {
            let mut statement = match batch.next() {
                Ok(Some(statement)) => statement,
                Ok(None) => return Ok(()),
                Err(err) => return Err(script_error(pending, None, err)),
            };
            run_statement(&mut statement, sink)
                .map_err(|err| script_error(pending, Some(&statement), err))?;
        }
    }
}

/// Why one statement stopped: SQLite's error or the sink's.
enum StatementError {
    Sql(rusqlite::Error),
    Sink(io::Error),
}

impl From<rusqlite::Error> for StatementError {
    fn from(err: rusqlite::Error) -> Self {
        StatementError::Sql(err)
    }
}

impl From<io::Error> for StatementError {
    fn from(err: io::Error) -> Self {
        StatementError::Sink(err)
    }
}

fn run_statement(
    statement: &mut Statement<'_>,
    sink: &mut dyn RowSink,
) -> Result<(), StatementError> {
    let columns: Vec<String> = statement
        .column_names()
        .into_iter()
        .map(str::to_string)
        .collect();
    if columns.is_empty() {
        statement.raw_execute()?;
        return Ok(());
    }
    sink.begin(&columns)?;
    let mut rows = statement.raw_query();
    let mut values = Vec::with_capacity(columns.len());
    while let Some(row) = rows.next()? {
        values.clear();
        for index in 0..columns.len() {
            values.push(value_from_sql(row.get_ref(index)?));
        }
        sink.row(&values)?;
    }
    sink.end()?;
    Ok(())
}

fn script_error(
    pending: &PendingSql,
    statement: Option<&Statement<'_>>,
    err: impl Into<StatementError>,
) -> DbError {
    let err = match err.into() {
        StatementError::Sink(err) => return DbError::Io(err),
        StatementError::Sql(err) => err,
    };
    let chunk = pending.sql.as_str();
    // Where in the chunk the failing statement (or the failing token) starts.
    let (statement_start, offset, message) = match &err {
        rusqlite::Error::SqlInputError {
            msg, sql, offset, ..
        } => {
            let start = chunk.len().saturating_sub(sql.len());
            (start, start + (*offset).max(0) as usize, msg.clone())
        }
        other => {
            let text = statement.and_then(Statement::expanded_sql);
            let start = text.and_then(|text| chunk.find(text.trim())).unwrap_or(0);
            (start, start, sqlite_message(other))
        }
    };
    let before = &chunk[..chunk.floor_char_boundary(offset)];
    let line = pending.line + before.matches('\n').count();
    DbError::Script {
        line,
        statement: summarize(statement_text(
            &chunk[chunk.floor_char_boundary(statement_start)..],
            statement,
        )),
        message,
    }
}

fn statement_text(chunk: &str, statement: Option<&Statement<'_>>) -> String {
    statement
        .and_then(Statement::expanded_sql)
        .unwrap_or_else(|| chunk.to_string())
}

/// One line of at most 80 characters: the statement as the user will recognize it.
fn summarize(text: String) -> String {
    const MAX: usize = 80;
    let mut one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > MAX {
        one_line = one_line.chars().take(MAX - 3).collect::<String>() + "...";
    }
    one_line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::test_support::temp_db;

    fn split(script: &str) -> Vec<PendingSql> {
        let mut splitter = StatementSplitter::new();
        let mut out: Vec<PendingSql> = script
            .lines()
            .filter_map(|l| splitter.push_line(l))
            .collect();
        out.extend(splitter.finish());
        out
    }

    #[test]
    fn comments_alone_are_not_a_statement() {
        let mut splitter = StatementSplitter::new();
        assert_eq!(splitter.push_line("-- a comment"), None);
        assert!(splitter.is_empty());
        assert_eq!(splitter.push_line("/* block */ -- and more"), None);
        assert!(splitter.is_empty());
        let pending = splitter.push_line("select 1;").unwrap();
        assert_eq!(
            pending,
            PendingSql {
                sql: "select 1;\n".into(),
                line: 3
            }
        );
        assert_eq!(splitter.push_line("/* open"), None);
        assert!(!splitter.is_empty());
    }

    #[test]
    fn splits_on_complete_statements_only() {
        let script = "-- a comment; with a semicolon\n\
            create table t (a text);\n\
            insert into t values ('x; y');\n\
            create trigger tr after insert on t begin\n\
              insert into t values ('z');\n\
            end;\n\
            select 1; select 2;\n\
            select 3";
        let lines: Vec<usize> = split(script).iter().map(|p| p.line).collect();
        assert_eq!(lines, [2, 3, 4, 7, 8]);
    }

    struct Collect(Vec<Vec<Value>>);
    impl RowSink for Collect {
        fn begin(&mut self, _: &[String]) -> io::Result<()> {
            Ok(())
        }
        fn row(&mut self, values: &[Value]) -> io::Result<()> {
            self.0.push(values.to_vec());
            Ok(())
        }
        fn end(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn errors_name_their_line_and_stop_the_chunk() {
        let (_dir, db) = temp_db();
        let mut sink = Collect(Vec::new());
        let script = "create table t (a);\n\ninsert into t values (1);\nselect * from nope;\n";
        let mut failed = None;
        for pending in split(script) {
            if let Err(err) = db.run_sql(&pending, &mut sink) {
                failed = Some(err);
                break;
            }
        }
        let message = failed.unwrap().to_string();
        assert_eq!(
            message,
            "line 4: no such table: nope (in: select * from nope;)"
        );
        let syntax = db
            .run_sql(
                &PendingSql {
                    sql: "select 1;\nselec 2;".into(),
                    line: 10,
                },
                &mut sink,
            )
            .unwrap_err()
            .to_string();
        assert!(syntax.starts_with("line 11: "), "{syntax}");
        assert_eq!(sink.0, vec![vec![Value::Integer(1)]]);
    }
}
