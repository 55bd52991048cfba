//! `ddcp bundle create`: a database's changes into a file (or stdout), sealed for a member
//! when asked.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::super::CommandError;
use super::super::bundle_filter::BundleFilter;
use super::super::output::{print_json, print_line};
use super::{SealFor, is_stdio};
use crate::config::Config;
use crate::db::{ChangeRange, Db};
use crate::sync::bundle::{BundleWriter, FORMAT_VERSION};
use crate::sync::codec::BundleHeader;
use crate::sync::filter::ChangeFilter;
use crate::sync::sealed_file::SealedWriter;
use crate::sync::{DbVersion, SchemaDesc, SiteId};

/// Changes per changeset message in a bundle: large enough to be cheap, small enough that
/// neither side holds much at once.
const CHUNK_BYTES: usize = 1 << 20;

pub(super) fn create(
    config: &Config,
    path: &Path,
    since: DbVersion,
    seal: Option<&SealFor>,
    filter: &ChangeFilter,
    json: bool,
) -> Result<(), CommandError> {
    let db = super::super::open_db(config)?;
    db.check_read_filter(filter)?;
    // A bundle carries what this database serves: its mirrors only when served onward.
    let filter = &filter.and(&db.unserved_mirrors()?);
    let site_id = db.site_id()?;
    let schema = db.shared_schema()?;
    let what = BundleContent {
        db: &db,
        site_id,
        schema,
        since,
        seal,
        filter,
    };
    let range = match BundleTarget::of(path, &config.db_file)? {
        BundleTarget::Stdout => {
            if io::stdout().is_terminal() {
                return Err(CommandError::BinaryToTerminal);
            }
            let out = BufWriter::new(io::stdout().lock());
            write_bundle(&what, out).map_err(|err| err.writing(path))?
        }
        BundleTarget::Special => {
            let file = File::create(path).map_err(|source| write_error(path, source))?;
            write_bundle(&what, BufWriter::new(file)).map_err(|err| err.writing(path))?
        }
        BundleTarget::RegularFile => create_file(&what, path)?,
    };
    db.close()?;
    tracing::info!(
        target: "ddcp",
        changes = range.count,
        since = %range.since,
        until = %range.until,
        file = %path.display(),
        sealed_for = seal.map(|seal| seal.recipient.to_string()),
        "Created bundle"
    );
    // On stdout, unless stdout carries the bundle itself.
    let created = CreatedJson {
        file: path.display().to_string(),
        changes: range.count,
        since: range.since.0,
        until: range.until.0,
        sealed_for: seal.map(|seal| seal.recipient.to_string()),
    };
    if json {
        print_json(&created)?;
    } else if !is_stdio(path) {
        let sealed = created
            .sealed_for
            .as_ref()
            .map(|id| format!(", sealed for {id}"))
            .unwrap_or_default();
        print_line(format_args!(
            "wrote {} changes (db_version {}..={}) to {}{sealed}",
            created.changes,
            created.since + 1,
            created.until,
            created.file
        ))?;
    }
    Ok(())
}

/// What `bundle create --json` prints.
#[derive(Serialize)]
struct CreatedJson {
    file: String,
    changes: u64,
    since: i64,
    until: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    sealed_for: Option<String>,
}

/// Where a bundle goes.
enum BundleTarget {
    Stdout,
    /// A FIFO, a device or the like: written in place, never replaced.
    Special,
    /// A regular file (or a name not yet taken): written beside it and renamed into place.
    RegularFile,
}

impl BundleTarget {
    fn of(path: &Path, db_file: &Path) -> Result<BundleTarget, CommandError> {
        if is_stdio(path) {
            return Ok(BundleTarget::Stdout);
        }
        let Ok(target) = std::fs::metadata(path) else {
            return Ok(BundleTarget::RegularFile);
        };
        if is_database_file(&target, db_file) {
            return Err(CommandError::WouldOverwriteDatabase(path.to_path_buf()));
        }
        Ok(if target.is_file() {
            BundleTarget::RegularFile
        } else {
            BundleTarget::Special
        })
    }
}

/// True when `target` is the database file or one of its WAL companions.
fn is_database_file(target: &std::fs::Metadata, db_file: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    ["", "-wal", "-shm"].iter().any(|suffix| {
        let mut name = db_file.as_os_str().to_owned();
        name.push(suffix);
        std::fs::metadata(PathBuf::from(name))
            .is_ok_and(|db| db.dev() == target.dev() && db.ino() == target.ino())
    })
}

fn write_error(path: &Path, source: io::Error) -> CommandError {
    CommandError::File {
        what: "cannot write",
        path: path.to_path_buf(),
        source,
    }
}

fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

/// Writes beside the target and renames into place: a reader never sees half a bundle, and a
/// failure leaves any older bundle of that name as it was.
fn create_file(what: &BundleContent<'_>, path: &Path) -> Result<ChangeRange, CommandError> {
    let partial = partial_path(path);
    let result = File::create(&partial)
        .map_err(|source| write_error(&partial, source))
        .and_then(|file| {
            let mut out = BufWriter::new(file);
            let range = write_bundle(what, &mut out).map_err(|err| err.writing(&partial))?;
            let file = out
                .into_inner()
                .map_err(|err| write_error(&partial, err.into_error()))?;
            file.sync_all()
                .map_err(|source| write_error(&partial, source))?;
            std::fs::rename(&partial, path).map_err(|source| write_error(path, source))?;
            Ok(range)
        });
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

/// What goes into a bundle.
struct BundleContent<'a> {
    db: &'a Db,
    site_id: SiteId,
    schema: SchemaDesc,
    since: DbVersion,
    seal: Option<&'a SealFor>,
    /// What may be in it.
    filter: &'a ChangeFilter,
}

fn write_bundle(what: &BundleContent<'_>, out: impl Write) -> Result<ChangeRange, CommandError> {
    match what.seal {
        None => Ok(write_changes(what, out)?.0),
        Some(seal) => {
            let sealed = SealedWriter::start(out, &seal.sealer, &seal.recipient)?;
            let (range, sealed) = write_changes(what, sealed)?;
            sealed.finish()?;
            Ok(range)
        }
    }
}

/// Writes the bundle itself; hands back the output.
fn write_changes<W: Write>(
    what: &BundleContent<'_>,
    out: W,
) -> Result<(ChangeRange, W), CommandError> {
    let (db, site_id, since) = (what.db, what.site_id, what.since);
    let schema = what.schema.clone();
    let export = db.export_changes(since)?;
    let range = export.range();
    if range.since > range.until {
        return Err(CommandError::SinceBeyondVersion {
            since: range.since,
            db_version: range.until,
        });
    }
    // A filtered bundle holds what passes: counted first (the header says how many), in the
    // same snapshot, then written.
    let mut passing = BundleFilter::new(db, what.filter);
    let count = if what.filter.is_open() {
        range.count
    } else {
        let mut count = 0;
        export.for_each_chunk::<CommandError>(CHUNK_BYTES, |chunk| {
            count += passing.keep(chunk.to_vec())?.len() as u64;
            Ok(())
        })?;
        count
    };
    // As git refuses an empty bundle: a file that holds nothing is a mistake, not a backup.
    if range.count == 0 {
        return Err(CommandError::NothingToBundle(range.since));
    }
    if count == 0 {
        return Err(CommandError::NothingPassesFilter(range.since));
    }
    let header = BundleHeader {
        format_version: FORMAT_VERSION,
        site_id,
        since: range.since,
        until: range.until,
        change_count: count,
        schema,
    };
    let mut writer = BundleWriter::start(out, &header)?;
    export.for_each_chunk::<CommandError>(CHUNK_BYTES, |chunk| {
        if what.filter.is_open() {
            writer.write_changes(chunk)?;
        } else {
            writer.write_changes(&passing.keep(chunk.to_vec())?)?;
        }
        Ok(())
    })?;
    let out = writer.finish()?;
    Ok((ChangeRange { count, ..range }, out))
}

impl CommandError {
    /// Output errors while writing a bundle name the bundle: a closed pipe there is a failure
    /// (the bundle is incomplete), not the quiet end of a listing.
    fn writing(self, path: &Path) -> CommandError {
        match self {
            CommandError::Output(source) => write_error(path, source),
            other => other,
        }
    }
}
