//! Printing results: to stdout, with JSON for scripts.

use std::borrow::Cow;
use std::io::{self, Write};

use serde::Serialize;

use crate::sync::redact::Redactions;

/// Writes `value` as pretty JSON and a newline to stdout.
pub fn print_json(value: &impl Serialize) -> io::Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(io::Error::other)?;
    let mut out = io::stdout().lock();
    writeln!(out, "{}", redacted(&text))?;
    out.flush()
}

/// Writes `text` and a newline to stdout, reporting a closed pipe as an error (not a panic).
pub fn print_line(text: impl std::fmt::Display) -> io::Result<()> {
    writeln!(io::stdout().lock(), "{}", redacted(&text.to_string()))
}

/// Writes `text` to stderr as one `warning:` line: something the user must know, and act on,
/// though the command went on.
pub fn print_warning(text: impl std::fmt::Display) {
    eprintln!("warning: {}", redacted(&text.to_string()));
}

/// The arguments of this run that look like keys: cut out of every result, error and log line
/// it prints (see [`crate::sync::redact`]). Set once, by `main`, before anything is printed.
static REDACTIONS: std::sync::OnceLock<Redactions> = std::sync::OnceLock::new();

/// Remembers what of `args` must never be printed back.
pub fn hide_arguments_that_look_like_keys<'a>(args: impl IntoIterator<Item = &'a str>) {
    let _ = REDACTIONS.set(Redactions::of_arguments(args));
}

/// `text` without this run's arguments that look like keys.
pub fn redacted(text: &str) -> Cow<'_, str> {
    match REDACTIONS.get() {
        Some(hidden) if !hidden.is_empty() => hidden.apply(text),
        _ => Cow::Borrowed(text),
    }
}

/// Standard error with this run's arguments that look like keys cut out of each write: the
/// log's writer (tracing writes each event whole, in one write).
#[derive(Debug)]
pub struct RedactedStderr;

impl Write for RedactedStderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match std::str::from_utf8(buf) {
            Ok(text) => io::stderr().lock().write_all(redacted(text).as_bytes())?,
            Err(_) => io::stderr().lock().write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}
