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

/// The arguments of one run of ddcp that look like keys, to be cut out of whatever it prints.
#[derive(Clone, Default)]
pub struct Redactions {
    /// Longest first: an argument is replaced whole before its parts are looked for.
    hidden: Vec<String>,
}

impl std::fmt::Debug for Redactions {
    /// How many, never what.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactions({} hidden)", self.hidden.len())
    }
}

impl Redactions {
    /// What to hide of `args`: each argument that looks like a key (but the public form
    /// `VLD0:<one part>`), and the secret part of one (the secret half of `[VLD0:]KEY:SECRET`, the body of `VLD0-SECRET:...`), which a
    /// message may quote alone. The record a key names may be said: it is no secret.
    pub fn of_arguments<'a>(args: impl IntoIterator<Item = &'a str>) -> Redactions {
        let mut hidden = Vec::new();
        for arg in args.into_iter().filter(|arg| looks_like_a_key(arg)) {
            // `--name=VALUE` is given as one argument: its value is what may be quoted.
            let value = arg
                .strip_prefix("--")
                .and_then(|option| option.split_once('='))
                .map_or(arg, |(_, value)| value);
            // `VLD0:<one part>` is how ddcp prints what is public: a member id, a record key
            // without its secret. Said back as given (`added member bob (VLD0:...)`).
            if let Some((kind, rest)) = value.split_once(':')
                && kind.eq_ignore_ascii_case("VLD0")
                && !rest.contains(':')
            {
                continue;
            }
            hidden.push(value.to_string());
            let parts: Vec<&str> = value
                .split(':')
                .skip_while(|part| part.eq_ignore_ascii_case("VLD0"))
                .collect();
            // A secret comes last, after what it unlocks: `KEY:SECRET`, `VLD0-SECRET:BODY`.
            if let [_, .., secret] = parts[..]
                && looks_like_a_key(secret)
            {
                hidden.push(secret.to_string());
            }
        }
        hidden.sort_by_key(|text| std::cmp::Reverse(text.len()));
        hidden.dedup();
        Redactions { hidden }
    }

    /// True when nothing is hidden (the usual case: no argument looked like a key).
    pub fn is_empty(&self) -> bool {
        self.hidden.is_empty()
    }

    /// `text` with every hidden argument, and every part of one, replaced by [`NOT_SHOWN`].
    pub fn apply<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let mut text = Cow::Borrowed(text);
        for hidden in &self.hidden {
            if text.contains(hidden.as_str()) {
                text = Cow::Owned(text.replace(hidden.as_str(), NOT_SHOWN));
            }
        }
        text
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
    fn a_key_is_cut_out_whole_and_its_secret_alone() {
        let whole = format!("VLD0:{KEY}:{SECRET}");
        let hidden = Redactions::of_arguments(["remote", "add", &whole, "erin"]);
        assert_eq!(
            hidden.apply(&format!("invalid remote name \"{whole}\"")),
            format!("invalid remote name \"{NOT_SHOWN}\"")
        );
        // The record named without its secret stays: only the secret goes.
        assert_eq!(
            hidden.apply(&format!("key VLD0:{KEY}, secret {SECRET}")),
            format!("key VLD0:{KEY}, secret {NOT_SHOWN}")
        );
        let option = Redactions::of_arguments([format!("--db-file={KEY}:{SECRET}").as_str()]);
        assert!(
            !option
                .apply(&format!("no database at {KEY}:{SECRET}"))
                .contains(SECRET)
        );
        assert!(Redactions::of_arguments(["status", "--json"]).is_empty());
        // What ddcp prints as public (a member id, a key without its secret) is no secret;
        // a bare part alone may be a secret pasted without its key, and is.
        let public = format!("VLD0:{KEY}");
        assert!(Redactions::of_arguments(["member", "add", "bob", &public]).is_empty());
        assert!(!Redactions::of_arguments(["member", "add", "bob", SECRET]).is_empty());
        assert!(!format!("{hidden:?}").contains(SECRET));
    }
}
