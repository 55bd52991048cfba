//! `ddcp shell`: SQL with cr-sqlite loaded, from a script on stdin, `-c SQL`, or a prompt.

mod csv;
mod dot;
mod interactive;
mod render;

use std::io::{self, BufRead, IsTerminal, Write};

use super::CommandError;
use crate::cli::ShellArgs;
use crate::config::Config;
use crate::db::Db;
use crate::db::script::{PendingSql, StatementSplitter};
use dot::DotCommand;
use render::Renderer;

pub fn run(config: &Config, args: &ShellArgs) -> Result<(), CommandError> {
    let db = crate::commands::open_db(config)?;
    let schema_before = db.sqlite_schema_version()?;
    let mut shell = Shell {
        db,
        renderer: Renderer::new(io::stdout().lock(), args.mode, args.header),
        timer: false,
        reading: Vec::new(),
    };
    let result = if let Some(sql) = args.command.as_ref().or(args.sql.as_ref()) {
        shell.run_script(io::Cursor::new(sql.as_bytes()))
    } else if io::stdin().is_terminal() {
        interactive::run(&mut shell, config)
    } else {
        shell.run_script(io::stdin().lock())
    };
    let Shell {
        mut db,
        mut renderer,
        ..
    } = shell;
    renderer.flush()?;
    // A table or column added (a new version of the app): what peers sent for it while this
    // database lacked it is merged now (a running `ddcp serve` would do it too).
    if result.is_ok() && db.sqlite_schema_version()? != schema_before {
        // The script is committed whatever becomes of this: a failure is said, not returned.
        match db.apply_held() {
            Ok(applied) if applied.taken > 0 => {
                tracing::info!(target: "ddcp", taken = applied.taken, still_held = applied.still_held,
                    "Applied changes held for tables or columns this database lacked")
            }
            Ok(_) => {}
            Err(err) => super::output::print_warning(format_args!(
                "cannot merge the changes held for what the script added: {err}"
            )),
        }
    }
    // crsql_finalize() runs on close, whatever happened.
    let closed = db.close();
    result?;
    Ok(closed?)
}

/// What to do after a line.
#[derive(Debug)]
enum Flow {
    Continue,
    Quit,
    /// Stop the script with this error, said as it is (not as the error of this line).
    Stop(CommandError),
}

/// Why a `.read` failed: too deep (passed up whole, said once), or any other error.
enum ReadFailed {
    TooDeep(String, usize),
    Other(String),
}

/// `.read` files open within each other at most this deep: a file that reads itself stops.
const MAX_READ_DEPTH: usize = 16;

/// An open database and where its rows are printed.
struct Shell<W: Write> {
    db: Db,
    renderer: Renderer<W>,
    /// `.timer on`: each statement's time is printed after it.
    timer: bool,
    /// `.read` files being run, innermost last.
    reading: Vec<String>,
}

impl<W: Write> Shell<W> {
    /// Runs a whole script. The first error stops it: nothing after it runs, and a transaction
    /// the script opened is rolled back, as is one it never closed.
    fn run_script(&mut self, input: impl BufRead) -> Result<(), CommandError> {
        let result = self.run_lines(input, "stdin");
        if !self.db.in_transaction() {
            return result;
        }
        self.db.rollback()?;
        match result {
            Ok(()) => Err(CommandError::UnfinishedTransaction),
            Err(err) => Err(CommandError::RolledBack(Box::new(err))),
        }
    }

    /// Runs the lines of `input`, read from `source` (for its errors: "stdin", a file's name).
    fn run_lines(&mut self, input: impl BufRead, source: &str) -> Result<(), CommandError> {
        let mut splitter = StatementSplitter::new();
        for line in input.lines() {
            let line = line.map_err(|err| CommandError::File {
                what: "cannot read",
                path: source.into(),
                source: err,
            })?;
            let line_number = splitter.next_line();
            if line.contains('\0') {
                return Err(CommandError::NulByte(line_number));
            }
            if splitter.is_empty() && line.trim_start().starts_with('.') {
                splitter.skip_line();
                let flow =
                    self.run_dot(line.trim())
                        .map_err(|message| CommandError::DotCommand {
                            line: line_number,
                            message,
                        })?;
                match flow {
                    Flow::Quit => return Ok(()),
                    Flow::Stop(err) => return Err(err),
                    Flow::Continue => {}
                }
            } else if let Some(pending) = splitter.push_line(&line) {
                self.run_sql(&pending)?;
            }
        }
        if let Some(pending) = splitter.finish() {
            self.run_sql(&pending)?;
        }
        Ok(())
    }

    fn run_sql(&mut self, pending: &PendingSql) -> Result<(), CommandError> {
        let started = std::time::Instant::now();
        self.db.run_sql(pending, &mut self.renderer)?;
        if self.timer {
            self.renderer.flush()?;
            let seconds = started.elapsed().as_secs_f64();
            writeln!(io::stdout().lock(), "Run Time: real {seconds:.3}")?;
        }
        Ok(())
    }

    /// `.read FILE`: its lines run as if typed here; its first error stops it (and the script
    /// around it), named by file and line.
    fn read(&mut self, file: &str) -> Result<(), ReadFailed> {
        if self.reading.len() >= MAX_READ_DEPTH {
            return Err(ReadFailed::TooDeep(file.to_string(), MAX_READ_DEPTH));
        }
        let opened = std::fs::File::open(file)
            .map_err(|err| ReadFailed::Other(format!("cannot read {file}: {err}")))?;
        self.reading.push(file.to_string());
        let result = self.run_lines(io::BufReader::new(opened), file);
        self.reading.pop();
        match result {
            // Said once, by the innermost file: a file that reads itself must not repeat its
            // name at every level it went down.
            Err(CommandError::ReadTooDeep(file, depth)) => Err(ReadFailed::TooDeep(file, depth)),
            other => other.map_err(|err| ReadFailed::Other(format!("{file}: {err}"))),
        }
    }

    fn run_dot(&mut self, line: &str) -> Result<Flow, String> {
        let lines = match DotCommand::parse(line)? {
            DotCommand::Tables => self.db.user_tables(),
            DotCommand::Schema(table) => self.db.schema_sql(table.as_deref()),
            DotCommand::Crrs => self.db.crr_tables(),
            DotCommand::Dump(table) => {
                self.renderer.flush().map_err(|err| err.to_string())?;
                let mut out = io::BufWriter::new(io::stdout().lock());
                self.db
                    .dump(table.as_deref(), &mut out)
                    .and_then(|()| Ok(out.flush()?))
                    .map(|()| Vec::new())
            }
            DotCommand::Import { file, table } => {
                let opened = std::fs::File::open(&file)
                    .map_err(|err| format!("cannot read {file}: {err}"))?;
                let records = csv::CsvReader::new(io::BufReader::new(opened));
                self.db
                    .import(&table, records)
                    .map_err(|err| format!("{file}: {err}"))?;
                Ok(Vec::new())
            }
            DotCommand::Mode(mode) => {
                self.renderer.set_mode(mode);
                Ok(Vec::new())
            }
            DotCommand::ShowMode => {
                use clap::ValueEnum;
                let mode = self.renderer.mode().to_possible_value();
                Ok(vec![mode.map_or("list".to_string(), |mode| {
                    mode.get_name().to_string()
                })])
            }
            DotCommand::Headers(on) => {
                self.renderer.set_header(on);
                Ok(Vec::new())
            }
            DotCommand::Timer(on) => {
                self.timer = on;
                Ok(Vec::new())
            }
            DotCommand::Read(file) => match self.read(&file) {
                Ok(()) => Ok(Vec::new()),
                Err(ReadFailed::Other(message)) => return Err(message),
                Err(ReadFailed::TooDeep(file, depth)) => {
                    return Ok(Flow::Stop(CommandError::ReadTooDeep(file, depth)));
                }
            },
            DotCommand::Help => Ok(dot::HELP.lines().map(str::to_string).collect()),
            DotCommand::Quit => return Ok(Flow::Quit),
        }
        .map_err(|err| err.to_string())?;
        let mut out = io::stdout().lock();
        for line in lines {
            writeln!(out, "{line}").map_err(|err| err.to_string())?;
        }
        Ok(Flow::Continue)
    }
}
