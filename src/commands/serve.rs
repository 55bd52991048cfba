//! `ddcp serve`: a [`Replicator`] (the supervision tree of `serve`), until Ctrl-C or SIGTERM.

use std::time::Duration;

use super::signals::stop_requested;
use super::{CommandError, block_on};
use crate::cli::ServeArgs;
use crate::config::Config;
use crate::embed::{ApiOptions, Replicator, ReplicatorOptions};

pub fn run(config: &Config, args: &ServeArgs) -> Result<(), CommandError> {
    let options = ReplicatorOptions {
        attach_timeout: Duration::from_secs(args.attach.attach_timeout),
        poll_interval: Duration::from_secs(args.poll_interval),
        api: args.api.map(|address| ApiOptions {
            address,
            app_dir: args.app.clone(),
        }),
    };
    let metrics_addr = args.metrics_addr;
    block_on(async move {
        if let Some(address) = metrics_addr {
            crate::metrics::install(address).map_err(CommandError::Serve)?;
            tracing::info!(target: "ddcp", "Serving metrics on http://{address}/metrics");
        }
        let mut replicator = Replicator::start(config, options).await?;
        let stopped = tokio::select! {
            _ = stop_requested() => None,
            stopped = replicator.stopped() => Some(stopped),
        };
        match stopped {
            Some(stopped) => Ok(stopped?),
            None => Ok(replicator.stop().await?),
        }
    })?
}
