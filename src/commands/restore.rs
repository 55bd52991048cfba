//! `ddcp restore FILE [--force] [--keep-members]`: the way back to the same database (same
//! site id, record and identity) after a loss. A restored database pulls every remote from the
//! start, which brings back what it wrote after the backup and its peers pulled (see `pulling`:
//! a pull from the start asks for the puller's own changes too).
//!
//! A backup also brings back whom the database let read at the time. What happened since is
//! taken from outside the backup, so that nobody removed since reads again and no key epoch is
//! used twice: the state dir's `removals` file (`removals_file`), and the Status the database
//! last published, which the owner opens and in which it finds whom it was sealed for.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use super::backup::{IDENTITY_FILES, file_error, partial};
use super::output::print_line;
use super::{CommandError, block_on};
use crate::cli::RestoreArgs;
use crate::config::Config;
use crate::db::{
    AccessSince, BackupInfo, Db, Member, copy_backup, read_backup, remove_database_files,
};
use crate::member_file;
use crate::net::{NetError, Network, Node, RecordIdentity};
use crate::removals_file::{self, Removals};
use crate::sync::codec::{decode_published, decode_status, encode_message};
use crate::sync::compress::Compression;
use crate::sync::protocol::{Message, Published, SealedStatus};
use crate::sync::seal::{SealError, open_own_status, sealed_for};
use crate::sync::{MemberKeys, RecordKey};

/// How long `restore` lets another copy's route answer before it counts as not serving.
const SERVING_CHECK: Duration = Duration::from_secs(20);

pub fn restore(config: &Config, args: &RestoreArgs) -> Result<(), CommandError> {
    if config.db_file.exists() {
        return Err(CommandError::RestoreOverExisting(config.db_file.clone()));
    }
    let info = read_backup(&args.file)?;
    let Some(record) = info.record.clone() else {
        return Err(CommandError::BackupWithoutRecord(args.file.clone()));
    };
    // The removals this state dir kept, when it is this database's.
    let kept_removals = match RecordIdentity::exists(&config.state_dir) {
        true => removals_file::load(&config.state_dir)?,
        false => None,
    };
    let writes = identity_files(config, args, &info, &record)?;
    // The check below makes a member identity when there is none: gone again if it fails, so
    // that a retry with a backup that carries one writes that one.
    let member_made = !config.state_dir.join("member").exists();
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
    // What a failed restore leaves: none of the identity files it wrote or made.
    let undo = || {
        for (name, _) in &writes {
            let _ = std::fs::remove_file(config.state_dir.join(name));
        }
        if member_made {
            let _ = std::fs::remove_file(config.state_dir.join("member"));
        }
    };
    let identity = RecordIdentity::load(&config.state_dir).inspect_err(|_| undo())?;
    let checked = check_before_restoring(config, args, &info, &identity.key, kept_removals);
    let since = checked.inspect_err(|_| undo())?;
    let partial = partial(&config.db_file);
    let _ = std::fs::remove_file(&partial);
    let copied = copy_backup(&args.file, &partial)
        .map_err(CommandError::from)
        .and_then(|()| begin_restored_life(config, &partial, since))
        .and_then(|restored| {
            std::fs::rename(&partial, &config.db_file)
                .map_err(file_error("cannot write", &config.db_file))?;
            Ok(restored)
        });
    let restored = match copied {
        Ok(restored) => restored,
        Err(err) => {
            remove_database_files(&partial);
            undo();
            return Err(err);
        }
    };
    tracing::info!(target: "ddcp", file = %args.file.display(), key = %identity.key,
        db_version = restored.db_version, epoch = restored.epoch, "Restored the database");
    print_line(format_args!(
        "restored site {} (record {}) at db_version {}: `ddcp serve` or `ddcp pull` catches up from its remotes",
        restored.site_id, identity.key, restored.db_version
    ))?;
    if !restored.removed.is_empty() {
        let names: Vec<&str> = restored
            .removed
            .iter()
            .map(|member| member.name.as_str())
            .collect();
        print_line(format_args!(
            "kept out: {} (removed since the backup, or not in the status it last published); key epoch {}",
            names.join(", "),
            restored.epoch
        ))?;
    }
    Ok(())
}

/// The identity files to write into the state dir: none when it holds this database's, else
/// the backup's.
fn identity_files(
    config: &Config,
    args: &RestoreArgs,
    info: &BackupInfo,
    record: &RecordKey,
) -> Result<Vec<(&'static str, String)>, CommandError> {
    let carried = |name: &str| {
        info.identity
            .iter()
            .find(|(file, _)| file == name)
            .map(|(_, text)| text.clone())
    };
    if RecordIdentity::exists(&config.state_dir) {
        let held = RecordIdentity::load(&config.state_dir)?;
        if held.key.without_secret() != record.without_secret() {
            return Err(CommandError::RestoreOtherRecord {
                state_dir: config.state_dir.clone(),
                held: held.key.to_string(),
                backup: record.to_string(),
            });
        }
        return Ok(IDENTITY_FILES
            .iter()
            .filter(|name| !config.state_dir.join(name).exists())
            .filter_map(|name| carried(name).map(|text| (*name, text)))
            .collect());
    }
    let files: Vec<(&'static str, String)> = IDENTITY_FILES
        .iter()
        .filter_map(|name| carried(name).map(|text| (*name, text)))
        .collect();
    if !files.iter().any(|(name, _)| *name == "record") {
        return Err(CommandError::RestoreWithoutIdentity {
            file: args.file.clone(),
            state_dir: config.state_dir.clone(),
        });
    }
    Ok(files)
}

/// Checks that no other copy serves (unless `--force`), and gathers what is known of the
/// database's access since the backup: refused when the backup lets members read and nothing
/// says who was removed since (unless `--keep-members`).
fn check_before_restoring(
    config: &Config,
    args: &RestoreArgs,
    info: &BackupInfo,
    key: &RecordKey,
    kept: Option<Removals>,
) -> Result<Since, CommandError> {
    let me = member_file::load_or_create(&config.state_dir)?;
    // Whether what is known says who was removed since the backup: the state dir's file, when
    // it began no later than the backup, or else the Status last published, when sealed.
    let kept_says = kept
        .as_ref()
        .is_some_and(|kept| kept.complete_since(info.epoch));
    let unknown = |why: &'static str| CommandError::RemovalsUnknown {
        state_dir: config.state_dir.clone(),
        why,
    };
    let must_know = info.holds_members && !kept_says && !args.keep_members;
    if args.force && must_know {
        return Err(unknown(
            "--force reads nothing from the network (without it, the status the database last published is read)",
        ));
    }
    let last_published = if args.force {
        super::output::print_warning(format_args!(
            "--force: whether another copy of record {key} serves was not checked; two live copies of one site corrupt each other's peers, so make sure the copy this backup replaces never serves or pulls again",
        ));
        None
    } else {
        let attach = Duration::from_secs(args.attach.attach_timeout);
        let (serving, published) = read_published(config, &me, key, attach)?;
        if serving {
            return Err(CommandError::AnotherCopyServes(key.clone()));
        }
        match &published {
            LastPublished::Sealed(sealed) if must_know && sealed.epoch < info.epoch => {
                return Err(unknown(
                    "the status its record holds is older than the backup (an earlier epoch)",
                ));
            }
            LastPublished::Nothing | LastPublished::Open if must_know => {
                return Err(unknown(
                    "the status its record holds is not sealed for members (public, or none)",
                ));
            }
            _ => {}
        }
        Some(published)
    };
    Ok(Since {
        kept: kept.unwrap_or_default(),
        last_published,
        me,
        key: key.clone(),
    })
}

/// What the database's record held when the restore read it.
enum LastPublished {
    /// Nothing (never published, or no longer held by the DHT).
    Nothing,
    /// An open Status: whoever had the key could read; nobody to keep out learned from it.
    Open,
    /// A sealed Status: its epoch, and the members it was sealed for.
    Sealed(Box<SealedStatus>),
}

/// What is known of the access since the backup, to take the restored database past it.
struct Since {
    kept: Removals,
    last_published: Option<LastPublished>,
    me: MemberKeys,
    key: RecordKey,
}

impl Since {
    /// What the restored database must be past, given its members as backed up.
    fn access_since(&self, members: &[Member]) -> AccessSince {
        let mut since = AccessSince {
            epoch: self.kept.epoch,
            removed: self.kept.removed.clone(),
        };
        if let Some(LastPublished::Sealed(sealed)) = &self.last_published {
            since.epoch = since.epoch.max(Some(sealed.epoch));
            since.removed.extend(
                members
                    .iter()
                    .filter(|member| !sealed_for(&self.me, &self.key, sealed, &member.id))
                    .map(|member| member.id),
            );
        }
        since
    }
}

/// What the restore did to the copy.
struct Restored {
    site_id: String,
    db_version: i64,
    epoch: u64,
    removed: Vec<Member>,
}

/// Begins the restored copy's new life and writes down, in the state dir, the epoch it begins
/// and the members it keeps out (whatever the source, the state dir knows them from now on).
fn begin_restored_life(
    config: &Config,
    copy: &Path,
    since: Since,
) -> Result<Restored, CommandError> {
    let mut db = Db::open(copy, &config.extension)?;
    let known = since.kept.removed.clone();
    let since = since.access_since(&db.members()?);
    let life = db.begin_restored_life(&since)?;
    // Before the copy takes the database's place: the state dir's file begins (when it is
    // made now) complete from the new epoch on.
    let epoch = life.access.epoch;
    for removed in since.removed.difference(&known) {
        removals_file::record_removed(&config.state_dir, removed, epoch)?;
    }
    removals_file::record_epoch(&config.state_dir, epoch, epoch)?;
    let restored = Restored {
        site_id: db.site_id()?.to_string(),
        db_version: db.db_version()?.0,
        epoch: life.access.epoch.0,
        removed: life.access.removed,
    };
    db.close()?;
    Ok(restored)
}

/// Reads what the database's record holds, and whether the route in it answers: another copy
/// serves. A fresh node may be told "try again" by the DHT for a while: asked again until
/// [`SERVING_CHECK`].
fn read_published(
    config: &Config,
    me: &MemberKeys,
    key: &RecordKey,
    attach: Duration,
) -> Result<(bool, LastPublished), CommandError> {
    let cannot = |err: NetError| CommandError::CannotCheckServing(err.to_string());
    block_on(async {
        let node = Node::start(&config.veilid_dir(), &config.network)
            .await
            .map_err(cannot)?;
        let checked = async {
            node.attach(attach).await.map_err(cannot)?;
            let network = node.network();
            let deadline = tokio::time::Instant::now() + SERVING_CHECK;
            let read = loop {
                let read = match network.open_record(key).await {
                    Ok(()) => network.read_record(key).await,
                    Err(err) => Err(err),
                };
                match read {
                    Err(
                        NetError::Record { reason, .. } | NetError::RecordNotFound { reason, .. },
                    ) if tokio::time::Instant::now() < deadline => {
                        tracing::debug!(target: "ddcp", %reason, "Reading the record again");
                        tokio::time::sleep(Duration::from_secs(2)).await;
                    }
                    Err(
                        NetError::Record { reason, .. } | NetError::RecordNotFound { reason, .. },
                    ) => {
                        break Err(CommandError::CannotCheckServing(format!(
                            "the DHT did not answer: {reason}"
                        )));
                    }
                    Err(err) => break Err(cannot(err)),
                    Ok(bytes) => break Ok(bytes),
                }
            };
            let checked = match read {
                Ok(None) => Ok((false, LastPublished::Nothing)),
                Ok(Some(bytes)) => {
                    let (route, published) = opened(config, me, key, &bytes)?;
                    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                    Ok((answers(network, &route, left).await, published))
                }
                Err(err) => Err(err),
            };
            network.close_record(key).await;
            checked
        }
        .await;
        node.shutdown().await;
        checked
    })?
}

/// The route and what was published, from the record's bytes, opened as their owner.
fn opened(
    config: &Config,
    me: &MemberKeys,
    key: &RecordKey,
    bytes: &[u8],
) -> Result<(Vec<u8>, LastPublished), CommandError> {
    let unreadable = |err: crate::sync::codec::CodecError| {
        CommandError::CannotCheckServing(format!(
            "its record holds a status this ddcp cannot read: {err}"
        ))
    };
    match decode_published(bytes).map_err(unreadable)? {
        Published::Open(status) => Ok((status.route, LastPublished::Open)),
        Published::Sealed(sealed) => {
            let inner = open_own_status(me, key, &sealed).map_err(|err| match err {
                SealError::NotAMember => CommandError::StatusOfAnotherOwner(config.state_dir.clone()),
                SealError::Damaged => CommandError::CannotCheckServing(
                    "its record's status does not open with this database's keys: damaged or forged"
                        .into(),
                ),
            })?;
            let status = decode_status(&inner).map_err(unreadable)?;
            Ok((status.route, LastPublished::Sealed(Box::new(sealed))))
        }
    }
}

/// Whether the route answers anything (a private database refuses the unsigned request: that
/// is an answer too) within `left`.
async fn answers(network: &Network, route: &[u8], left: Duration) -> bool {
    let Ok(route) = network.import_route(route) else {
        return false;
    };
    let request = encode_message(&Message::SchemaRequest, Compression::None);
    matches!(
        tokio::time::timeout(left, network.call(route.id(), request)).await,
        Ok(Ok(_))
    )
}
