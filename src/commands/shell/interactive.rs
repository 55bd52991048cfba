//! The shell's prompt on a terminal: line editing, history kept in the state directory.

use std::io::Write;

use rustyline::error::ReadlineError;
use rustyline::{DefaultEditor, config::Configurer};

use super::{Flow, Shell};
use crate::commands::CommandError;
use crate::config::Config;
use crate::db::script::StatementSplitter;

const PROMPT: &str = "ddcp> ";
const CONTINUATION: &str = "  ...> ";
const HISTORY_SIZE: usize = 2000;

pub fn run<W: Write>(shell: &mut Shell<W>, config: &Config) -> Result<(), CommandError> {
    let mut editor = DefaultEditor::new().map_err(|err| {
        CommandError::Output(std::io::Error::other(format!(
            "cannot start line editor: {err}"
        )))
    })?;
    let _ = editor.set_max_history_size(HISTORY_SIZE);
    editor.set_auto_add_history(true);
    // History is kept only where ddcp keeps its state, i.e. after `ddcp init` made the folder.
    let history = config.state_dir.is_dir().then(|| config.shell_history());
    if let Some(path) = &history {
        let _ = editor.load_history(path);
    }
    eprintln!(
        "ddcp shell on {}: .help for help, .quit to leave",
        shell.db.path().display()
    );
    let mut splitter = StatementSplitter::new();
    loop {
        let prompt = if splitter.is_empty() {
            PROMPT
        } else {
            CONTINUATION
        };
        let line = match editor.readline(prompt) {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => {
                // Ctrl-C drops the statement being typed, as in sqlite3.
                splitter = StatementSplitter::new();
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(err) => {
                eprintln!("error: {err}");
                break;
            }
        };
        if line.contains('\0') {
            eprintln!("error: NUL byte in the input");
            continue;
        }
        if splitter.is_empty() && line.trim_start().starts_with('.') {
            match shell.run_dot(line.trim()) {
                Ok(Flow::Quit) => break,
                Ok(Flow::Continue) => {}
                Ok(Flow::Stop(err)) => eprintln!("error: {err}"),
                Err(message) => eprintln!("error: {message}"),
            }
            continue;
        }
        if let Some(pending) = splitter.push_line(&line) {
            // Line numbers count from each statement's first line, not from the session's.
            splitter = StatementSplitter::new();
            // At the prompt an error is shown and the session goes on.
            if let Err(err) = shell.run_sql(&pending) {
                eprintln!("error: {err}");
            }
        }
    }
    if let Some(path) = &history {
        let _ = editor.save_history(path);
    }
    if shell.db.in_transaction() {
        shell.db.rollback()?;
        eprintln!("warning: the open transaction was rolled back (BEGIN without COMMIT)");
    }
    Ok(())
}
