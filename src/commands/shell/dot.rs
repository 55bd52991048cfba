//! The shell's dot-commands: `.tables`, `.schema`, `.crrs`, `.dump`, `.import`, `.mode`,
//! `.headers`, `.read`, `.timer`, `.help`, `.quit`.

use clap::ValueEnum;

use crate::cli::OutputMode;

/// One dot-command, parsed.
#[derive(Debug, PartialEq, Eq)]
pub enum DotCommand {
    Tables,
    Schema(Option<String>),
    Crrs,
    /// The application's tables (or one) as SQL.
    Dump(Option<String>),
    /// A CSV file's rows into a table.
    Import {
        file: String,
        table: String,
    },
    Mode(OutputMode),
    /// `.mode` alone: print the mode in use.
    ShowMode,
    Headers(bool),
    /// Run the SQL (and dot-commands) of a file.
    Read(String),
    /// Print how long each statement took.
    Timer(bool),
    Help,
    Quit,
}

pub const HELP: &str = "\
.tables            list the application's tables
.schema [TABLE]    show CREATE statements (of one table)
.crrs              list the tables that are CRRs (replicated)
.dump [TABLE]      the tables (or one) as SQL: schema, rows, CRRs; no replication
                   history (load it into a new database; `ddcp backup` keeps history)
.import FILE TABLE
                   insert a CSV file's rows into TABLE, all or none; a missing TABLE is
                   made from the header line (TEXT columns, not a CRR)
.mode [MODE]       print rows as list, csv, json or box (alone: the mode in use)
.headers on|off    print column names (list and csv)
.read FILE         run the SQL and dot-commands of FILE
.timer on|off      print how long each statement took
.help              this text
.quit, .exit       leave the shell (Ctrl-D too)
SQL statements end with ';'. cr-sqlite is loaded: make tables CRRs with
  select crsql_as_crr('table');";

impl DotCommand {
    /// Parses a line that starts with '.'; the error is a message for the user.
    pub fn parse(line: &str) -> Result<DotCommand, String> {
        let mut words = line.split_whitespace();
        let name = words.next().unwrap_or(".");
        let argument = words.next();
        if name == ".import" {
            return match (argument, words.next(), words.next()) {
                (Some(file), Some(table), None) => Ok(DotCommand::Import {
                    file: file.to_string(),
                    table: table.to_string(),
                }),
                _ => Err(format!("usage: .import FILE TABLE (got {line:?})")),
            };
        }
        let command = match (name, argument) {
            (".tables", None) => DotCommand::Tables,
            (".schema", table) => DotCommand::Schema(table.map(str::to_string)),
            (".crrs", None) => DotCommand::Crrs,
            (".dump", table) => DotCommand::Dump(table.map(str::to_string)),
            (".mode", None) => DotCommand::ShowMode,
            (".mode", Some(mode)) => DotCommand::Mode(
                OutputMode::from_str(mode, true)
                    .map_err(|_| format!("unknown mode {mode:?}: use list, csv, json or box"))?,
            ),
            (".headers", Some("on")) => DotCommand::Headers(true),
            (".headers", Some("off")) => DotCommand::Headers(false),
            (".read", Some(file)) => DotCommand::Read(file.to_string()),
            (".timer", Some("on")) => DotCommand::Timer(true),
            (".timer", Some("off")) => DotCommand::Timer(false),
            (".help", None) => DotCommand::Help,
            (".quit" | ".exit", None) => DotCommand::Quit,
            _ => return Err(format!("unknown or malformed command {line:?}: try .help")),
        };
        if words.next().is_some() {
            return Err(format!("too many arguments: {line:?}"));
        }
        Ok(command)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(DotCommand::parse(".tables"), Ok(DotCommand::Tables));
        assert_eq!(
            DotCommand::parse(".schema items"),
            Ok(DotCommand::Schema(Some("items".into())))
        );
        assert_eq!(
            DotCommand::parse(".mode box"),
            Ok(DotCommand::Mode(OutputMode::Box))
        );
        assert!(DotCommand::parse(".mode nope").is_err());
        assert_eq!(DotCommand::parse(".mode"), Ok(DotCommand::ShowMode));
        assert_eq!(
            DotCommand::parse(".read x.sql"),
            Ok(DotCommand::Read("x.sql".into()))
        );
        assert_eq!(DotCommand::parse(".timer on"), Ok(DotCommand::Timer(true)));
        assert!(DotCommand::parse(".timer maybe").is_err());
        assert!(DotCommand::parse(".bogus").is_err());
        assert!(DotCommand::parse(".tables x").is_err());
        assert_eq!(DotCommand::parse(".dump"), Ok(DotCommand::Dump(None)));
        assert_eq!(
            DotCommand::parse(".import a.csv items"),
            Ok(DotCommand::Import {
                file: "a.csv".into(),
                table: "items".into()
            })
        );
        assert!(DotCommand::parse(".import a.csv").is_err());
        assert!(DotCommand::parse(".import a.csv items x").is_err());
    }
}
