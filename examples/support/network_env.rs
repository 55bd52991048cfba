//! The examples' network settings: from VEILID_* as for ddcp.

use ddcp::net::NetworkSettings;

/// VEILID_BOOTSTRAP, VEILID_NETWORK_KEY and VEILID_LISTEN, as `ddcp` reads them.
pub fn settings() -> NetworkSettings {
    let env = |name: &str| std::env::var(name).ok();
    NetworkSettings {
        bootstrap_records: env("VEILID_BOOTSTRAP").into_iter().collect(),
        network_key: env("VEILID_NETWORK_KEY"),
        listen: env("VEILID_LISTEN"),
    }
}
