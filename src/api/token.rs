//! The API's bearer token: 32 random bytes, as hex, in `STATE_DIR/api-token` (mode 0600, its
//! owner's only), made the first time it is needed. It is shown only when asked for (`ddcp
//! api-token`) and never logged: its Debug says nothing of it.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::sync::random;

/// The file's name in the state dir.
const FILE: &str = "api-token";

/// A bearer token.
#[derive(Clone)]
pub struct ApiToken(String);

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiToken(..)")
    }
}

/// Why the token cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("cannot read or write {}: {source}", .path.display())]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not a token ddcp made (64 hex digits): remove it, and a new one is made", .0.display())]
    Damaged(PathBuf),
    #[error("{} may be read by others than its owner: `chmod 600` it, or remove it (a new token is made)", .0.display())]
    Exposed(PathBuf),
}

impl ApiToken {
    /// The token of the state dir, made now if it has none.
    pub fn load_or_create(state_dir: &Path) -> Result<ApiToken, TokenError> {
        let path = state_dir.join(FILE);
        let failed = |source| TokenError::File {
            path: path.clone(),
            source,
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(&path)
                    .map_err(failed)?
                    .permissions()
                    .mode();
                if mode & 0o077 != 0 {
                    return Err(TokenError::Exposed(path));
                }
                let token = text.trim();
                match token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit()) {
                    true => Ok(ApiToken(token.to_string())),
                    false => Err(TokenError::Damaged(path)),
                }
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let token = hex::encode(random::bytes::<32>());
                // Written whole under another name, then linked in place: another `ddcp` that
                // reads it meanwhile finds none or all of it, and of two made at once, one is
                // kept and both use it.
                let part = state_dir.join(format!("{FILE}.{}", hex::encode(random::bytes::<8>())));
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&part)
                    .map_err(failed)?;
                let written = writeln!(file, "{token}").and_then(|()| file.sync_all());
                let linked = written.and_then(|()| std::fs::hard_link(&part, &path));
                let _ = std::fs::remove_file(&part);
                match linked {
                    Ok(()) => Ok(ApiToken(token)),
                    Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                        ApiToken::load_or_create(state_dir)
                    }
                    Err(err) => Err(failed(err)),
                }
            }
            Err(err) => Err(failed(err)),
        }
    }

    /// The token itself, for the one who asked to see it.
    pub fn reveal(&self) -> &str {
        &self.0
    }

    /// Whether `presented` is this token, compared in time that does not depend on where they
    /// differ.
    pub fn admits(&self, presented: &str) -> bool {
        let (ours, theirs) = (self.0.as_bytes(), presented.as_bytes());
        ours.len() == theirs.len()
            && ours
                .iter()
                .zip(theirs)
                .fold(0u8, |diff, (a, b)| diff | (a ^ b))
                == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_made_once_owner_only_and_checked_whole() {
        let dir = tempfile::tempdir().unwrap();
        let token = ApiToken::load_or_create(dir.path()).unwrap();
        let again = ApiToken::load_or_create(dir.path()).unwrap();
        assert_eq!(token.reveal(), again.reveal());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(token.admits(token.reveal()));
        assert!(!token.admits(&token.reveal()[..63]));
        assert!(!token.admits(""));
        assert!(!format!("{token:?}").contains(token.reveal()));
        std::fs::set_permissions(
            dir.path().join(FILE),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        assert!(matches!(
            ApiToken::load_or_create(dir.path()),
            Err(TokenError::Exposed(_))
        ));
        std::fs::set_permissions(
            dir.path().join(FILE),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        std::fs::write(dir.path().join(FILE), "short").unwrap();
        assert!(matches!(
            ApiToken::load_or_create(dir.path()),
            Err(TokenError::Damaged(_))
        ));
    }
}
