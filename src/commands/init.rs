//! `ddcp init`: a new ddcp database, its state directory and its DHT record.

use super::CommandError;
use crate::cli::InitArgs;
use crate::config::Config;
use crate::db::{Access, Db, remove_database_files};
use crate::member_file;
use crate::net::{NetError, RecordIdentity};
use crate::sync::RecordKey;

pub fn run(config: &Config, args: &InitArgs) -> Result<(), CommandError> {
    if RecordIdentity::exists(&config.state_dir) {
        // `ddcp init` run twice: said of the database, what the user asked to make.
        if config.db_file.exists() && Db::open(&config.db_file, &config.extension).is_ok() {
            return Err(crate::db::DbError::AlreadyInitialized(config.db_file.clone()).into());
        }
        return Err(NetError::IdentityExists(config.state_dir.clone()).into());
    }
    // The bundle is read whole and checked before anything is made.
    let schema = match &args.schema_from {
        Some(path) => Some(super::bundle::schema_of(path)?),
        None => None,
    };
    let state_dir_existed = config.state_dir.exists();
    let db_existed = config.db_file.exists();
    let result = initialize(config, args, schema.as_ref());
    if result.is_err() {
        // Nothing half made: what this run created goes again. (An application database that
        // was adopted keeps ddcp's tables; `ddcp init` on it fails from then on with a clear
        // message, and the tables are harmless.)
        if !db_existed {
            remove_database_files(&config.db_file);
        }
        if !state_dir_existed {
            let _ = std::fs::remove_dir_all(&config.state_dir);
        }
    }
    let key = result?;
    tracing::info!(target: "ddcp", key = ?key.to_string(), "Registered database at DHT");
    // The one place besides `ddcp addr` that prints the secret: the user needs it to share.
    if args.json {
        let id = member_file::load_or_create(&config.state_dir)?.id();
        super::output::print_json(&InitJson {
            key: key.reveal().to_string(),
            id: id.to_string(),
            access: if args.private { "private" } else { "public" },
        })?;
    } else {
        super::output::print_line(key.reveal())?;
    }
    Ok(())
}

/// What `init --json` prints.
#[derive(serde::Serialize)]
struct InitJson {
    /// The whole record key, which peers give `remote add` or `clone`.
    key: String,
    /// The member id, which a private database's owner adds.
    id: String,
    access: &'static str,
}

fn initialize(
    config: &Config,
    args: &InitArgs,
    schema: Option<&crate::sync::SchemaDesc>,
) -> Result<RecordKey, CommandError> {
    super::create_state_dir(config)?;
    let mut db = Db::create(&config.db_file, &config.extension)?;
    if let Some(schema) = schema {
        db.create_tables(schema)?;
    }
    if args.private {
        db.set_access(Access::Private)?;
        let epoch = db.access_state()?.epoch;
        crate::removals_file::record_epoch(&config.state_dir, epoch, crate::sync::Epoch(0))?;
    }
    member_file::load_or_create(&config.state_dir)?;
    // The record is created locally, without the network (checked: a fresh node creates one in
    // under a millisecond, unattached); `ddcp serve` publishes its first value.
    let identity = super::new_record_identity(config)?;
    identity.save(&config.state_dir)?;
    db.bind_record(&identity.key)?;
    db.close()?;
    Ok(identity.key)
}
