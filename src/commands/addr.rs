//! `ddcp addr`: this database's DHT record key, for peers' `ddcp remote add`.

use serde::Serialize;

use super::CommandError;
use super::output::{print_json, print_line};
use crate::config::Config;
use crate::net::RecordIdentity;

#[derive(Serialize)]
struct AddrJson {
    key: String,
}

pub fn run(config: &Config, json: bool) -> Result<(), CommandError> {
    let identity = RecordIdentity::load(&config.state_dir)?;
    // Only the database's own record: a state dir given with another database is refused.
    super::open_db(config)?.close()?;
    let key = identity.key.reveal().to_string();
    if json {
        print_json(&AddrJson { key })?;
    } else {
        print_line(key)?;
    }
    Ok(())
}
