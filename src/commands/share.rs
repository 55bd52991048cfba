//! `ddcp share [filter flags]`: what every reader may have of this database. Filtered content
//! never leaves the machine: the answering side reads pages through the filter. A running
//! `ddcp serve` takes a change at once.

use serde::Serialize;

use super::CommandError;
use super::filter_args::filter_json;
use super::output::{print_json, print_line};
use crate::cli::ShareArgs;
use crate::config::Config;
use crate::db::FilterJson;

#[derive(Serialize)]
struct ShareJson {
    /// What every reader may have; `null` for everything.
    shares: Option<FilterJson>,
}

pub fn run(config: &Config, args: &ShareArgs) -> Result<(), CommandError> {
    let mut db = super::open_db(config)?;
    let mut shared = db.share_filter()?;
    if !args.filter.is_empty() {
        let wanted = args.filter.applied_to(&shared)?;
        db.set_share_filter(&wanted)?;
        shared = wanted;
        tracing::info!(target: "ddcp", shares = %shared, "Changed what this database shares");
        super::daemon::access_changed(config)?;
    }
    db.close()?;
    if args.json {
        print_json(&ShareJson {
            shares: filter_json(&shared),
        })?;
    } else {
        print_line(format_args!("shares: {shared}"))?;
    }
    Ok(())
}
