//! Printing results: to stdout, with JSON for scripts.

use std::io::{self, Write};

use serde::Serialize;

/// Writes `value` as pretty JSON and a newline to stdout.
pub fn print_json(value: &impl Serialize) -> io::Result<()> {
    let mut out = io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value).map_err(io::Error::other)?;
    writeln!(out)?;
    out.flush()
}

/// Writes `text` and a newline to stdout, reporting a closed pipe as an error (not a panic).
pub fn print_line(text: impl std::fmt::Display) -> io::Result<()> {
    writeln!(io::stdout().lock(), "{text}")
}
