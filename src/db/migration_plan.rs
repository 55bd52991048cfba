//! Reading a migration: its statements, each understood as one step (a new table, a column, an
//! index) or refused with one line that says why and what to do instead. The words read here
//! tell what a statement means to do; `migration_guard` has SQLite check that it does that and
//! nothing else.

use super::DbError;
use super::migrate::MigrationStep;

/// A statement of a migration, understood.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Planned {
    pub(super) step: MigrationStep,
    pub(super) sql: String,
}

/// Refusals, said to the user with what to do instead.
const DESTRUCTIVE: &str = "peers still on the old version keep sending changes to the old shape, which cannot be merged into the new one: make a new table with the new shape, copy the rows into it, and move the app to it (docs/schema-evolution.md)";

/// The statements of `sql`, each understood, or the first refused.
pub(super) fn plan(sql: &str) -> Result<Vec<Planned>, DbError> {
    let mut planned = Vec::new();
    for (index, statement) in statements(sql).into_iter().enumerate() {
        let refused = |reason: String| DbError::BadMigration {
            statement: index + 1,
            reason,
        };
        let tokens = tokens(&statement);
        let words: Vec<String> = tokens.iter().map(|t| t.to_ascii_uppercase()).collect();
        let word = |at: usize| words.get(at).map(String::as_str).unwrap_or("");
        // SQLite takes every byte past ASCII as part of a name, where the words here would
        // end at a non-ASCII space: a migration's own words must be ASCII.
        if has_bare_non_ascii(&statement) {
            return Err(refused(
                "a character past ASCII outside quotes: quote the name that holds it".into(),
            ));
        }
        let own = |name: &str| is_own_name(name);
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
                // CREATE TABLE ... AS (SELECT, VALUES, WITH ...) copies rows: a migration
                // makes shapes, and one taken from a peer must read nothing of this database.
                let after_name = name_end(&words, 2);
                if word(after_name) == "AS" {
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
                        // A type, NOT NULL, DEFAULT and COLLATE: what every peer's rows can
                        // hold. A CHECK, a foreign key or a generated value would be judged
                        // on every merge, and could fail rows peers on the old version write.
                        if let Some(word) = rest.iter().find(|w| {
                            matches!(w.as_str(), "CHECK" | "REFERENCES" | "AS" | "GENERATED")
                        }) {
                            return Err(refused(format!(
                                "ADD COLUMN with {word}: a new column takes a type, NOT NULL, DEFAULT and COLLATE only"
                            )));
                        }
                        // A DEFAULT names a literal (SQLite takes a bare word as a string, and
                        // cr-sqlite's usual commit as a column).
                        if let Some(default) = rest.iter().position(|w| w == "DEFAULT") {
                            let value = &tokens[at + default + 1..];
                            if !value.first().is_some_and(|v| is_literal(v)) {
                                return Err(refused(
                                    "a DEFAULT that is not a literal (a number, a 'string', NULL, TRUE or FALSE)".into(),
                                ));
                            }
                        }
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

/// The position of the word after the name at `at` (past IF NOT EXISTS).
fn name_end(words: &[String], at: usize) -> usize {
    match words.get(at).map(String::as_str) {
        Some("IF") => at + 4,
        _ => at + 1,
    }
}

/// Whether `name` is one of ddcp's, cr-sqlite's or SQLite's own tables or indexes (SQLite's
/// names ignore ASCII case): a migration, one taken from a peer above all, must not reach them.
pub(super) fn is_own_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["ddcp_", "crsql_", "sqlite_"]
        .iter()
        .any(|prefix| name.starts_with(prefix))
        || name.contains("__crsql")
}

/// Whether a token is a literal a DEFAULT may name.
fn is_literal(token: &str) -> bool {
    let upper = token.to_ascii_uppercase();
    token.starts_with('\'')
        || token.starts_with(|c: char| c.is_ascii_digit())
        || matches!(upper.as_str(), "NULL" | "TRUE" | "FALSE")
}

/// Whether `statement` has a character past ASCII outside its quoted names and strings.
fn has_bare_non_ascii(statement: &str) -> bool {
    let mut quote = None;
    for c in statement.chars() {
        match quote {
            Some(close) if c == close => quote = None,
            Some(_) => {}
            None => match c {
                '\'' | '"' | '`' => quote = Some(c),
                '[' => quote = Some(']'),
                c if !c.is_ascii() => return true,
                _ => {}
            },
        }
    }
    false
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
        // SQLite takes a 'string' where a name goes, as the name.
        (Some('\''), Some('\'')) if name.len() >= 2 => name[1..name.len() - 1].replace("''", "'"),
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
