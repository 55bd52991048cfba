//! Reading CSV files for `.import` (RFC 4180: quoted fields may hold commas, doubled quotes and
//! line breaks; lines end with LF or CRLF).
//!
//! Why not the csv crate: it takes a quoted field that is never closed as running to the end of
//! the file (BurntSushi/rust-csv #252, #289), so a stray quote imports the rest of the file into
//! one cell without a word, where `.import` must refuse it (all or none, with the line it starts
//! on). The rules `.import` needs fit in this page, tested below.

use std::fmt;
use std::io::BufRead;

use crate::db::CsvRecord;

/// Why a CSV file could not be read.
#[derive(Debug, PartialEq, Eq)]
pub struct CsvError {
    line: usize,
    message: String,
}

impl fmt::Display for CsvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// The records of a CSV file, in order; empty lines are skipped.
pub struct CsvReader<R> {
    input: R,
    /// Lines read so far.
    line: usize,
    done: bool,
}

impl<R: BufRead> CsvReader<R> {
    pub fn new(input: R) -> Self {
        CsvReader {
            input,
            line: 0,
            done: false,
        }
    }

    fn read_line(&mut self, buffer: &mut String) -> Result<bool, CsvError> {
        buffer.clear();
        let read = self.input.read_line(buffer).map_err(|err| CsvError {
            line: self.line + 1,
            message: err.to_string(),
        })?;
        if read == 0 {
            return Ok(false);
        }
        self.line += 1;
        if self.line == 1 && buffer.starts_with('\u{feff}') {
            buffer.drain(..'\u{feff}'.len_utf8());
        }
        Ok(true)
    }

    fn next_record(&mut self) -> Result<Option<CsvRecord>, CsvError> {
        let mut buffer = String::new();
        // Skip empty lines (a file's last line break, blank lines between records).
        loop {
            if !self.read_line(&mut buffer)? {
                return Ok(None);
            }
            if !buffer.trim_end_matches(['\r', '\n']).is_empty() {
                break;
            }
        }
        let first_line = self.line;
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut in_quotes = false;
        // The last character closed a quoted part: a quote next is a doubled (literal) one.
        let mut after_quote = false;
        loop {
            let mut chars = buffer.chars().peekable();
            while let Some(c) = chars.next() {
                if in_quotes {
                    if c == '"' {
                        in_quotes = false;
                        after_quote = true;
                    } else {
                        field.push(c);
                    }
                    continue;
                }
                match c {
                    '"' if after_quote => {
                        field.push('"');
                        in_quotes = true;
                        after_quote = false;
                    }
                    '"' if field.is_empty() => in_quotes = true,
                    ',' => {
                        fields.push(std::mem::take(&mut field));
                        after_quote = false;
                    }
                    '\r' if chars.peek() == Some(&'\n') => {}
                    '\n' => {}
                    other => {
                        field.push(other);
                        after_quote = false;
                    }
                }
            }
            if !in_quotes {
                fields.push(field);
                return Ok(Some(CsvRecord {
                    line: first_line,
                    fields,
                }));
            }
            if !self.read_line(&mut buffer)? {
                return Err(CsvError {
                    line: first_line,
                    message: "a quoted field is never closed".to_string(),
                });
            }
        }
    }
}

impl<R: BufRead> Iterator for CsvReader<R> {
    type Item = Result<CsvRecord, CsvError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let record = self.next_record().transpose();
        if !matches!(record, Some(Ok(_))) {
            self.done = true;
        }
        record
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(text: &str) -> Result<Vec<(usize, Vec<&str>)>, CsvError> {
        let read: Result<Vec<CsvRecord>, CsvError> = CsvReader::new(text.as_bytes()).collect();
        Ok(read?
            .into_iter()
            .map(|record| {
                let fields = record.fields.into_iter().map(|f| &*f.leak()).collect();
                (record.line, fields)
            })
            .collect())
    }

    #[test]
    fn reads_rfc_4180() {
        assert_eq!(
            records("\u{feff}id,name\r\n1,\"a, \"\"b\"\"\"\r\n\n2,\"two\nlines\"\n3,\n").unwrap(),
            vec![
                (1, vec!["id", "name"]),
                (2, vec!["1", "a, \"b\""]),
                (4, vec!["2", "two\nlines"]),
                (6, vec!["3", ""]),
            ]
        );
        assert_eq!(records("x").unwrap(), vec![(1, vec!["x"])]);
        assert_eq!(records("").unwrap(), vec![]);
    }

    #[test]
    fn an_unclosed_quote_is_an_error() {
        let err = records("a\n\"b,c\nd\n").unwrap_err();
        assert_eq!(err.to_string(), "line 2: a quoted field is never closed");
    }
}
