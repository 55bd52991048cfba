//! The arguments of the commands that join the Veilid network: `serve`, `pull`, `testnet`
//! (clap definitions only).

use std::path::PathBuf;

use clap::Args;

/// How long to wait for the Veilid node to be ready.
#[derive(Debug, Args)]
pub struct AttachArgs {
    /// Seconds to wait for the Veilid node to be ready to use the network.
    #[arg(long, default_value_t = 120, value_name = "SECONDS")]
    pub attach_timeout: u64,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub attach: AttachArgs,

    /// Serve Prometheus metrics on http://HOST:PORT/metrics (off by default).
    #[arg(long, env = "DDCP_METRICS_ADDR", value_name = "HOST:PORT")]
    pub metrics_addr: Option<std::net::SocketAddr>,

    /// Serve every database in DIR on one Veilid node: each in a folder of its own,
    /// DIR/NAME/ddcp.db with its state dir DIR/NAME/.ddcp (what `ddcp init` makes run inside
    /// DIR/NAME); the node's own state goes in DIR/.ddcp (docs/hosting.md). --db-file and
    /// --state-dir are not used.
    /// (Not read from DDCP_DATABASES, which `ddcp host` reads: a plain `ddcp serve` stays one
    /// database's.)
    #[arg(long, value_name = "DIR", conflicts_with = "api")]
    pub databases: Option<PathBuf>,

    /// Serve the HTTP API apps use on http://HOST:PORT (off by default; e.g. 127.0.0.1:7700).
    /// Every request needs the token `ddcp api-token` prints (docs/api.md).
    #[arg(long, env = "DDCP_API_ADDR", value_name = "HOST:PORT")]
    pub api: Option<std::net::SocketAddr>,

    /// Serve an app's static files from DIR at http://HOST:PORT/ beside the API (DIR needs an
    /// index.html; they are served without the token, so DIR must hold nothing secret).
    #[arg(long, env = "DDCP_APP_DIR", value_name = "DIR", requires = "api")]
    pub app: Option<PathBuf>,

    /// Seconds between polls of a remote whose record cannot be watched (watching is the
    /// normal way; polling is the fallback).
    #[arg(long, default_value_t = 30, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub poll_interval: u64,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// The remote to pull; all of them when left out.
    pub name: Option<String>,

    #[command(flatten)]
    pub attach: AttachArgs,

    /// Print a JSON report for scripts.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct TestnetArgs {
    /// Host names to run one node on each (each must resolve to an address of its own); the
    /// first is the bootstrap node.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "vtnode1,vtnode2,vtnode3,vtnode4"
    )]
    pub hosts: Vec<String>,

    /// The port every node listens on.
    #[arg(long, default_value_t = 5150)]
    pub port: u16,

    /// Where the nodes keep their stores (default: a temporary directory, removed at exit).
    #[arg(long)]
    pub dir: Option<PathBuf>,

    /// Also write the bootstrap record to this file (once the nodes are up).
    #[arg(long)]
    pub record_file: Option<PathBuf>,
}
