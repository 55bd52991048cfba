//! `ddcp status`: what this database is and holds.

use serde::Serialize;

use super::CommandError;
use super::output::{print_json, print_line};
use super::remote::{RemoteJson, remotes_json};
use crate::config::Config;
use crate::db::Db;

#[derive(Serialize)]
struct StatusJson {
    db_file: String,
    site_id: String,
    db_version: i64,
    schema_fingerprint: String,
    crr_tables: Vec<String>,
    remotes: Vec<RemoteJson>,
}

pub fn run(config: &Config, json: bool) -> Result<(), CommandError> {
    let db = Db::open(&config.db_file, &config.extension)?;
    let status = StatusJson {
        db_file: config.db_file.display().to_string(),
        site_id: db.site_id()?.to_string(),
        db_version: db.db_version()?.0,
        schema_fingerprint: db.schema()?.fingerprint().to_string(),
        crr_tables: db.crr_tables()?,
        remotes: remotes_json(&db)?,
    };
    db.close()?;
    if json {
        print_json(&status)?;
        return Ok(());
    }
    print_line(format_args!("database:    {}", status.db_file))?;
    print_line(format_args!("site id:     {}", status.site_id))?;
    print_line(format_args!("db_version:  {}", status.db_version))?;
    print_line(format_args!("schema:      {}", status.schema_fingerprint))?;
    let tables = if status.crr_tables.is_empty() {
        "(none: make tables CRRs with `select crsql_as_crr('name')`)".to_string()
    } else {
        status.crr_tables.join(", ")
    };
    print_line(format_args!("crr tables:  {tables}"))?;
    if status.remotes.is_empty() {
        print_line("remotes:     (none)")?;
    } else {
        print_line("remotes:")?;
        for remote in &status.remotes {
            print_line(format_args!("  {}\t{}", remote.name, remote.key))?;
        }
    }
    Ok(())
}
