//! `ddcp bundle create|apply|verify`: changes by file, like `git bundle`.

mod apply;
mod create;
mod verify;

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use super::CommandError;
use super::output::print_warning;
use crate::cli::BundleCommand;
use crate::config::Config;
use crate::db::MemberName;
use crate::member_file;
use crate::sync::bundle::{BundleError, BundleReader};
use crate::sync::filter::ChangeFilter;
use crate::sync::sealed_file::{is_sealed, open_sealed};
use crate::sync::{DbVersion, MemberId, MemberKeys, SchemaDesc};
use apply::apply;
use create::create;
use verify::verify;

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
    if !opened.proven {
        // Format 1 (before 2026-12): who sealed it is not proven.
        print_warning(format_args!(
            "{} is sealed in an older format: it opens, but it does not prove who sealed it (this database could have made it); ask its sender for a new one to know",
            path.display()
        ));
        return Ok((opened.bytes, None));
    }
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
