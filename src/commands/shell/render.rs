//! Printing query rows in the shell's output modes.

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
    match value {
        Value::Null => String::new(),
        Value::Integer(int) => int.to_string(),
        Value::Real(real) => real_text(*real),
        Value::Text(text) => text.clone(),
        Value::Blob(blob) | Value::RawText(blob) => String::from_utf8_lossy(blob).into_owned(),
    }
}

fn real_text(real: f64) -> String {
    // "1.0", not "1": keep a real recognizable as one.
    if real.is_finite() && real.fract() == 0.0 && real.abs() < 1e15 {
        format!("{real:.1}")
    } else {
        real.to_string()
    }
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
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
                let fields: Vec<String> = columns.iter().map(|c| csv_field(c)).collect();
                writeln!(self.out, "{}", fields.join(","))
            }
            _ => Ok(()),
        }
    }

    fn row(&mut self, values: &[Value]) -> io::Result<()> {
        match self.mode {
            OutputMode::List => {
                let fields: Vec<String> = values.iter().map(plain).collect();
                writeln!(self.out, "{}", fields.join("|"))?;
            }
            OutputMode::Csv => {
                let fields: Vec<String> = values.iter().map(|v| csv_field(&plain(v))).collect();
                writeln!(self.out, "{}", fields.join(","))?;
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
}
