//! An app's static files (`ddcp serve --api ADDR --app DIR`): its page and what the page loads,
//! served beside the API from one directory, so that a browser app needs nothing but ddcp.
//!
//! They are served without the token (a page cannot carry one before it is loaded; the page
//! then sends the token with its API requests), so the directory must hold nothing secret.
//! Only files directly in the directory or its subdirectories, named plainly (no dot files, no
//! `..`), regular files within [`MAX_APP_FILE_BYTES`], and no symbolic link out of it.

use std::path::{Path, PathBuf};

/// Bytes one app file may hold.
pub const MAX_APP_FILE_BYTES: u64 = 8 << 20;

/// The directory an app's files are served from.
#[derive(Clone, Debug)]
pub struct AppFiles {
    /// Canonical: a file's own canonical path must lie under it.
    dir: PathBuf,
}

/// Why a directory cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum AppFilesError {
    /// It cannot be read.
    #[error("the app directory {0} cannot be read: {1}")]
    Unreadable(PathBuf, std::io::Error),
    /// It has no page to start with.
    #[error("the app directory {0} has no index.html")]
    NoIndex(PathBuf),
}

/// A file found for a request.
#[derive(Debug)]
pub struct AppFile {
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// Its media type, by its name's extension.
    pub content_type: &'static str,
}

/// Why a request finds no file.
#[derive(Debug, PartialEq, Eq)]
pub enum AppFileMissing {
    /// No such file, or a name that is not served.
    NotFound,
    /// Larger than [`MAX_APP_FILE_BYTES`].
    TooLarge,
}

impl AppFiles {
    /// Serves `dir`, which must hold an `index.html`.
    pub fn new(dir: &Path) -> Result<AppFiles, AppFilesError> {
        let dir = dir
            .canonicalize()
            .map_err(|err| AppFilesError::Unreadable(dir.to_path_buf(), err))?;
        if !dir.join("index.html").is_file() {
            return Err(AppFilesError::NoIndex(dir));
        }
        Ok(AppFiles { dir })
    }

    /// The file for the request path `path` (`/` is `index.html`).
    pub async fn find(&self, path: &str) -> Result<AppFile, AppFileMissing> {
        let relative = relative_path(path).ok_or(AppFileMissing::NotFound)?;
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || read_under(&dir, &relative))
            .await
            .unwrap_or(Err(AppFileMissing::NotFound))
    }
}

/// Reads `relative` under `dir`, if it is a regular file there within its bound.
fn read_under(dir: &Path, relative: &Path) -> Result<AppFile, AppFileMissing> {
    let file = dir
        .join(relative)
        .canonicalize()
        .map_err(|_| AppFileMissing::NotFound)?;
    // A symbolic link out of the directory is not served.
    if !file.starts_with(dir) {
        return Err(AppFileMissing::NotFound);
    }
    let metadata = std::fs::metadata(&file).map_err(|_| AppFileMissing::NotFound)?;
    if !metadata.is_file() {
        return Err(AppFileMissing::NotFound);
    }
    if metadata.len() > MAX_APP_FILE_BYTES {
        return Err(AppFileMissing::TooLarge);
    }
    let bytes = std::fs::read(&file).map_err(|_| AppFileMissing::NotFound)?;
    Ok(AppFile {
        bytes,
        content_type: content_type(relative),
    })
}

/// The request path as a path under the directory, if its every segment is a plain name:
/// ASCII letters, digits, `-`, `_` and `.`, not starting with a dot.
fn relative_path(path: &str) -> Option<PathBuf> {
    let path = path.strip_prefix('/')?;
    if path.is_empty() {
        return Some(PathBuf::from("index.html"));
    }
    let mut relative = PathBuf::new();
    for segment in path.split('/') {
        let plain = !segment.is_empty()
            && !segment.starts_with('.')
            && segment
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || b"-_.".contains(&byte));
        if !plain {
            return None;
        }
        relative.push(segment);
    }
    Some(relative)
}

/// The media type of a file, by its extension; bytes for any other.
fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|extension| extension.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("txt") => "text/plain; charset=utf-8",
        Some("wasm") => "application/wasm",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_are_paths() {
        assert_eq!(relative_path("/"), Some(PathBuf::from("index.html")));
        assert_eq!(
            relative_path("/js/app.js"),
            Some(PathBuf::from("js").join("app.js"))
        );
        for refused in [
            "/../secret",
            "/a/../../b",
            "/.env",
            "/a//b",
            "/a/",
            "/%2e%2e/x",
            "/a\\b",
            "relative",
        ] {
            assert_eq!(relative_path(refused), None, "{refused}");
        }
    }

    #[tokio::test]
    async fn files_are_found_under_the_directory_only() {
        let root = tempfile::tempdir().unwrap();
        let app = root.path().join("app");
        std::fs::create_dir(&app).unwrap();
        std::fs::write(app.join("index.html"), "<p>hi</p>").unwrap();
        std::fs::write(root.path().join("secret"), "no").unwrap();
        std::os::unix::fs::symlink(root.path().join("secret"), app.join("link")).unwrap();
        std::fs::create_dir(app.join("sub")).unwrap();
        let files = AppFiles::new(&app).unwrap();

        let index = files.find("/").await.unwrap();
        assert_eq!(index.bytes, b"<p>hi</p>");
        assert_eq!(index.content_type, "text/html; charset=utf-8");
        assert_eq!(
            files.find("/link").await.unwrap_err(),
            AppFileMissing::NotFound
        );
        assert_eq!(
            files.find("/sub").await.unwrap_err(),
            AppFileMissing::NotFound
        );
        assert_eq!(
            files.find("/nope.js").await.unwrap_err(),
            AppFileMissing::NotFound
        );

        std::fs::remove_file(app.join("index.html")).unwrap();
        assert!(matches!(
            AppFiles::new(&app),
            Err(AppFilesError::NoIndex(_))
        ));
    }
}
