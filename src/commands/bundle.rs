//! `ddcp bundle create|apply|verify`: changes by file, like `git bundle`.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::CommandError;
use super::output::{print_json, print_line};
use crate::cli::BundleCommand;
use crate::config::Config;
use crate::db::{ChangeRange, Db};
use crate::sync::bundle::{BundleError, BundleReader, BundleWriter, FORMAT_VERSION};
use crate::sync::codec::BundleHeader;
use crate::sync::{DbVersion, SchemaDesc, SiteId};

/// Changes per changeset message in a bundle: large enough to be cheap, small enough that
/// neither side holds much at once.
const CHUNK_BYTES: usize = 1 << 20;

pub fn run(config: &Config, command: BundleCommand) -> Result<(), CommandError> {
    match command {
        BundleCommand::Create { file, since } => create(config, &file, DbVersion(since)),
        BundleCommand::Apply { file } => apply(config, &file),
        BundleCommand::Verify { file, json } => verify(&file, json),
    }
}

fn is_stdio(path: &Path) -> bool {
    path.as_os_str() == "-"
}

fn create(config: &Config, path: &Path, since: DbVersion) -> Result<(), CommandError> {
    let db = Db::open(&config.db_file, &config.extension)?;
    let site_id = db.site_id()?;
    let schema = db.schema()?;
    let range = match BundleTarget::of(path, &config.db_file)? {
        BundleTarget::Stdout => {
            let out = BufWriter::new(io::stdout().lock());
            write_bundle(&db, out, site_id, schema, since).map_err(|err| err.writing(path))?
        }
        BundleTarget::Special => {
            let file = File::create(path).map_err(|source| write_error(path, source))?;
            write_bundle(&db, BufWriter::new(file), site_id, schema, since)
                .map_err(|err| err.writing(path))?
        }
        BundleTarget::RegularFile => create_file(&db, path, site_id, schema, since)?,
    };
    db.close()?;
    tracing::info!(
        target: "ddcp",
        changes = range.count,
        since = %range.since,
        until = %range.until,
        file = %path.display(),
        "Created bundle"
    );
    Ok(())
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
fn create_file(
    db: &Db,
    path: &Path,
    site_id: SiteId,
    schema: SchemaDesc,
    since: DbVersion,
) -> Result<ChangeRange, CommandError> {
    let partial = partial_path(path);
    let result = File::create(&partial)
        .map_err(|source| write_error(&partial, source))
        .and_then(|file| {
            let mut out = BufWriter::new(file);
            let range = write_bundle(db, &mut out, site_id, schema, since)
                .map_err(|err| err.writing(&partial))?;
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

fn write_bundle(
    db: &Db,
    out: impl Write,
    site_id: SiteId,
    schema: SchemaDesc,
    since: DbVersion,
) -> Result<ChangeRange, CommandError> {
    let export = db.export_changes(since)?;
    let range = export.range();
    if range.since > range.until {
        return Err(CommandError::SinceBeyondVersion {
            since: range.since,
            db_version: range.until,
        });
    }
    let header = BundleHeader {
        format_version: FORMAT_VERSION,
        site_id,
        since: range.since,
        until: range.until,
        change_count: range.count,
        schema,
    };
    let mut writer = BundleWriter::start(out, &header)?;
    export.for_each_chunk::<CommandError>(CHUNK_BYTES, |chunk| {
        writer.write_changes(chunk)?;
        Ok(())
    })?;
    writer.finish()?;
    Ok(range)
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

fn read_input(path: &Path) -> Result<Vec<u8>, CommandError> {
    let mut bytes = Vec::new();
    let result = if is_stdio(path) {
        io::stdin().lock().read_to_end(&mut bytes).map(|_| ())
    } else {
        File::open(path).and_then(|mut file| file.read_to_end(&mut bytes).map(|_| ()))
    };
    result.map_err(|source| CommandError::File {
        what: "cannot read",
        path: path.to_path_buf(),
        source,
    })?;
    Ok(bytes)
}

fn open_bundle<'a>(path: &Path, bytes: &'a [u8]) -> Result<BundleReader<'a>, CommandError> {
    BundleReader::open(bytes).map_err(|reason| bundle_error(path, reason))
}

fn bundle_error(path: &Path, reason: BundleError) -> CommandError {
    CommandError::Bundle {
        path: path.display().to_string(),
        reason,
    }
}

fn apply(config: &Config, path: &Path) -> Result<(), CommandError> {
    // The whole file is checked (checksum) before the database is touched.
    let bytes = read_input(path)?;
    let mut reader = open_bundle(path, &bytes)?;
    let mut db = Db::open(&config.db_file, &config.extension)?;
    if let Some(difference) = db.schema()?.difference(&reader.header().schema) {
        return Err(CommandError::SchemaMismatch(difference));
    }
    let mut applier = db.begin_apply()?;
    while let Some(changes) = reader
        .next_changes()
        .map_err(|reason| CommandError::Bundle {
            path: path.display().to_string(),
            reason,
        })?
    {
        applier.apply(&changes)?;
    }
    let outcome = applier.commit()?;
    db.close()?;
    let header = reader.header();
    tracing::info!(
        target: "ddcp",
        changes = outcome.offered,
        from_site = %header.site_id,
        since = %header.since,
        until = %header.until,
        db_version = %outcome.db_version_after,
        "Applied bundle"
    );
    Ok(())
}

#[derive(Serialize)]
struct VerifyJson {
    format_version: u32,
    site_id: String,
    since: i64,
    until: i64,
    changes: u64,
    schema_fingerprint: String,
    tables: Vec<String>,
}

fn verify(path: &Path, json: bool) -> Result<(), CommandError> {
    let bytes = read_input(path)?;
    let mut reader = open_bundle(path, &bytes)?;
    // Decoding every changeset also checks the change count against the header.
    while reader
        .next_changes()
        .map_err(|reason| bundle_error(path, reason))?
        .is_some()
    {}
    let header = reader.header();
    let summary = VerifyJson {
        format_version: header.format_version,
        site_id: header.site_id.to_string(),
        since: header.since.0,
        until: header.until.0,
        changes: header.change_count,
        schema_fingerprint: header.schema.fingerprint().to_string(),
        tables: header
            .schema
            .tables
            .iter()
            .map(|t| t.name.clone())
            .collect(),
    };
    if json {
        print_json(&summary)?;
    } else {
        print_line(format_args!(
            "{}: ok, {} changes of site {} (db_version {}..={}), tables: {}",
            path.display(),
            summary.changes,
            summary.site_id,
            summary.since.saturating_add(1),
            summary.until,
            summary.tables.join(", ")
        ))?;
    }
    Ok(())
}
