//! `ddcp serve`: a [`Replicator`] (the supervision tree of `serve`), or with `--databases` a
//! [`Hosting`] of many, until Ctrl-C or SIGTERM.

use std::time::Duration;

use super::signals::stop_requested;
use super::{CommandError, block_on};
use crate::cli::ServeArgs;
use crate::config::Config;
use crate::embed::{ApiOptions, Replicator, ReplicatorOptions};
use crate::hosting::{HostOptions, Hosting};

pub fn run(config: &Config, args: &ServeArgs) -> Result<(), CommandError> {
    let metrics_addr = args.metrics_addr;
    block_on(async move {
        if let Some(address) = metrics_addr {
            crate::metrics::install(address).map_err(CommandError::Serve)?;
            tracing::info!(target: "ddcp", "Serving metrics on http://{address}/metrics");
        }
        match &args.databases {
            Some(dir) => host(config, args, dir).await,
            None => serve_one(config, args).await,
        }
    })?
}

async fn serve_one(config: &Config, args: &ServeArgs) -> Result<(), CommandError> {
    let options = ReplicatorOptions {
        attach_timeout: Duration::from_secs(args.attach.attach_timeout),
        poll_interval: Duration::from_secs(args.poll_interval),
        api: args.api.map(|address| ApiOptions {
            address,
            app_dir: args.app.clone(),
        }),
    };
    let mut replicator = Replicator::start(config, options).await?;
    let stopped = tokio::select! {
        _ = stop_requested() => None,
        stopped = replicator.stopped() => Some(stopped),
    };
    match stopped {
        Some(stopped) => Ok(stopped?),
        None => Ok(replicator.stop().await?),
    }
}

async fn host(
    config: &Config,
    args: &ServeArgs,
    dir: &std::path::Path,
) -> Result<(), CommandError> {
    let options = HostOptions {
        attach_timeout: Duration::from_secs(args.attach.attach_timeout),
        poll_interval: Duration::from_secs(args.poll_interval),
        network: config.network.clone(),
        extension: config.extension.clone(),
    };
    let mut hosting = Hosting::start(dir, options).await?;
    let stopped = tokio::select! {
        _ = stop_requested() => None,
        stopped = hosting.stopped() => Some(stopped),
    };
    match stopped {
        Some(stopped) => Ok(stopped?),
        None => Ok(hosting.stop().await?),
    }
}
