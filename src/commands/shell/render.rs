//! Printing query rows in the shell's output modes.

use std::borrow::Cow;
use std::io::{self, Write};

use crate::cli::OutputMode;
use crate::db::script::RowSink;
use crate::sync::Value;

/// A [`RowSink`] that prints rows in one output mode.
pub struct Renderer<W: Write> {
    out: W,
    mode: OutputMode,
    header: bool,
    columns: Vec<String>,
    /// Rows held back until the statement ends (box mode needs every width first).
    held: Vec<Vec<String>>,
    rows_written: usize,
}

impl<W: Write> Renderer<W> {
    pub fn new(out: W, mode: OutputMode, header: bool) -> Self {
        Renderer {
            out,
            mode,
            header,
            columns: Vec::new(),
            held: Vec::new(),
            rows_written: 0,
        }
    }

    pub fn set_mode(&mut self, mode: OutputMode) {
        self.mode = mode;
    }

    pub fn mode(&self) -> OutputMode {
        self.mode
    }

    pub fn set_header(&mut self, header: bool) {
        self.header = header;
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// A value as text, the way sqlite3 shows it (NULL as empty).
fn plain(value: &Value) -> String {
    String::from_utf8_lossy(&plain_bytes(value)).into_owned()
}

/// A value as list and csv modes write it: text and blobs byte for byte, as sqlite3 does (a
/// blob that is not UTF-8 is not made into replacement characters).
fn plain_bytes(value: &Value) -> Cow<'_, [u8]> {
    match value {
        Value::Null => Cow::Borrowed(b""),
        Value::Integer(int) => Cow::Owned(int.to_string().into_bytes()),
        Value::Real(real) => Cow::Owned(real_text(*real).into_bytes()),
        Value::Text(text) => Cow::Borrowed(text.as_bytes()),
        Value::Blob(bytes) | Value::RawText(bytes) => Cow::Borrowed(bytes),
    }
}

/// Fields joined by `separator`, then a newline.
fn write_fields(out: &mut impl Write, fields: &[Cow<'_, [u8]>], separator: u8) -> io::Result<()> {
    for (index, field) in fields.iter().enumerate() {
        if index > 0 {
            out.write_all(&[separator])?;
        }
        out.write_all(field)?;
    }
    out.write_all(b"\n")
}

fn real_text(real: f64) -> String {
    // "1.0", not "1": keep a real recognizable as one.
    if real.is_finite() && real.fract() == 0.0 && real.abs() < 1e15 {
        format!("{real:.1}")
    } else {
        real.to_string()
    }
}

fn csv_field(bytes: Cow<'_, [u8]>) -> Cow<'_, [u8]> {
    if !bytes
        .iter()
        .any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'))
    {
        return bytes;
    }
    let mut quoted = Vec::with_capacity(bytes.len() + 2);
    quoted.push(b'"');
    for &byte in bytes.iter() {
        if byte == b'"' {
            quoted.push(b'"');
        }
        quoted.push(byte);
    }
    quoted.push(b'"');
    Cow::Owned(quoted)
}

fn json_value(value: &Value) -> serde_json::Value {
    match value {
        Value::Null => serde_json::Value::Null,
        Value::Integer(int) => (*int).into(),
        Value::Real(real) => serde_json::Number::from_f64(*real)
            .map_or(serde_json::Value::Null, serde_json::Value::Number),
        Value::Text(text) => text.clone().into(),
        // JSON has no bytes: a blob becomes its hex digits.
        Value::Blob(blob) => hex::encode(blob).into(),
        Value::RawText(bytes) => String::from_utf8_lossy(bytes).into_owned().into(),
    }
}

impl<W: Write> RowSink for Renderer<W> {
    fn begin(&mut self, columns: &[String]) -> io::Result<()> {
        self.columns = columns.to_vec();
        self.rows_written = 0;
        self.held.clear();
        match self.mode {
            OutputMode::List if self.header => writeln!(self.out, "{}", columns.join("|")),
            OutputMode::Csv if self.header => {
                let fields: Vec<Cow<'_, [u8]>> = columns
                    .iter()
                    .map(|c| csv_field(Cow::Borrowed(c.as_bytes())))
                    .collect();
                write_fields(&mut self.out, &fields, b',')
            }
            _ => Ok(()),
        }
    }

    fn row(&mut self, values: &[Value]) -> io::Result<()> {
        match self.mode {
            OutputMode::List => {
                let fields: Vec<Cow<'_, [u8]>> = values.iter().map(plain_bytes).collect();
                write_fields(&mut self.out, &fields, b'|')?;
            }
            OutputMode::Csv => {
                let fields: Vec<Cow<'_, [u8]>> =
                    values.iter().map(|v| csv_field(plain_bytes(v))).collect();
                write_fields(&mut self.out, &fields, b',')?;
            }
            OutputMode::Json => {
                // Written by hand, not as a map: every column in order, a name that comes twice
                // included, as sqlite3 -json writes them.
                let members: Vec<String> = self
                    .columns
                    .iter()
                    .zip(values.iter().map(json_value))
                    .map(|(name, value)| {
                        format!("{}:{value}", serde_json::Value::from(name.as_str()))
                    })
                    .collect();
                let opener = if self.rows_written == 0 { "[" } else { ",\n" };
                write!(self.out, "{opener}{{{}}}", members.join(","))?;
            }
            OutputMode::Box => self.held.push(values.iter().map(box_cell).collect()),
        }
        self.rows_written += 1;
        Ok(())
    }

    fn end(&mut self) -> io::Result<()> {
        match self.mode {
            OutputMode::Json if self.rows_written > 0 => writeln!(self.out, "]")?,
            // A query without rows is still an array, so that scripts can parse every answer.
            OutputMode::Json => writeln!(self.out, "[]")?,
            OutputMode::Box if !self.held.is_empty() => {
                let rows = std::mem::take(&mut self.held);
                draw_box(&mut self.out, &self.columns, &rows)?;
            }
            _ => {}
        }
        self.out.flush()
    }
}

/// A value as a box cell: on one line, and a blob as the SQL literal of its bytes (`x'00ff'`),
/// for a person reading it (list and csv modes write the bytes, as sqlite3 does).
fn box_cell(value: &Value) -> String {
    match value {
        Value::Blob(blob) => format!("x'{}'", hex::encode(blob)),
        other => one_line(&plain(other)),
    }
}

/// The columns `text` takes on a terminal: two for East Asian wide characters and most emoji,
/// none for combining marks.
fn width(text: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(text)
}

fn draw_box(out: &mut impl Write, columns: &[String], rows: &[Vec<String>]) -> io::Result<()> {
    let columns: Vec<String> = columns.iter().map(|name| one_line(name)).collect();
    let mut widths: Vec<usize> = columns.iter().map(|c| width(c)).collect();
    for row in rows {
        for (index, cell) in row.iter().enumerate() {
            widths[index] = widths[index].max(width(cell));
        }
    }
    let rule = |left: &str, middle: &str, right: &str| {
        let parts: Vec<String> = widths.iter().map(|w| "─".repeat(w + 2)).collect();
        format!("{left}{}{right}", parts.join(middle))
    };
    let line = |cells: &[String]| {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!(" {cell}{} ", " ".repeat(w - width(cell))))
            .collect();
        format!("│{}│", parts.join("│"))
    };
    writeln!(out, "{}", rule("┌", "┬", "┐"))?;
    writeln!(out, "{}", line(&columns))?;
    writeln!(out, "{}", rule("├", "┼", "┤"))?;
    for row in rows {
        writeln!(out, "{}", line(row))?;
    }
    writeln!(out, "{}", rule("└", "┴", "┘"))
}

/// `text` with its newlines, tabs and other control characters as spaces: they would break the
/// box's lines and columns.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(mode: OutputMode, header: bool) -> String {
        let mut renderer = Renderer::new(Vec::new(), mode, header);
        renderer.begin(&["id".into(), "note".into()]).unwrap();
        renderer
            .row(&[Value::Integer(1), Value::Text("a, \"b\"".into())])
            .unwrap();
        renderer.row(&[Value::Real(2.0), Value::Null]).unwrap();
        renderer.end().unwrap();
        String::from_utf8(renderer.out).unwrap()
    }

    #[test]
    fn modes() {
        assert_eq!(render(OutputMode::List, false), "1|a, \"b\"\n2.0|\n");
        assert_eq!(
            render(OutputMode::Csv, true),
            "id,note\n1,\"a, \"\"b\"\"\"\n2.0,\n"
        );
        assert_eq!(
            render(OutputMode::Json, false),
            "[{\"id\":1,\"note\":\"a, \\\"b\\\"\"},\n{\"id\":2.0,\"note\":null}]\n"
        );
        assert_eq!(
            render(OutputMode::Box, false),
            "┌─────┬────────┐\n\
             │ id  │ note   │\n\
             ├─────┼────────┤\n\
             │ 1   │ a, \"b\" │\n\
             │ 2.0 │        │\n\
             └─────┴────────┘\n"
        );
    }

    #[test]
    fn box_aligns_wide_characters_and_shows_blobs_as_hex() {
        let mut renderer = Renderer::new(Vec::new(), OutputMode::Box, false);
        renderer.begin(&["name".into(), "data".into()]).unwrap();
        renderer
            .row(&[Value::Text("日本".into()), Value::Blob(vec![0, 0xff])])
            .unwrap();
        renderer
            .row(&[Value::Text("e\u{301}\tx".into()), Value::Null])
            .unwrap();
        renderer.end().unwrap();
        assert_eq!(
            String::from_utf8(renderer.out).unwrap(),
            "┌──────┬─────────┐\n\
             │ name │ data    │\n\
             ├──────┼─────────┤\n\
             │ 日本 │ x'00ff' │\n\
             │ e\u{301} x  │         │\n\
             └──────┴─────────┘\n"
        );
    }

    #[test]
    fn list_and_csv_write_a_blobs_bytes_as_they_are() {
        let blob = Value::Blob(vec![b'A', 0xff, 0, b'B']);
        let mut list = Renderer::new(Vec::new(), OutputMode::List, false);
        list.begin(&["b".into(), "n".into()]).unwrap();
        list.row(&[blob.clone(), Value::Integer(7)]).unwrap();
        list.end().unwrap();
        assert_eq!(list.out, b"A\xff\0B|7\n");
        let mut csv = Renderer::new(Vec::new(), OutputMode::Csv, true);
        csv.begin(&["b".into(), "a,b".into()]).unwrap();
        csv.row(&[Value::Blob(vec![0xfe, b',', b'"']), Value::Text("x".into())])
            .unwrap();
        csv.end().unwrap();
        assert_eq!(csv.out, b"b,\"a,b\"\n\"\xfe,\"\"\",x\n");
    }
}
