//! Keys typed where they do not belong, kept out of what ddcp prints. A record key's secret or
//! a member's secret key given as a name, a table, a path or an option's value must never be
//! printed back (in an error, a log line, a result): a shell's history is one thing, a log
//! shipped elsewhere another.

use std::borrow::Cow;

/// A key, a secret or a member id is 32 bytes in unpadded base64url: 43 characters. A run of
/// this many base64url characters in an argument is taken for one (a plain word, a table
/// name or a path is rarely that long without a break).
const KEY_RUN: usize = 40;

/// Said in place of an argument that looks like a key.
pub const NOT_SHOWN: &str = "(not shown: it looks like a key)";

/// True when `text` holds what looks like a key or a secret: a run of at least 40 base64url
/// characters (`A-Z a-z 0-9 - _`).
pub fn looks_like_a_key(text: &str) -> bool {
    let mut run = 0;
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            run += 1;
            if run >= KEY_RUN {
                return true;
            }
        } else {
            run = 0;
        }
    }
    false
}

/// A piece of a secret this long, found in a text, is taken for the secret's: a key's 43
/// characters cut short by a bounded message (`printable`) keep more than this.
const PIECE: usize = 12;

/// A run this long, cut short (followed by `…` or `...`), is taken for a secret's start: a
/// shorter one is as likely an abbreviation ("e.g.") as what is left of a secret.
const CUT_PIECE: usize = 4;

/// The maximal base64url runs of `text`, with where each starts.
fn runs(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut rest = text.char_indices().peekable();
    std::iter::from_fn(move || {
        let is_run = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        let (start, _) = rest.find(|&(_, c)| is_run(c))?;
        let mut end = start + 1;
        while let Some(&(at, c)) = rest.peek() {
            if !is_run(c) {
                break;
            }
            end = at + c.len_utf8();
            rest.next();
        }
        Some((start, &text[start..end]))
    })
}

/// What of one run of ddcp's arguments may be a secret, to be cut out of whatever it prints.
#[derive(Clone, Default)]
pub struct Redactions {
    /// Every run of an argument that may be a secret: the part after a key's ':', a run as
    /// long as a key's on its own (a secret pasted alone, or inside a list, a path, SQL text).
    secrets: Vec<String>,
}

impl std::fmt::Debug for Redactions {
    /// How many, never what.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactions({} hidden)", self.secrets.len())
    }
}

impl Redactions {
    /// What of `args` may be a secret: every run of 40 or more base64url characters in them,
    /// wherever it stands, except what ddcp prints as public: the key of `KEY:SECRET` (the
    /// secret comes after what it unlocks) and `VLD0:<one part>` (a member id, a key without
    /// its secret).
    pub fn of_arguments<'a>(args: impl IntoIterator<Item = &'a str>) -> Redactions {
        let mut secrets = Vec::new();
        for arg in args {
            for (start, run) in runs(arg).filter(|(_, run)| run.len() >= KEY_RUN) {
                let after = &arg[start + run.len()..];
                let unlocks_a_secret = after
                    .strip_prefix(':')
                    .and_then(|rest| runs(rest).next())
                    .is_some_and(|(at, next)| at == 0 && next.len() >= KEY_RUN);
                let before = &arg[..start];
                let public_form = before
                    .get(before.len().saturating_sub(5)..)
                    .is_some_and(|prefix| prefix.eq_ignore_ascii_case("VLD0:"))
                    && !after.starts_with(':');
                if !unlocks_a_secret && !public_form {
                    secrets.push(run.to_string());
                }
            }
        }
        secrets.sort();
        secrets.dedup();
        Redactions { secrets }
    }

    /// True when nothing is hidden (the usual case: no argument looked like a key).
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// `text` with every run that is, holds or is a piece of a secret replaced by
    /// [`NOT_SHOWN`]: a piece of 12 characters or more, or one of 4 or more cut short
    /// (followed by `…` or `...`, the marks of a bounded message) that a secret starts with.
    pub fn apply<'t>(&self, text: &'t str) -> Cow<'t, str> {
        if self.secrets.is_empty() {
            return Cow::Borrowed(text);
        }
        let mut out = String::new();
        let mut copied = 0;
        for (start, run) in runs(text) {
            let cut_short =
                run.len() >= CUT_PIECE && text[start + run.len()..].starts_with(['…', '.']);
            let secret = self.secrets.iter().any(|secret| {
                run.contains(secret.as_str())
                    || (run.len() >= PIECE && secret.contains(run))
                    || (cut_short && secret.starts_with(run))
            });
            if secret {
                out.push_str(&text[copied..start]);
                out.push_str(NOT_SHOWN);
                copied = start + run.len();
            }
        }
        if copied == 0 {
            return Cow::Borrowed(text);
        }
        out.push_str(&text[copied..]);
        Cow::Owned(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "73iT7NuqplS2nab1AH4P7lJYiQROR_k4NyUhag_K4DY";
    const SECRET: &str = "eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHg";

    #[test]
    fn keys_secrets_and_member_ids_look_like_keys_and_names_and_paths_do_not() {
        for key in [
            KEY.to_string(),
            format!("{KEY}:{SECRET}"),
            format!("VLD0:{KEY}:{SECRET}"),
            format!("VLD0-SECRET:{SECRET}"),
            format!("./backups/{KEY}.db"),
        ] {
            assert!(looks_like_a_key(&key), "{key}");
        }
        for plain in [
            "alice",
            "bookmarks",
            "./backup-with-a-typo.db",
            "/var/lib/ddcp/a_fairly_long_table_name/x.db",
            "owner = 'bob' and title like '%x%'",
        ] {
            assert!(!looks_like_a_key(plain), "{plain}");
        }
    }

    #[test]
    fn a_secret_is_cut_out_wherever_it_was_typed_and_however_it_is_quoted() {
        let whole = format!("VLD0:{KEY}:{SECRET}");
        let hidden = Redactions::of_arguments(["remote", "add", &whole, "erin"]);
        assert_eq!(
            hidden.apply(&format!("invalid remote name \"{whole}\"")),
            format!("invalid remote name \"VLD0:{KEY}:{NOT_SHOWN}\"")
        );
        // The record named without its secret stays: only the secret goes.
        assert_eq!(
            hidden.apply(&format!("key VLD0:{KEY}, secret {SECRET}")),
            format!("key VLD0:{KEY}, secret {NOT_SHOWN}")
        );
        // Cut short by a bounded message, or quoted in a longer word: still not shown.
        let cut = format!("no table named \"VLD0:{}…:{}…\"", &KEY[..4], &SECRET[..31]);
        assert!(
            !hidden.apply(&cut).contains(&SECRET[..31]),
            "{}",
            hidden.apply(&cut)
        );
        assert!(
            !hidden
                .apply(&format!("in: select '{}...", &SECRET[..5]))
                .contains(&SECRET[..5])
        );
        assert!(!hidden.apply(&format!("member n{SECRET}")).contains(SECRET));
        // Inside a list, a path, an option's value, SQL text.
        for arg in [
            format!("bookmarks,{SECRET}"),
            format!("/tmp/{SECRET}.db"),
            format!("--db-file={KEY}:{SECRET}"),
            format!("select * from \"VLD0:{KEY}:{SECRET}\""),
            format!("VLD0-SECRET:{SECRET}"),
        ] {
            let hidden = Redactions::of_arguments([arg.as_str()]);
            let message = format!("error: {arg}: no such thing");
            let shown = hidden.apply(&message);
            assert!(!shown.contains(SECRET), "{shown}");
        }
        assert!(Redactions::of_arguments(["status", "--json"]).is_empty());
        assert!(!format!("{hidden:?}").contains(SECRET));
        // What ddcp prints as public (a member id, a key without its secret) is no secret;
        // a bare part alone may be a secret pasted without its key, and is.
        let public = format!("VLD0:{KEY}");
        assert!(Redactions::of_arguments(["member", "add", "bob", &public]).is_empty());
        assert!(!Redactions::of_arguments(["member", "add", "bob", SECRET]).is_empty());
        // A short word before a dot is an abbreviation, whatever a secret starts with.
        let starts = Redactions::of_arguments([format!("eg{}", &SECRET[..40]).as_str()]);
        assert_eq!(starts.apply("e.g. this"), "e.g. this");
        // Text without a secret is given back as it was.
        assert!(matches!(
            hidden.apply("nothing to hide here"),
            Cow::Borrowed(_)
        ));
    }
}
