//! A database's name among those one `ddcp serve` hosts: its folder's name, and what the host's
//! log, status and commands call it.

use std::fmt;
use std::str::FromStr;

/// The longest name: a folder name, and later a metrics label value.
const MAX_LEN: usize = 64;

/// A hosted database's name: 1 to 64 of `A-Z a-z 0-9 . _ -`, not starting with `.` (a folder
/// starting with `.` is the host's own, or hidden).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DbName(String);

/// A name that is not a hosted database's.
#[derive(Debug, thiserror::Error)]
#[error(
    "{0:?} cannot name a hosted database: use 1 to {MAX_LEN} letters, digits, '.', '_' or '-', not starting with '.'"
)]
pub struct BadDbName(String);

impl FromStr for DbName {
    type Err = BadDbName;

    fn from_str(text: &str) -> Result<DbName, BadDbName> {
        let fits = !text.is_empty()
            && text.len() <= MAX_LEN
            && !text.starts_with('.')
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if fits {
            Ok(DbName(text.to_string()))
        } else {
            Err(BadDbName(text.chars().take(MAX_LEN + 1).collect()))
        }
    }
}

impl DbName {
    /// The name, as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DbName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_folder_names_that_are_safe_labels() {
        for good in ["a", "site-1", "board_2.old", &"x".repeat(MAX_LEN)] {
            assert_eq!(good.parse::<DbName>().unwrap().as_str(), good);
        }
        for bad in [
            "",
            ".ddcp",
            "a/b",
            "..",
            "a b",
            "é",
            &"x".repeat(MAX_LEN + 1),
        ] {
            assert!(bad.parse::<DbName>().is_err(), "{bad:?}");
        }
    }
}
