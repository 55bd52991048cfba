//! `ddcp backup FILE [--with-identity]` and `ddcp restore FILE [--force]`: a consistent copy of
//! a live database, and the way back to the same database (same site id, record and identity)
//! after a loss. A restored database pulls every remote from the start, which brings back what
//! it wrote after the backup and its peers pulled (see `pulling`: a pull from the start asks
//! for the puller's own changes too).

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use super::output::{print_json, print_line};
use super::{CommandError, block_on};
use crate::cli::{BackupArgs, RestoreArgs};
use crate::config::Config;
use crate::db::{Db, add_identity, copy_backup, read_backup, remove_database_files};
use crate::member_file;
use crate::net::{Node, RecordIdentity};
use crate::pull::remote_schema;
use crate::sync::RecordKey;

/// The state dir's identity files a backup `--with-identity` carries.
const IDENTITY_FILES: [&str; 2] = ["record", "member"];

/// How long `restore` lets another copy's route answer before it counts as not serving.
const SERVING_CHECK: Duration = Duration::from_secs(20);

fn partial(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

fn file_error(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> CommandError {
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

pub fn restore(config: &Config, args: &RestoreArgs) -> Result<(), CommandError> {
    if config.db_file.exists() {
        return Err(CommandError::RestoreOverExisting(config.db_file.clone()));
    }
    let info = read_backup(&args.file)?;
    let Some(record) = info.record.clone() else {
        return Err(CommandError::BackupWithoutRecord(args.file.clone()));
    };
    // The identity: the state dir's, if it is this database's; else the backup's.
    let carried = |name: &str| {
        info.identity
            .iter()
            .find(|(file, _)| file == name)
            .map(|(_, text)| text.clone())
    };
    let writes: Vec<(&str, String)> = if RecordIdentity::exists(&config.state_dir) {
        let held = RecordIdentity::load(&config.state_dir)?;
        if held.key.without_secret() != record.without_secret() {
            return Err(CommandError::RestoreOtherRecord {
                state_dir: config.state_dir.clone(),
                held: held.key.to_string(),
                backup: record.to_string(),
            });
        }
        IDENTITY_FILES
            .iter()
            .filter(|name| !config.state_dir.join(name).exists())
            .filter_map(|name| carried(name).map(|text| (*name, text)))
            .collect()
    } else {
        let files: Vec<(&str, String)> = IDENTITY_FILES
            .iter()
            .filter_map(|name| carried(name).map(|text| (*name, text)))
            .collect();
        if !files.iter().any(|(name, _)| *name == "record") {
            return Err(CommandError::RestoreWithoutIdentity {
                file: args.file.clone(),
                state_dir: config.state_dir.clone(),
            });
        }
        files
    };
    super::create_state_dir(config)?;
    for (name, text) in &writes {
        let path = config.state_dir.join(name);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .and_then(|mut file| file.write_all(text.as_bytes()))
            .map_err(file_error("cannot write", &path))?;
    }
    let identity = RecordIdentity::load(&config.state_dir)?;
    if args.force {
        super::output::print_warning(format_args!(
            "--force: whether another copy of record {} serves was not checked; two live copies of one site corrupt each other's peers, so make sure the copy this backup replaces never serves or pulls again",
            identity.key
        ));
    } else {
        let attach = Duration::from_secs(args.attach.attach_timeout);
        if let Err(err) = check_not_serving(config, &identity.key, &args.file, attach) {
            for (name, _) in &writes {
                let _ = std::fs::remove_file(config.state_dir.join(name));
            }
            return Err(err);
        }
    }
    let partial = partial(&config.db_file);
    let _ = std::fs::remove_file(&partial);
    let copied = copy_backup(&args.file, &partial)
        .map_err(CommandError::from)
        .and_then(|()| {
            std::fs::rename(&partial, &config.db_file)
                .map_err(file_error("cannot write", &config.db_file))
        });
    if let Err(err) = copied {
        remove_database_files(&partial);
        return Err(err);
    }
    let mut db = Db::open(&config.db_file, &config.extension)?;
    db.begin_restored_life()?;
    let (site_id, db_version) = (db.site_id()?, db.db_version()?);
    db.close()?;
    tracing::info!(target: "ddcp", file = %args.file.display(), key = %identity.key,
        db_version = db_version.0, "Restored the database");
    print_line(format_args!(
        "restored site {site_id} (record {}) at db_version {}: `ddcp serve` or `ddcp pull` catches up from its remotes",
        identity.key, db_version.0
    ))?;
    Ok(())
}

/// What the check of another copy found.
enum Serving {
    /// Its route answered.
    Yes,
    /// Nothing published, or a route that does not answer.
    No,
    /// A private database's Status does not open here.
    Private,
    /// The DHT did not answer (why) within the check's time.
    Unknown(String),
}

/// Refuses when another copy of the database at `key` serves: its route answers. A fresh node
/// may be told "try again" by the DHT for a while: asked again until [`SERVING_CHECK`].
fn check_not_serving(
    config: &Config,
    key: &RecordKey,
    file: &Path,
    attach: Duration,
) -> Result<(), CommandError> {
    use crate::net::NetError;
    use crate::pull::RemoteError;
    let me = member_file::load_or_create(&config.state_dir)?;
    let cannot = |err: NetError| CommandError::CannotCheckServing(err.to_string());
    let serving = block_on(async {
        let node = Node::start(&config.veilid_dir(), &config.network)
            .await
            .map_err(cannot)?;
        let checked = async {
            node.attach(attach).await.map_err(cannot)?;
            let network = node.network();
            let deadline = tokio::time::Instant::now() + SERVING_CHECK;
            let serving = loop {
                let asked = match network.open_record(key).await {
                    Ok(()) => {
                        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                        match tokio::time::timeout(left, remote_schema(network, &me, key)).await {
                            Ok(asked) => asked,
                            Err(_) => break Serving::No,
                        }
                    }
                    Err(err) => Err(RemoteError::Net(err)),
                };
                match asked {
                    Ok(_) => break Serving::Yes,
                    Err(RemoteError::NotAMember(_)) => break Serving::Private,
                    Err(RemoteError::Net(
                        NetError::Record { reason, .. } | NetError::RecordNotFound { reason, .. },
                    )) => {
                        if tokio::time::Instant::now() >= deadline {
                            break Serving::Unknown(reason);
                        }
                        tokio::time::sleep(Duration::from_secs(2)).await;
                    }
                    Err(_) => break Serving::No,
                }
            };
            network.close_record(key).await;
            Ok::<_, CommandError>(serving)
        }
        .await;
        node.shutdown().await;
        checked
    })??;
    match serving {
        Serving::No => Ok(()),
        Serving::Yes => Err(CommandError::AnotherCopyServes(key.clone())),
        Serving::Private => Err(CommandError::CannotCheckPrivate(file.to_path_buf())),
        Serving::Unknown(reason) => Err(CommandError::CannotCheckServing(format!(
            "the DHT did not answer: {reason}"
        ))),
    }
}
