//! `ddcp id`: this database's member id, which a private database's owner adds as a member.

use serde::Serialize;

use super::CommandError;
use super::output::{print_json, print_line};
use crate::config::Config;
use crate::member_file;

#[derive(Serialize)]
struct IdJson {
    id: String,
}

pub fn run(config: &Config, json: bool) -> Result<(), CommandError> {
    // The identity of the database's own state dir: one given with another database is refused.
    // (A state dir without a database yet, as a `ddcp clone` refused by a private remote
    // leaves it, has an identity too.)
    if config.db_file.exists() {
        super::open_db(config)?.close()?;
    }
    let id = member_file::load_or_create(&config.state_dir)?
        .id()
        .to_string();
    if json {
        print_json(&IdJson { id })?;
    } else {
        print_line(id)?;
    }
    Ok(())
}
