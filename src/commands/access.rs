//! `ddcp access [public|private]`: who may read this database. Going private changes the
//! database's keys and route (what was published while public is left behind); a running
//! `ddcp serve` takes the change at once.

use serde::Serialize;

use super::CommandError;
use super::output::{print_json, print_line};
use crate::cli::{AccessArgs, AccessMode};
use crate::config::Config;
use crate::db::Access;

#[derive(Serialize)]
struct AccessJson {
    access: &'static str,
    epoch: u64,
    members: usize,
}

pub fn run(config: &Config, args: &AccessArgs) -> Result<(), CommandError> {
    let mut db = super::open_db(config)?;
    if let Some(mode) = args.mode {
        let access = match mode {
            AccessMode::Public => Access::Public,
            AccessMode::Private => Access::Private,
        };
        let before = db.access_state()?.epoch;
        if db.set_access(access)? {
            tracing::info!(target: "ddcp", access = access.as_str(), "Changed access");
            if access == Access::Private {
                let epoch = db.access_state()?.epoch;
                crate::removals_file::record_epoch(&config.state_dir, epoch, before)?;
            }
            super::daemon::access_changed(config)?;
        }
    }
    let state = db.access_state()?;
    db.close()?;
    if args.json {
        print_json(&AccessJson {
            access: state.access.as_str(),
            epoch: state.epoch.0,
            members: state.members.len(),
        })?;
    } else {
        print_line(state.access.as_str())?;
    }
    Ok(())
}
