//! `ddcp init`: a new ddcp database and its state directory.

use super::CommandError;
use crate::config::Config;
use crate::db::Db;

pub fn run(config: &Config) -> Result<(), CommandError> {
    let db = Db::create(&config.db_file, &config.extension)?;
    config
        .create_state_dir()
        .map_err(|source| CommandError::File {
            what: "cannot create state directory",
            path: config.state_dir.clone(),
            source,
        })?;
    let site_id = db.site_id()?;
    db.close()?;
    // The DHT record that names this database on Veilid is registered here once the network
    // layer exists; its key is then printed as well.
    tracing::info!(
        target: "ddcp",
        db_file = %config.db_file.display(),
        site_id = %site_id,
        "Initialized ddcp database"
    );
    Ok(())
}
