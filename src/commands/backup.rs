//! `ddcp backup FILE [--with-identity]`: a consistent copy of a live database, optionally with
//! its keys; `restore.rs` is the way back.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::CommandError;
use super::output::{print_json, print_line};
use crate::cli::BackupArgs;
use crate::config::Config;
use crate::db::add_identity;

/// The state dir's identity files a backup `--with-identity` carries.
pub(super) const IDENTITY_FILES: [&str; 2] = ["record", "member"];

pub(super) fn partial(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

pub(super) fn file_error(
    what: &'static str,
    path: &Path,
) -> impl FnOnce(std::io::Error) -> CommandError {
    let path = path.to_path_buf();
    move |source| CommandError::File { what, path, source }
}

#[derive(Serialize)]
struct BackupJson {
    file: String,
    site_id: String,
    db_version: i64,
    with_identity: bool,
}

pub fn backup(config: &Config, args: &BackupArgs) -> Result<(), CommandError> {
    let db = super::open_db(config)?;
    if args.file.exists() && same_file(&args.file, &config.db_file) {
        return Err(CommandError::WouldOverwriteDatabase(args.file.clone()));
    }
    if args.file.exists() && !args.force {
        return Err(CommandError::BackupExists(args.file.clone()));
    }
    // The partial file is made beside FILE: a missing folder is said as FILE's.
    if let Some(folder) = args
        .file
        .parent()
        .filter(|folder| !folder.as_os_str().is_empty())
        && !folder.is_dir()
    {
        return Err(CommandError::NoFolder(args.file.clone()));
    }
    let identity = if args.with_identity {
        let mut files = Vec::new();
        for name in IDENTITY_FILES {
            let path = config.state_dir.join(name);
            let text = std::fs::read_to_string(&path).map_err(file_error("cannot read", &path))?;
            files.push((name.to_string(), text));
        }
        Some(files)
    } else {
        None
    };
    // Made beside the target, private, and renamed into place whole.
    let partial = partial(&args.file);
    let _ = std::fs::remove_file(&partial);
    // Errors name FILE, the file the user asked for, not the partial one beside it.
    let made = (|| -> Result<(), CommandError> {
        db.backup_into(&partial).map_err(|err| CommandError::File {
            what: "cannot write",
            path: args.file.clone(),
            source: std::io::Error::other(err.to_string()),
        })?;
        std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o600))
            .map_err(file_error("cannot write", &args.file))?;
        if let Some(files) = &identity {
            add_identity(&partial, files)?;
        }
        std::fs::File::open(&partial)
            .and_then(|file| file.sync_all())
            .map_err(file_error("cannot write", &args.file))?;
        std::fs::rename(&partial, &args.file).map_err(file_error("cannot write", &args.file))
    })();
    if made.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    made?;
    let (site_id, db_version) = (db.site_id()?, db.db_version()?);
    db.close()?;
    tracing::info!(target: "ddcp", file = %args.file.display(), db_version = db_version.0,
        with_identity = args.with_identity, "Backed up the database");
    if args.with_identity {
        tracing::warn!(target: "ddcp",
            "The backup holds this database's keys: whoever has the file can publish as it. Keep it secret");
    }
    if args.json {
        print_json(&BackupJson {
            file: args.file.display().to_string(),
            site_id: site_id.to_string(),
            db_version: db_version.0,
            with_identity: args.with_identity,
        })?;
    } else {
        let with = if args.with_identity {
            " (with its keys: keep it secret)"
        } else {
            ""
        };
        print_line(format_args!(
            "backed up site {site_id} at db_version {} to {}{with}",
            db_version.0,
            args.file.display()
        ))?;
    }
    Ok(())
}

fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}
