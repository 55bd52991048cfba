//! `ddcp clone BACKUP [DIR]`: a NEW peer from a copy of a database (`ddcp backup`'s file):
//! its rows and history, under a new site id and a record and keys of its own. Two databases
//! sharing a cr-sqlite site id corrupt each other's clocks at their peers, which is why a copied
//! file must not simply be served: this is the way to start from one.

use std::path::Path;

use serde::Serialize;

use super::CommandError;
use crate::config::Config;
use crate::db::{Db, copy_backup, read_backup, remove_database_files, rotate_site_id};
use crate::member_file;
use crate::sync::RecordKey;

#[derive(Serialize)]
struct CloneFileJson {
    key: String,
    site_id: String,
    from_site: String,
    db_version: i64,
}

/// Clones the backup at `file` into `config`'s database and state dir (made, and empty).
pub fn run(config: &Config, file: &Path, json: bool) -> Result<(), CommandError> {
    let made = make(config, file);
    let (key, db) = match made {
        Ok(made) => made,
        Err(err) => {
            remove_database_files(&config.db_file);
            let _ = std::fs::remove_file(config.state_dir.join("record"));
            return Err(err);
        }
    };
    let (site_id, db_version) = (db.site_id()?, db.db_version()?);
    let from_site = read_backup(file)?.site_id;
    db.close()?;
    tracing::info!(target: "ddcp", key = ?key.to_string(), %site_id, %from_site,
        "Cloned a backup into a new peer");
    if json {
        super::output::print_json(&CloneFileJson {
            key: key.reveal().to_string(),
            site_id: site_id.to_string(),
            from_site: from_site.to_string(),
            db_version: db_version.0,
        })?;
    } else {
        // As `ddcp init`: the new database's key, which its peers add.
        super::output::print_line(key.reveal())?;
    }
    Ok(())
}

fn make(config: &Config, file: &Path) -> Result<(RecordKey, Db), CommandError> {
    read_backup(file)?;
    member_file::load_or_create(&config.state_dir)?;
    copy_backup(file, &config.db_file)?;
    rotate_site_id(&config.db_file)?;
    let db = Db::open(&config.db_file, &config.extension)?;
    let identity = super::new_record_identity(config)?;
    identity.save(&config.state_dir)?;
    db.bind_record(&identity.key)?;
    Ok((identity.key, db))
}
