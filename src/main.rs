//! The `ddcp` binary: parse the command line, run the command, turn errors into one line.

use std::io::IsTerminal;
use std::process::ExitCode;

use ddcp::cli::stdin_key::read_key_from_stdin;
use ddcp::commands::output;

fn main() -> ExitCode {
    install_panic_hook();
    // Serving and pulling free megabyte buffers in several threads' arenas: without this the
    // process keeps them (see the module).
    ddcp::memory::give_back_freed_memory();
    // Lossy: an argument that is not UTF-8 is clap's to refuse, never a panic here.
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|arg| arg.to_string_lossy().into_owned())
        .collect();
    let (mut cli, old_env_names) = match ddcp::cli::Cli::parse_with_old_env(std::env::args_os()) {
        Ok(parsed) => parsed,
        Err(err) => {
            output::hide_arguments_that_look_like_keys(args.iter().map(String::as_str));
            return usage_error(err);
        }
    };
    // A key given as `-` comes from stdin: kept out of what is printed as the arguments are.
    let stdin = std::io::stdin();
    let from_stdin = read_key_from_stdin(&mut cli.command, &mut stdin.lock(), stdin.is_terminal());
    let read = from_stdin.as_ref().ok().and_then(Option::as_deref);
    output::hide_arguments_that_look_like_keys(args.iter().map(String::as_str).chain(read));
    if let Err(err) = from_stdin {
        eprintln!("error: {}", output::redacted(&err.to_string()));
        return ExitCode::FAILURE;
    }
    // ddcp's own events at info; veilid-core warns about its internals (e.g. at every shutdown)
    // in ways a user cannot act on, so only its errors show by default.
    // -q and -v say what the user wants now, over RUST_LOG; without them RUST_LOG decides.
    let asked = match (cli.quiet, cli.verbose) {
        (true, _) => Some("error"),
        (false, 0) => None,
        (false, 1) => Some("error,ddcp=debug"),
        (false, _) => Some("info,ddcp=trace"),
    };
    // No colours where they would be noise: not a terminal, or NO_COLOR set (no-color.org).
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty());
    // A one-shot command says what it did once, on stdout; its info lines would say it again.
    // The long-running ones (serve, testnet, watch) have their info lines as their news.
    let default_filter = match cli.command {
        ddcp::cli::Command::Serve(_)
        | ddcp::cli::Command::Testnet(_)
        | ddcp::cli::Command::Watch(_) => "error,ddcp=info",
        _ => "error,ddcp=warn",
    };
    let mut filter = match asked {
        Some(filter) => tracing_subscriber::EnvFilter::new(filter),
        None => tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
    };
    // veilid-core's duration recorder reports an operation ddcp cut short on purpose (a quick
    // look for a record not published yet) as an error: it is not one. Shown only when asked
    // for by name, or with -vv.
    let named = std::env::var("RUST_LOG").is_ok_and(|value| value.contains("duration_recorder"));
    if cli.verbose < 2 && !named {
        filter = filter.add_directive(
            "veilid_core::logging::duration_recorder=off"
                .parse()
                .expect("a valid directive"),
        );
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| output::RedactedStderr)
        .with_ansi(colour)
        .init();
    for old in old_env_names {
        tracing::warn!("{old} is read as DDCP_{old}: rename it, the old name will stop working");
    }
    match ddcp::commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if err.is_broken_pipe() => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", output::redacted(&one_line(&err.to_string())));
            ExitCode::FAILURE
        }
    }
}

/// Help and version go out as clap prints them; a mistake on the command line is one line.
fn usage_error(err: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        err.exit();
    }
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|arg| arg.to_string_lossy().into_owned())
        .collect();
    let command = command_path(&args);
    let mut line = usage_line(&err.render().to_string(), &command);
    // `ddcp shell select 1`: the words of an unquoted statement taken as arguments.
    if command == "ddcp shell" && err.kind() == ErrorKind::UnknownArgument {
        line.push_str("; give the SQL as one quoted argument: ddcp shell \"select ...\"");
    }
    eprintln!("error: {}", output::redacted(&line));
    ExitCode::from(2)
}

/// The subcommand the arguments name, as far as they name one: "ddcp remote add".
fn command_path(args: &[String]) -> String {
    use clap::CommandFactory;
    let mut command = ddcp::cli::Cli::command();
    let mut path = vec!["ddcp".to_string()];
    for arg in args {
        if let Some(sub) = command.find_subcommand(arg).cloned() {
            path.push(sub.get_name().to_string());
            command = sub;
        }
    }
    path.join(" ")
}

/// clap's message in one line, with what helps kept: the missing arguments, the allowed values,
/// its tip ("a similar subcommand exists: 'status'"), and the help of the command at hand.
fn usage_line(rendered: &str, command: &str) -> String {
    let mut lines = rendered.lines();
    let first = lines.next().unwrap_or("invalid arguments");
    let mut message = first.strip_prefix("error: ").unwrap_or(first).to_string();
    let mut tips = Vec::new();
    for line in lines {
        let line = line.trim();
        if let Some(tip) = line.strip_prefix("tip: ") {
            tips.push(tip.to_string());
        } else if line.is_empty()
            || line.starts_with("Usage: ")
            || line.starts_with("For more information")
        {
            continue;
        } else if let Some(values) = line
            .strip_prefix('[')
            .and_then(|line| line.strip_suffix(']'))
        {
            tips.push(values.to_string());
        } else {
            // The arguments missing, one per line.
            message.push(' ');
            message.push_str(line);
        }
    }
    let message = message.trim_end_matches(':');
    let tips: String = tips.iter().map(|tip| format!("; {tip}")).collect();
    format!("{message}{tips} (see '{command} --help')")
}

/// Messages can carry newlines from SQL text or SQLite; the user gets one line.
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A bug should still read as one line, not a trace; RUST_BACKTRACE=1 brings the details back.
fn install_panic_hook() {
    if std::env::var_os("RUST_BACKTRACE").is_some() {
        return;
    }
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        let line = format!("internal error{location}: {message} (please report this bug)");
        eprintln!("error: {}", output::redacted(&line));
    }));
}

#[cfg(test)]
mod tests {
    use super::{command_path, usage_line};
    use clap::Parser;

    fn line(args: &[&str]) -> String {
        let err = ddcp::cli::Cli::try_parse_from([&["ddcp"], args].concat()).unwrap_err();
        let owned: Vec<String> = args.iter().map(|arg| arg.to_string()).collect();
        usage_line(&err.render().to_string(), &command_path(&owned))
    }

    #[test]
    fn usage_errors_keep_what_helps_in_one_line() {
        assert_eq!(
            line(&["remote", "add", "x"]),
            "the following required arguments were not provided: <KEY> (see 'ddcp remote add --help')"
        );
        let typo = line(&["stauts"]);
        assert!(
            typo.contains("a similar subcommand exists: 'status'"),
            "{typo}"
        );
        let mode = line(&["shell", "--mode", "html"]);
        assert!(
            mode.contains("possible values: list, csv, json, box"),
            "{mode}"
        );
        assert!(mode.ends_with("(see 'ddcp shell --help')"), "{mode}");
        for args in [
            &["remote", "add", "x"][..],
            &["stauts"],
            &["shell", "--mode", "html"],
        ] {
            assert!(!line(args).contains('\n'));
        }
    }
}
