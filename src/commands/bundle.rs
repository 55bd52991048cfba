//! `ddcp bundle create|apply|verify`: changes by file, like `git bundle`.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::CommandError;
use super::bundle_filter::BundleFilter;
use super::output::{print_json, print_line};
use crate::cli::BundleCommand;
use crate::config::Config;
use crate::db::{ChangeRange, Db, MemberName};
use crate::member_file;
use crate::sync::bundle::{BundleError, BundleReader, BundleWriter, FORMAT_VERSION};
use crate::sync::codec::BundleHeader;
use crate::sync::filter::ChangeFilter;
use crate::sync::sealed_file::{SealedWriter, is_sealed, open_sealed};
use crate::sync::{DbVersion, MemberId, MemberKeys, SchemaDesc, SiteId};

/// Changes per changeset message in a bundle: large enough to be cheap, small enough that
/// neither side holds much at once.
const CHUNK_BYTES: usize = 1 << 20;

pub fn run(config: &Config, command: BundleCommand) -> Result<(), CommandError> {
    match command {
        BundleCommand::Create {
            file,
            since,
            encrypt_to,
            for_member,
            filter,
            json,
        } => {
            if json && is_stdio(&file) {
                return Err(CommandError::JsonWithStdout);
            }
            let (filter, encrypt_to) = match for_member {
                Some(name) => {
                    // The flags narrow what the member may read, never widen it.
                    let reads = member_reads(config, &name)?;
                    (
                        reads.and(&filter.applied_to(&Default::default())?),
                        Some(name),
                    )
                }
                None => (filter.applied_to(&Default::default())?, encrypt_to),
            };
            if filter.rows.is_some() && since > 0 {
                return Err(CommandError::RowFilterSince);
            }
            let seal = match encrypt_to {
                Some(to) => Some(SealFor {
                    sealer: member_file::load_or_create(&config.state_dir)?,
                    recipient: recipient(config, &to)?,
                }),
                None => None,
            };
            create(
                config,
                &file,
                DbVersion(since),
                seal.as_ref(),
                &filter,
                json,
            )
        }
        BundleCommand::Apply {
            file,
            create_tables,
            json,
        } => apply(config, &file, create_tables, json),
        BundleCommand::Verify { file, json } => verify(config, &file, json),
    }
}

/// Who seals a bundle, for whom.
struct SealFor {
    sealer: MemberKeys,
    recipient: MemberId,
}

/// `--encrypt-to`'s database: a member id, or the name of a member.
fn recipient(config: &Config, to: &str) -> Result<MemberId, CommandError> {
    if let Ok(id) = to.parse::<MemberId>() {
        return Ok(id);
    }
    let name: MemberName = to
        .parse()
        .map_err(|_| CommandError::NoRecipient(to.to_string()))?;
    let db = super::open_db(config)?;
    let member = db.members()?.into_iter().find(|member| member.name == name);
    db.close()?;
    member
        .map(|member| member.id)
        .ok_or_else(|| CommandError::NoRecipient(to.to_string()))
}

/// What member `name` may read: its own filter within what the database shares.
fn member_reads(config: &Config, name: &str) -> Result<ChangeFilter, CommandError> {
    let name: MemberName = name.parse()?;
    let db = super::open_db(config)?;
    let member = db.members()?.into_iter().find(|member| member.name == name);
    let shared = db.share_filter()?;
    db.close()?;
    let member = member.ok_or_else(|| crate::db::DbError::NoSuchMember(name.to_string()))?;
    Ok(shared.and(&member.reads))
}

fn is_stdio(path: &Path) -> bool {
    path.as_os_str() == "-"
}

fn create(
    config: &Config,
    path: &Path,
    since: DbVersion,
    seal: Option<&SealFor>,
    filter: &ChangeFilter,
    json: bool,
) -> Result<(), CommandError> {
    let db = super::open_db(config)?;
    db.check_filter(filter)?;
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

/// A bundle's bytes, opened first when it is sealed (for this database, or refused); who
/// sealed it.
fn unseal(
    config: &Config,
    path: &Path,
    bytes: Vec<u8>,
) -> Result<(Vec<u8>, Option<MemberId>), CommandError> {
    if !is_sealed(&bytes) {
        return Ok((bytes, None));
    }
    let me = member_file::load_or_create(&config.state_dir)?;
    let opened = open_sealed(&me, &bytes).map_err(|reason| CommandError::Sealed {
        path: path.display().to_string(),
        reason,
    })?;
    Ok((opened.bytes, Some(opened.sealer)))
}

fn open_bundle<'a>(path: &Path, bytes: &'a [u8]) -> Result<BundleReader<'a>, CommandError> {
    BundleReader::open(bytes).map_err(|reason| bundle_error(path, reason))
}

/// The CRR schema in the bundle at `path` (for `init --schema-from`), checked whole.
pub(super) fn schema_of(path: &Path) -> Result<SchemaDesc, CommandError> {
    let bytes = read_input(path)?;
    if is_sealed(&bytes) {
        return Err(CommandError::SealedSchema(path.to_path_buf()));
    }
    Ok(open_bundle(path, &bytes)?.header().schema.clone())
}

fn bundle_error(path: &Path, reason: BundleError) -> CommandError {
    CommandError::Bundle {
        path: path.display().to_string(),
        reason,
    }
}

/// What `bundle apply --json` prints.
#[derive(Serialize)]
struct AppliedJson {
    changes: u64,
    from_site: String,
    since: i64,
    until: i64,
    db_version_before: i64,
    db_version_after: i64,
    /// False when the database held every change already.
    changed: bool,
}

fn apply(
    config: &Config,
    path: &Path,
    create_tables: bool,
    json: bool,
) -> Result<(), CommandError> {
    // The whole file is checked (checksum) before the database is touched.
    let (bytes, sealer) = unseal(config, path, read_input(path)?)?;
    let mut reader = open_bundle(path, &bytes)?;
    let mut db = super::open_db(config)?;
    if create_tables {
        if db.crr_tables()?.is_empty() {
            db.create_tables(&reader.header().schema)?;
        } else {
            tracing::info!(target: "ddcp",
                "The database has CRR tables already: --create-tables makes none");
        }
    }
    if let Some(difference) = db.shared_schema()?.difference(&reader.header().schema) {
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
    applier.note_arrival(reader.header().site_id, "bundle")?;
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
        sealed_by = sealer.map(|sealer| sealer.to_string()),
        "Applied bundle"
    );
    let applied = AppliedJson {
        changes: outcome.offered,
        from_site: header.site_id.to_string(),
        since: header.since.0,
        until: header.until.0,
        db_version_before: outcome.db_version_before.0,
        db_version_after: outcome.db_version_after.0,
        changed: outcome.db_version_after != outcome.db_version_before,
    };
    if json {
        print_json(&applied)?;
    } else {
        let result = if applied.changed {
            format!(
                "this database is now at db_version {}",
                applied.db_version_after
            )
        } else {
            "nothing new: this database held them all".to_string()
        };
        print_line(format_args!(
            "applied {} changes from site {}: {result}",
            applied.changes, applied.from_site
        ))?;
    }
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
    /// The member id that sealed it for this database, when it is sealed.
    #[serde(skip_serializing_if = "Option::is_none")]
    sealed_by: Option<String>,
    /// Changes per author site: a bundle relays what its database merged from others.
    authors: Vec<AuthorCount>,
}

#[derive(Serialize)]
struct AuthorCount {
    site_id: String,
    changes: u64,
}

fn verify(config: &Config, path: &Path, json: bool) -> Result<(), CommandError> {
    let (bytes, sealer) = unseal(config, path, read_input(path)?)?;
    let mut reader = open_bundle(path, &bytes)?;
    // Decoding every changeset also checks the change count against the header.
    let mut authors: std::collections::BTreeMap<SiteId, u64> = Default::default();
    while let Some(changes) = reader
        .next_changes()
        .map_err(|reason| bundle_error(path, reason))?
    {
        for change in &changes {
            *authors.entry(change.site_id).or_default() += 1;
        }
    }
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
        sealed_by: sealer.map(|sealer| sealer.to_string()),
        authors: authors
            .into_iter()
            .map(|(site, changes)| AuthorCount {
                site_id: site.to_string(),
                changes,
            })
            .collect(),
    };
    if json {
        print_json(&summary)?;
    } else {
        let sealed = match &summary.sealed_by {
            Some(sealer) => format!(", sealed for this database by {sealer}"),
            None => String::new(),
        };
        let authors: Vec<String> = summary
            .authors
            .iter()
            .map(|author| format!("{} by {}", author.changes, author.site_id))
            .collect();
        print_line(format_args!(
            "{}: ok, {} changes from site {} (its db_version {}..={}: {}), tables: {}{sealed}",
            path.display(),
            summary.changes,
            summary.site_id,
            summary.since.saturating_add(1),
            summary.until,
            authors.join(", "),
            summary.tables.join(", ")
        ))?;
    }
    Ok(())
}
