//! `ddcp init`: a new ddcp database and its state directory.

use super::CommandError;
use crate::config::Config;
use crate::db::Db;

pub fn run(config: &Config) -> Result<(), CommandError> {
    // The state directory first: when it cannot be made, no database is left behind either;
    // and when the database cannot be made, a state directory made here goes again.
    let state_dir_existed = config.state_dir.exists();
    config
        .create_state_dir()
        .map_err(|source| CommandError::File {
            what: "cannot create state directory",
            path: config.state_dir.clone(),
            source,
        })?;
    let db = Db::create(&config.db_file, &config.extension).inspect_err(|_| {
        if !state_dir_existed {
            let _ = std::fs::remove_dir(&config.state_dir);
        }
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
