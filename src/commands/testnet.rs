//! `ddcp testnet`: the plain nodes of a private Veilid network, until stopped.

use super::output::print_line;
use super::signals::stop_requested;
use super::{CommandError, block_on};
use crate::cli::TestnetArgs;
use crate::config::Config;
use crate::net::{TestNet, TestNetPlan};

/// The network key when none is given: any private network needs one, and a test network's
/// is no secret.
const DEFAULT_NETWORK_KEY: &str = "ddcp-testnet";

pub fn run(config: &Config, args: &TestnetArgs) -> Result<(), CommandError> {
    // The nodes' stores are throwaway unless the user names a place for them.
    let temporary = args
        .dir
        .is_none()
        .then(|| std::env::temp_dir().join(format!("ddcp-testnet-{}", std::process::id())));
    let dir = args
        .dir
        .clone()
        .or_else(|| temporary.clone())
        .unwrap_or_default();
    let plan = TestNetPlan {
        hosts: args.hosts.clone(),
        port: args.port,
        network_key: config
            .network
            .network_key
            .clone()
            .unwrap_or_else(|| DEFAULT_NETWORK_KEY.to_string()),
        dir,
    };
    let result = block_on(async {
        let testnet = TestNet::start(&plan).await?;
        let record = testnet.bootstrap_record().to_string();
        if let Some(path) = &args.record_file {
            write_atomically(path, &record).map_err(|source| CommandError::File {
                what: "cannot write",
                path: path.clone(),
                source,
            })?;
        }
        print_line(&record)?;
        tracing::info!(target: "ddcp", nodes = plan.hosts.len(), bootstrap = record, "Test network running");
        stop_requested().await;
        testnet.shutdown().await;
        Ok::<(), CommandError>(())
    });
    if let Some(dir) = temporary {
        let _ = std::fs::remove_dir_all(dir);
    }
    result?
}

/// Writes `text` so that a reader polling for the file never sees it half written.
fn write_atomically(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    let partial = path.with_extension("partial");
    std::fs::write(&partial, format!("{text}\n"))?;
    std::fs::rename(&partial, path)
}
