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
use crate::sync::bundle::{BundleReader, BundleWriter, FORMAT_VERSION};
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
    let range = if is_stdio(path) {
        let out = BufWriter::new(io::stdout().lock());
        write_bundle(&db, out, site_id, schema, since)?
    } else {
        // Written beside the target and renamed into place: a reader never sees half a bundle,
        // and a failure leaves any older bundle of that name as it was.
        let partial = partial_path(path);
        let file = File::create(&partial).map_err(|source| CommandError::File {
            what: "cannot write",
            path: partial.clone(),
            source,
        })?;
        let result =
            write_bundle(&db, BufWriter::new(file), site_id, schema, since).and_then(|range| {
                std::fs::rename(&partial, path).map_err(|source| CommandError::File {
                    what: "cannot write",
                    path: path.to_path_buf(),
                    source,
                })?;
                Ok(range)
            });
        if result.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        result?
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

fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
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
    BundleReader::open(bytes).map_err(|reason| CommandError::Bundle {
        path: path.display().to_string(),
        reason,
    })
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
        .map_err(|reason| CommandError::Bundle {
            path: path.display().to_string(),
            reason,
        })?
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
            summary.since + 1,
            summary.until,
            summary.tables.join(", ")
        ))?;
    }
    Ok(())
}
