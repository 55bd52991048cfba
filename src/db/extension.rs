//! Loading cr-sqlite into a connection.
//!
//! cr-sqlite is initialized per connection, on ddcp's own connections only. It is never
//! registered with `sqlite3_auto_extension`: veilid-core opens SQLite databases of its own in the
//! same process, and cr-sqlite must stay out of them.
#![allow(unsafe_code)] // cr-sqlite's init function is called through its C ABI.

use std::ffi::{CStr, c_char, c_int};
use std::path::PathBuf;

use rusqlite::Connection;
use rusqlite::ffi;

use super::DbError;

unsafe extern "C" {
    /// The one global symbol of the cr-sqlite archive that build.rs links (see
    /// scripts/build-crsqlite.sh).
    fn sqlite3_crsqlite_init(
        db: *mut ffi::sqlite3,
        err_msg: *mut *mut c_char,
        api: *const ffi::sqlite3_api_routines,
    ) -> c_int;
}

/// Which cr-sqlite build a connection gets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Extension {
    /// The cr-sqlite 0.16.3 linked into this binary.
    #[default]
    BuiltIn,
    /// A loadable cr-sqlite build of the user's own (`--ext-file`).
    File(PathBuf),
}

impl Extension {
    /// Initializes cr-sqlite on `conn`.
    pub(super) fn load(&self, conn: &Connection) -> Result<(), DbError> {
        match self {
            Extension::BuiltIn => load_built_in(conn),
            Extension::File(path) => load_file(conn, path),
        }
    }
}

fn load_built_in(conn: &Connection) -> Result<(), DbError> {
    let mut err_msg: *mut c_char = std::ptr::null_mut();
    // SAFETY: the handle is a live connection owned by `conn`; the archive was built with
    // SQLITE_CORE against the very SQLite rusqlite links, so it needs no api table.
    let rc = unsafe { sqlite3_crsqlite_init(conn.handle(), &mut err_msg, std::ptr::null()) };
    if rc == ffi::SQLITE_OK {
        return Ok(());
    }
    let message = if err_msg.is_null() {
        format!("error code {rc}")
    } else {
        // SAFETY: SQLite allocated a NUL-terminated message that we now own and must free.
        unsafe {
            let text = CStr::from_ptr(err_msg).to_string_lossy().into_owned();
            ffi::sqlite3_free(err_msg.cast());
            text
        }
    };
    Err(DbError::Extension(format!("built-in cr-sqlite: {message}")))
}

fn load_file(conn: &Connection, path: &std::path::Path) -> Result<(), DbError> {
    if !path.is_file() {
        return Err(DbError::Extension(format!(
            "extension file {} does not exist or is not a file",
            path.display()
        )));
    }
    // SAFETY: loading a shared library runs its code; the user named it with --ext-file.
    // Loading is switched off again at once so SQL cannot load anything else.
    let result = unsafe {
        rusqlite::LoadExtensionGuard::new(conn)
            .and_then(|_guard| conn.load_extension(path, Some(c"sqlite3_crsqlite_init")))
    };
    result.map_err(|err| DbError::Extension(format!("{}: {err}", path.display())))
}
