//! A key given as `-` is read from standard input: a key with its secret typed on the command
//! line stays in the shell's history and shows in `ps` to every user of the machine while the
//! command runs; read from a pipe or a file, it does neither.

use std::io::{BufRead, Read};

use super::{CloneArgs, Command, MemberCommand, RemoteCommand};

/// The argument that asks for standard input.
pub const FROM_STDIN: &str = "-";

/// A line longer than this is no key (one whole is under 100 characters).
const MOST_BYTES: u64 = 1024;

/// Why no key could be read from standard input.
#[derive(Debug, thiserror::Error)]
pub enum StdinKeyError {
    #[error(
        "{0} is -, but standard input is a terminal, where a key shows as it is typed: pipe or redirect it (e.g. - < FILE)"
    )]
    Terminal(&'static str),
    #[error("{0} is -, but standard input holds no key (give one line: the key)")]
    Empty(&'static str),
    #[error(
        "{0} is -, but standard input's first line is not a key: longer than {MOST_BYTES} bytes, or not UTF-8"
    )]
    NotAKey(&'static str),
    #[error("cannot read {0} from standard input: {1}")]
    Read(&'static str, std::io::Error),
}

/// Replaces a key argument given as `-` in `command` with the first line of `stdin`; the key
/// read, if one was (for the caller to keep out of everything it prints). A terminal is
/// refused: what is typed there shows on the screen and stays in its scrollback.
pub fn read_key_from_stdin(
    command: &mut Command,
    stdin: &mut impl BufRead,
    stdin_is_terminal: bool,
) -> Result<Option<String>, StdinKeyError> {
    let Some((slot, what)) = key_argument(command) else {
        return Ok(None);
    };
    if slot != FROM_STDIN {
        return Ok(None);
    }
    if stdin_is_terminal {
        return Err(StdinKeyError::Terminal(what));
    }
    // Wiped when done with; the key itself lives on in the command and the redactions.
    let mut line = zeroize::Zeroizing::new(Vec::new());
    stdin
        .take(MOST_BYTES + 1)
        .read_until(b'\n', &mut line)
        .map_err(|err| StdinKeyError::Read(what, err))?;
    if line.len() as u64 > MOST_BYTES {
        return Err(StdinKeyError::NotAKey(what));
    }
    let line = std::str::from_utf8(&line).map_err(|_| StdinKeyError::NotAKey(what))?;
    let key = line.trim();
    if key.is_empty() {
        return Err(StdinKeyError::Empty(what));
    }
    *slot = key.to_string();
    Ok(Some(key.to_string()))
}

/// The argument of `command` that takes a key, and what to call it in an error.
fn key_argument(command: &mut Command) -> Option<(&mut String, &'static str)> {
    match command {
        Command::Remote(RemoteCommand::Add { key, .. }) => Some((key, "the remote's key")),
        Command::Clone(CloneArgs { source, .. }) => Some((source, "the key to clone")),
        Command::Member(MemberCommand::Add { id, .. }) => Some((id, "the member's id")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn command(args: &[&str]) -> Command {
        let args = std::iter::once("ddcp").chain(args.iter().copied());
        super::super::Cli::try_parse_from(args).unwrap().command
    }

    fn remote_key(command: &Command) -> &str {
        match command {
            Command::Remote(RemoteCommand::Add { key, .. }) => key,
            _ => unreachable!("a remote add"),
        }
    }

    #[test]
    fn a_dash_takes_the_first_line_of_stdin() {
        let mut add = command(&["remote", "add", "alice", "-"]);
        let mut stdin = &b"  VLD0:abc:def \nmore\n"[..];
        let read = read_key_from_stdin(&mut add, &mut stdin, false).unwrap();
        assert_eq!(read.as_deref(), Some("VLD0:abc:def"));
        assert_eq!(remote_key(&add), "VLD0:abc:def");
        // Without a dash, stdin is not read.
        let mut add = command(&["remote", "add", "alice", "VLD0:x"]);
        let mut stdin = &b"VLD0:abc\n"[..];
        assert_eq!(
            read_key_from_stdin(&mut add, &mut stdin, false).unwrap(),
            None
        );
        assert_eq!(stdin, b"VLD0:abc\n");
        assert_eq!(remote_key(&add), "VLD0:x");
    }

    #[test]
    fn clone_and_member_add_take_a_dash_too() {
        let mut clone = command(&["clone", "-", "dir"]);
        read_key_from_stdin(&mut clone, &mut &b"VLD0:k:s"[..], false).unwrap();
        assert!(
            matches!(clone, Command::Clone(CloneArgs { ref source, .. }) if source == "VLD0:k:s")
        );
        let mut member = command(&["member", "add", "bob", "-"]);
        read_key_from_stdin(&mut member, &mut &b"VLD0:m\n"[..], false).unwrap();
        assert!(
            matches!(member, Command::Member(MemberCommand::Add { ref id, .. }) if id == "VLD0:m")
        );
    }

    #[test]
    fn no_key_or_no_line_is_one_clear_error() {
        let mut add = command(&["remote", "add", "alice", "-"]);
        let empty = read_key_from_stdin(&mut add, &mut &b"\n"[..], false).unwrap_err();
        assert_eq!(
            empty.to_string(),
            "the remote's key is -, but standard input holds no key (give one line: the key)"
        );
        let long = vec![b'a'; 5000];
        let too_long = read_key_from_stdin(&mut add, &mut &long[..], false).unwrap_err();
        assert!(matches!(too_long, StdinKeyError::NotAKey(_)), "{too_long}");
        let terminal = read_key_from_stdin(&mut add, &mut &b"VLD0:k:s\n"[..], true).unwrap_err();
        assert!(matches!(terminal, StdinKeyError::Terminal(_)), "{terminal}");
        let binary = read_key_from_stdin(&mut add, &mut &b"\xff\xfe\n"[..], false).unwrap_err();
        assert!(matches!(binary, StdinKeyError::NotAKey(_)), "{binary}");
    }
}
