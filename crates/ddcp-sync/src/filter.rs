//! Which changes may pass between this database and a peer: by table, by column, and by row.
//! One filter type serves both directions: what a remote may change here (checked before a
//! page is applied) and what a reader may receive (checked as a page is read, so filtered
//! content never leaves the machine).
//!
//! The table and column parts are decided here, change by change. The row part is a SQL
//! expression over the row's columns ([`RowPredicate`]): only the database can evaluate it, so
//! this crate carries its text and says which changes make a row's match worth checking again.

use std::collections::BTreeSet;
use std::fmt;

use super::change::Change;
use super::schema::SchemaDesc;
pub use super::validate::SENTINEL_CID;

/// The longest `--where` expression taken: it is typed by a person.
pub const MAX_PREDICATE_CHARS: usize = 2000;

/// A column of a table, written `TABLE.COLUMN`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ColumnRef {
    /// The table.
    pub table: String,
    /// The column.
    pub column: String,
}

impl fmt::Display for ColumnRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.table, self.column)
    }
}

/// A read-only SQL expression over one row's columns (`owner = 'bob'`), as the user wrote it.
/// The database checks that it is one read-only expression over known columns before it is
/// stored ([`ChangeFilter::check_schema`] checks only what can be checked without SQLite).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowPredicate(String);

impl RowPredicate {
    /// The expression's text.
    pub fn as_sql(&self) -> &str {
        &self.0
    }

    /// Whether the expression may read `column`: every identifier outside string literals,
    /// compared without case as SQLite does. More than it reads at worst (a function's name
    /// that is also a column's), never less.
    pub fn may_read(&self, column: &str) -> bool {
        identifiers(&self.0).any(|name| name.eq_ignore_ascii_case(column))
    }
}

/// The identifiers of a SQL expression as SQLite's tokenizer finds them: bare words and
/// "quoted", `quoted` or [quoted] names; string literals, numbers and comments (`-- ...` to
/// the end of the line, `/* ... */`) skipped. A quote inside a comment must not open a literal
/// that hides the names after it: a column read but not named here would be a column whose
/// change never makes a row's match worth checking again.
fn identifiers(sql: &str) -> impl Iterator<Item = String> + '_ {
    let mut chars = sql.chars().peekable();
    std::iter::from_fn(move || {
        while let Some(c) = chars.next() {
            match c {
                '\'' => {
                    // A string literal; '' inside is an escaped quote, read as two literals.
                    for c in chars.by_ref() {
                        if c == '\'' {
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
                }
                '"' | '`' | '[' => {
                    let close = if c == '[' { ']' } else { c };
                    let mut name = String::new();
                    while let Some(c) = chars.next() {
                        if c == close {
                            // "" inside "..." (and `` inside `...`) is the quote itself.
                            if close != ']' && chars.peek() == Some(&close) {
                                chars.next();
                            } else {
                                break;
                            }
                        }
                        name.push(c);
                    }
                    return Some(name);
                }
                c if c.is_alphabetic() || c == '_' => {
                    let mut name = String::from(c);
                    while let Some(&next) = chars.peek() {
                        if next.is_alphanumeric() || next == '_' || next == '$' {
                            name.push(next);
                            chars.next();
                        } else {
                            break;
                        }
                    }
                    return Some(name);
                }
                c if c.is_ascii_digit() => {
                    // A number (1e5, 0x1f): not a name.
                    while chars.peek().is_some_and(|next| next.is_alphanumeric()) {
                        chars.next();
                    }
                }
                _ => {}
            }
        }
        None
    })
}

/// What may pass: tables, columns, rows. The default lets everything pass.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChangeFilter {
    /// Only these tables (all when `None`).
    pub tables: Option<BTreeSet<String>>,
    /// Never these tables.
    pub exclude_tables: BTreeSet<String>,
    /// Never these columns (a row's other columns pass).
    pub exclude_columns: BTreeSet<ColumnRef>,
    /// Only rows for which this holds.
    pub rows: Option<RowPredicate>,
    /// Never tables whose names start with one of these: another database's content kept
    /// here (ddcp's mirrors), not served onward. Set by the database, never by flags.
    pub hidden_prefixes: BTreeSet<String>,
}

/// Why a filter is refused. Meant for the user who typed it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[allow(missing_docs)] // each #[error] says what the variant means
pub enum BadFilter {
    #[error("a column is named as TABLE.COLUMN; {0:?} is not one")]
    NotAColumn(String),
    #[error("a row filter is one SQL expression of at most {MAX_PREDICATE_CHARS} characters")]
    PredicateTooLong,
    #[error("a row filter is one SQL expression: {0}")]
    NotOneExpression(&'static str),
    #[error("no CRR table named {0:?} here")]
    UnknownTable(String),
    #[error("no column named {0} here")]
    UnknownColumn(String),
    #[error("{0} is in its table's primary key: a row cannot be sent without its key")]
    KeyColumn(String),
    #[error("the --where expression does not work on table {}: {reason}", crate::text::printable(.table, 80))]
    BadPredicate { table: String, reason: String },
}

impl ColumnRef {
    /// `TABLE.COLUMN` as a column.
    pub fn parse(name: &str) -> Result<ColumnRef, BadFilter> {
        match name.trim().split_once('.') {
            Some((table, column)) if !table.is_empty() && !column.is_empty() => Ok(ColumnRef {
                table: table.to_string(),
                column: column.to_string(),
            }),
            _ => Err(BadFilter::NotAColumn(crate::text::printable(name, 80))),
        }
    }
}

impl RowPredicate {
    /// A row predicate from its text, bounded; `None` for an empty one (every row).
    pub fn parse(text: &str) -> Result<Option<RowPredicate>, BadFilter> {
        let text = text.trim();
        if text.chars().count() > MAX_PREDICATE_CHARS {
            return Err(BadFilter::PredicateTooLong);
        }
        check_one_expression(text).map_err(BadFilter::NotOneExpression)?;
        Ok((!text.is_empty()).then(|| RowPredicate(text.to_string())))
    }
}

/// Checks that `sql` is one expression as far as its brackets and its end go: each '(' closed
/// after it opens, no ';', no quote or comment left open. The expression is used inside
/// parentheses, joined with others (a member's with what is shared, a query's own
/// conditions): `x) or (1` would close them early and make the whole join true, and a `--`
/// comment would hide the SQL after it. SQLite then checks the rest (see `Db::check_filter`).
fn check_one_expression(sql: &str) -> Result<(), &'static str> {
    let mut depth = 0usize;
    let mut chars = sql.chars().peekable();
    // Whether the last character read was part of a name (`a$b` is a name, `$b` a parameter).
    let mut after_name = false;
    while let Some(c) = chars.next() {
        let in_name = after_name && (c.is_alphanumeric() || c == '_' || c == '$');
        let starts_name = c.is_alphabetic() || c == '_';
        match c {
            '\'' | '"' | '`' | '[' => {
                let close = if c == '[' { ']' } else { c };
                loop {
                    match chars.next() {
                        None => return Err("a quote is not closed"),
                        // '' inside '...' (and "" inside "...") is the quote itself.
                        Some(c) if c == close && close != ']' && chars.peek() == Some(&close) => {
                            chars.next();
                        }
                        Some(c) if c == close => break,
                        Some(_) => {}
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                // Up to its end of line, which must come: SQL after the expression would
                // be part of the comment.
                let ended = chars.by_ref().any(|c| c == '\n');
                if !ended {
                    return Err(
                        "a -- comment may not end it (what it is joined with would be part of the comment)",
                    );
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut star = false;
                let closed = chars.by_ref().any(|c| {
                    let closes = star && c == '/';
                    star = c == '*';
                    closes
                });
                if !closed {
                    return Err("a /* comment is not closed");
                }
            }
            ';' => return Err("it holds a ';'"),
            // A parameter: SQLite reads `$a(...)` as one token, brackets and all.
            '?' | ':' | '@' => return Err("it holds a parameter ($, :, @ or ?)"),
            '$' if !after_name => return Err("it holds a parameter ($, :, @ or ?)"),
            '(' => depth += 1,
            ')' => {
                depth = depth
                    .checked_sub(1)
                    .ok_or("a ')' closes a '(' it does not open")?
            }
            _ => {}
        }
        after_name = in_name || starts_name;
    }
    match depth {
        0 => Ok(()),
        _ => Err("a '(' is not closed"),
    }
}

impl ChangeFilter {
    /// A filter from its parts (as [`ChangeFilter::parts`] gives them, as they are stored, or
    /// as the command line's flags name them once split).
    pub fn from_parts(
        tables: Option<Vec<String>>,
        exclude_tables: Vec<String>,
        exclude_columns: Vec<String>,
        rows: Option<String>,
    ) -> Result<ChangeFilter, BadFilter> {
        Ok(ChangeFilter {
            tables: tables.map(|tables| tables.into_iter().collect()),
            exclude_tables: exclude_tables.into_iter().collect(),
            exclude_columns: exclude_columns
                .iter()
                .map(|name| ColumnRef::parse(name))
                .collect::<Result<_, _>>()?,
            rows: rows
                .as_deref()
                .map(RowPredicate::parse)
                .transpose()?
                .flatten(),
            hidden_prefixes: BTreeSet::new(),
        })
    }

    /// True when it lets everything pass.
    pub fn is_open(&self) -> bool {
        *self == ChangeFilter::default()
    }

    /// Whether changes of `table` may pass at all.
    pub fn admits_table(&self, table: &str) -> bool {
        self.tables.as_ref().is_none_or(|only| only.contains(table))
            && !self.exclude_tables.contains(table)
            && !self
                .hidden_prefixes
                .iter()
                .any(|prefix| table.starts_with(prefix.as_str()))
    }

    /// Whether the cell `cid` of a row of `table` may pass, whatever the row (a row's
    /// create/delete sentinel passes with its table).
    pub fn admits_cell(&self, table: &str, cid: &str) -> bool {
        self.admits_table(table)
            && (cid == SENTINEL_CID
                || !self.exclude_columns.contains(&ColumnRef {
                    table: table.to_string(),
                    column: cid.to_string(),
                }))
    }

    /// Whether `change` may pass as far as tables and columns go (its row is for the
    /// predicate, when there is one).
    pub fn admits(&self, change: &Change) -> bool {
        self.admits_cell(&change.table, &change.cid)
    }

    /// Whether `change` may make its row start to match the predicate: a row created or
    /// brought back, or a column the predicate reads. A reader that did not see the row before
    /// then needs all of it.
    pub fn may_reveal_row(&self, change: &Change) -> bool {
        self.rows
            .as_ref()
            .is_some_and(|rows| change.cid == SENTINEL_CID || rows.may_read(&change.cid))
    }

    /// What passes both this filter and `other` (what the database shares with everyone, and
    /// what one member may read).
    pub fn and(&self, other: &ChangeFilter) -> ChangeFilter {
        let tables = match (&self.tables, &other.tables) {
            (Some(a), Some(b)) => Some(a.intersection(b).cloned().collect()),
            (Some(only), None) | (None, Some(only)) => Some(only.clone()),
            (None, None) => None,
        };
        let rows = match (&self.rows, &other.rows) {
            (Some(a), Some(b)) => Some(RowPredicate(format!("({}) and ({})", a.0, b.0))),
            (Some(rows), None) | (None, Some(rows)) => Some(rows.clone()),
            (None, None) => None,
        };
        ChangeFilter {
            tables,
            exclude_tables: &self.exclude_tables | &other.exclude_tables,
            exclude_columns: &self.exclude_columns | &other.exclude_columns,
            rows,
            hidden_prefixes: &self.hidden_prefixes | &other.hidden_prefixes,
        }
    }

    /// The tables a change may come from and that the row predicate must be valid on.
    pub fn admitted_tables<'s>(&self, schema: &'s SchemaDesc) -> Vec<&'s str> {
        schema
            .tables
            .iter()
            .map(|table| table.name.as_str())
            .filter(|table| self.admits_table(table))
            .collect()
    }

    /// Checks the names against `schema`: every table a CRR, every excluded column one of its
    /// table's and not in its key.
    pub fn check_schema(&self, schema: &SchemaDesc) -> Result<(), BadFilter> {
        let known = |name: &str| schema.tables.iter().find(|table| table.name == name);
        let named = self.tables.iter().flatten().chain(&self.exclude_tables);
        if let Some(unknown) = named.into_iter().find(|name| known(name).is_none()) {
            return Err(BadFilter::UnknownTable(crate::text::printable(unknown, 80)));
        }
        for excluded in &self.exclude_columns {
            let printed = || crate::text::printable(&excluded.to_string(), 120);
            let table =
                known(&excluded.table).ok_or_else(|| BadFilter::UnknownColumn(printed()))?;
            let column = table
                .columns
                .iter()
                .find(|column| column.name == excluded.column)
                .ok_or_else(|| BadFilter::UnknownColumn(printed()))?;
            if column.pk_index > 0 {
                return Err(BadFilter::KeyColumn(printed()));
            }
        }
        Ok(())
    }

    /// The stored parts: tables (`None`: all), excluded tables, excluded columns
    /// (`TABLE.COLUMN`), the row predicate.
    pub fn parts(
        &self,
    ) -> (
        Option<Vec<String>>,
        Vec<String>,
        Vec<String>,
        Option<String>,
    ) {
        (
            self.tables
                .as_ref()
                .map(|tables| tables.iter().cloned().collect()),
            self.exclude_tables.iter().cloned().collect(),
            self.exclude_columns
                .iter()
                .map(ColumnRef::to_string)
                .collect(),
            self.rows.as_ref().map(|rows| rows.0.clone()),
        )
    }
}

/// One line for people: `tables=a,b exclude-columns=t.c where=(owner = 'bob')`, or `all`.
impl fmt::Display for ChangeFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_open() {
            return f.write_str("all");
        }
        let mut parts = Vec::new();
        let list = |names: &mut dyn Iterator<Item = String>| names.collect::<Vec<_>>().join(",");
        if let Some(tables) = &self.tables {
            parts.push(format!("tables={}", list(&mut tables.iter().cloned())));
        }
        if !self.exclude_tables.is_empty() {
            let names = list(&mut self.exclude_tables.iter().cloned());
            parts.push(format!("exclude-tables={names}"));
        }
        if !self.exclude_columns.is_empty() {
            let names = list(&mut self.exclude_columns.iter().map(ColumnRef::to_string));
            parts.push(format!("exclude-columns={names}"));
        }
        if let Some(rows) = &self.rows {
            parts.push(format!("where=({})", rows.0));
        }
        if !self.hidden_prefixes.is_empty() {
            let prefixes = list(&mut self.hidden_prefixes.iter().map(|p| format!("{p}*")));
            parts.push(format!("not-served={prefixes}"));
        }
        f.write_str(&parts.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{ColumnDesc, TableDesc};
    use crate::{DbVersion, Seq, SiteId, Value};

    /// A filter of these parts, each a comma-separated list as typed.
    fn filter(
        tables: Option<&str>,
        exclude_columns: Option<&str>,
        rows: Option<&str>,
    ) -> Result<ChangeFilter, BadFilter> {
        let list = |text: &str| {
            text.split(',')
                .map(|name| name.trim().to_string())
                .collect()
        };
        ChangeFilter::from_parts(
            tables.map(list),
            Vec::new(),
            exclude_columns.map(list).unwrap_or_default(),
            rows.map(str::to_string),
        )
    }

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
    fn tables_and_columns_pass_or_not() {
        let open = ChangeFilter::default();
        assert!(open.is_open() && open.admits(&change("tags", "name")));
        assert_eq!(open.to_string(), "all");
        let narrow = filter(Some("bookmarks, notes"), Some("notes.secret"), None).unwrap();
        assert!(narrow.admits(&change("bookmarks", "url")));
        assert!(!narrow.admits(&change("tags", "name")));
        assert!(!narrow.admits(&change("notes", "secret")));
        assert!(narrow.admits(&change("notes", "body")));
        // A row's sentinel passes with its table, whatever columns are excluded.
        assert!(narrow.admits(&change("notes", SENTINEL_CID)));
        assert_eq!(
            narrow.to_string(),
            "tables=bookmarks,notes exclude-columns=notes.secret"
        );
        let excluded =
            ChangeFilter::from_parts(None, vec!["tags".into()], Vec::new(), None).unwrap();
        assert!(!excluded.admits(&change("tags", SENTINEL_CID)));
        assert!(excluded.admits(&change("notes", "body")));
    }

    #[test]
    fn bad_parts_are_refused_with_the_reason() {
        assert!(matches!(
            filter(None, Some("nodot"), None),
            Err(BadFilter::NotAColumn(_))
        ));
        assert!(matches!(
            filter(None, Some("t."), None),
            Err(BadFilter::NotAColumn(_))
        ));
        // Issue 29, item 6: what would change the meaning of the expression it is joined with.
        for (text, reason) in [
            ("x) or (1", "closes a '('"),
            ("owner = 'bob' --", "comment"),
            ("owner = 'bob' /* x ", "comment"),
            ("owner = 'bob' /* ) or (1 */ ) or (1", "closes a '('"),
            ("1; drop table t", "';'"),
            ("(owner = 'bob'", "not closed"),
            ("owner = 'bob", "quote"),
            ("\"owner = 'bob'", "quote"),
            ("$a(') ) or 1 or (1 = ') --'\n and 1", "parameter"),
            ("owner = :who", "parameter"),
            ("owner = ?1", "parameter"),
        ] {
            match filter(None, None, Some(text)) {
                Err(BadFilter::NotOneExpression(why)) => {
                    assert!(why.contains(reason), "{text}: {why}")
                }
                other => panic!("{text}: {other:?}"),
            }
        }
        for text in [
            "owner = 'it''s (not) -- a comment; really'",
            "\"odd\"\"name\" = 1 and [b)] = `c(`",
            "(a = 1) or (b in (1, 2))",
            "a$b = 'costs $5: ok?'",
            "a = 1 /* (closed) */ -- ( a comment of its own line\n or b = 2",
        ] {
            assert!(filter(None, None, Some(text)).is_ok(), "{text}");
        }
        let long = "x".repeat(MAX_PREDICATE_CHARS + 1);
        assert_eq!(
            filter(None, None, Some(&long)),
            Err(BadFilter::PredicateTooLong)
        );
    }

    #[test]
    fn a_filter_is_checked_against_the_schema() {
        let column = |name: &str, pk_index| ColumnDesc {
            name: name.into(),
            decl_type: "TEXT".into(),
            not_null: pk_index > 0,
            pk_index,
            default_value: None,
        };
        let schema = SchemaDesc::new(vec![TableDesc {
            name: "notes".into(),
            columns: vec![column("id", 1), column("body", 0)],
        }]);
        let check = |tables, columns| filter(tables, columns, None).unwrap().check_schema(&schema);
        assert_eq!(check(Some("notes"), Some("notes.body")), Ok(()));
        assert!(matches!(
            check(Some("nope"), None),
            Err(BadFilter::UnknownTable(_))
        ));
        assert!(matches!(
            check(None, Some("notes.nope")),
            Err(BadFilter::UnknownColumn(_))
        ));
        assert!(matches!(
            check(None, Some("nope.body")),
            Err(BadFilter::UnknownColumn(_))
        ));
        assert!(matches!(
            check(None, Some("notes.id")),
            Err(BadFilter::KeyColumn(_))
        ));
    }

    #[test]
    fn a_predicate_names_the_columns_it_may_read() {
        let rows =
            RowPredicate::parse("owner = 'bob''s' and \"Project\" in ('a', 'b') and x1 > 0x1f")
                .unwrap()
                .unwrap();
        assert!(rows.may_read("OWNER") && rows.may_read("project") && rows.may_read("x1"));
        // Words inside string literals and numbers are not names.
        assert!(!rows.may_read("bob") && !rows.may_read("a") && !rows.may_read("x1f"));
        let filter = ChangeFilter {
            rows: Some(rows),
            ..ChangeFilter::default()
        };
        assert!(filter.may_reveal_row(&change("t", "owner")));
        assert!(filter.may_reveal_row(&change("t", SENTINEL_CID)));
        assert!(!filter.may_reveal_row(&change("t", "body")));
        assert!(!ChangeFilter::default().may_reveal_row(&change("t", SENTINEL_CID)));
    }

    #[test]
    fn comments_hide_no_column_from_what_a_predicate_may_read() {
        // Before comments were known, the quote in each comment opened a "literal" that hid
        // every name after it.
        let rows = RowPredicate::parse(
            "owner = 'bob' /* the owner's rows */ or status = 'open' -- don't\n or tag = 1",
        )
        .unwrap()
        .unwrap();
        assert!(rows.may_read("owner") && rows.may_read("status") && rows.may_read("tag"));
        // Words inside comments are not names; a quoted name may hold its own quote.
        assert!(!rows.may_read("rows") && !rows.may_read("don"));
        let quoted = RowPredicate::parse("\"say \"\"hi\"\"\" = 1 and `a``b` = 2")
            .unwrap()
            .unwrap();
        assert!(quoted.may_read("say \"hi\"") && quoted.may_read("a`b"));
        // A comment left open would hide what the expression is joined with: refused.
        assert!(RowPredicate::parse("x = 1 /* y").is_err());
        assert!(RowPredicate::parse("x = 1 -- y").is_err());
    }

    #[test]
    fn two_filters_combine_to_what_passes_both() {
        let shared = filter(Some("a,b"), Some("a.x"), Some("k = 1")).unwrap();
        let member = filter(Some("b,c"), Some("b.y"), Some("k = 2")).unwrap();
        let both = shared.and(&member);
        assert_eq!(
            both.to_string(),
            "tables=b exclude-columns=a.x,b.y where=((k = 1) and (k = 2))"
        );
        assert_eq!(shared.and(&ChangeFilter::default()), shared);
        let (tables, exclude_tables, exclude_columns, rows) = both.parts();
        let back = ChangeFilter::from_parts(tables, exclude_tables, exclude_columns, rows);
        assert_eq!(back.unwrap(), both);
    }
}
