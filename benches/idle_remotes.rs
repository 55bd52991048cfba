//! What `ddcp serve` costs while nothing happens, with many remotes all up to date, on a real
//! private Veilid network: A serves with no remote (the baseline, measured first), then fifty
//! remotes are added through its control socket (databases with nothing to give, served by one
//! node of examples/stub_remotes.rs, each its own record, site and route); once each was pulled
//! and watched, and its checks slowed to their quiet pace (`ddcp::serve::QUIET_AFTER`), A's CPU
//! over the same window is measured again: four minutes, the listen's renewal period, so that
//! each remote's periodic work falls in it as often as in the long run. Printed for both: the share of one
//! core, resident memory; with the remotes, the watches set on their records, the remotes
//! polled instead, and the pulls made while idle.
//!
//! Figures are printed, never asserted. `cargo bench --bench idle_remotes` runs full size;
//! `cargo test --benches` a small smoke (five remotes, five seconds).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::example_peers::StubRemotes;
use common::metrics::scrape;
use common::private_net::{Peer, TestNet, this_program_inside_private_network};
use common::process::{cpu_time, memory_kib};
use ddcp::serve::{LISTEN_RENEW, QUIET_AFTER};

/// A's metrics endpoint (inside the bench's own network namespace).
const METRICS_PORT: u16 = 9121;

/// Every remote is pulled and watched within this long, or the bench fails.
const SETTLED_WITHIN: Duration = Duration::from_secs(300);

/// After the last remote's first pull: the start-up's stragglers (the supervisor's first
/// health reports, Veilid's route tests) are left out of the window.
const SETTLE: Duration = Duration::from_secs(10);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !this_program_inside_private_network(&args) {
        return;
    }
    let full = args.iter().any(|arg| arg == "--bench");
    let (remotes, window, quiet) = if full {
        (50, LISTEN_RENEW, QUIET_AFTER + SETTLE)
    } else {
        (5, Duration::from_secs(5), SETTLE)
    };
    println!(
        "idle bench ({}): {remotes} remotes, {} s windows",
        if full { "full" } else { "smoke" },
        window.as_secs()
    );
    let net = TestNet::start();
    let stubs = StubRemotes::start(&net, remotes, 6);
    let mut a = Peer::new(&net, "a", 5);
    a.serve_with(&["--metrics-addr", &format!("127.0.0.1:{METRICS_PORT}")]);
    let pid = a.serve_pid();
    // Serving and attached: its status answers.
    common::private_net::wait_until(SETTLED_WITHIN, "a's serve to answer", || {
        (a.run(&["status"]).code == 0).then_some(())
    });
    std::thread::sleep(SETTLE);
    let alone = idle(pid, window);

    for (i, key) in stubs.keys.iter().enumerate() {
        a.run(&["remote", "add", &format!("r{:02}", i + 1), key])
            .ok();
    }
    let started = Instant::now();
    let names: Vec<String> = (1..=remotes).map(|i| format!("r{i:02}")).collect();
    common::private_net::wait_until(SETTLED_WITHIN, "every remote pulled and watched", || {
        let text = scrape(METRICS_PORT);
        names
            .iter()
            .all(|name| {
                let pulled = series(&text, "ddcp_pull_duration_seconds_count", name) >= 1.0;
                let watched = series(&text, "ddcp_remote_watches_total", name) >= 1.0
                    || series(&text, "ddcp_remote_polling", name) == 1.0;
                pulled && watched
            })
            .then_some(())
    });
    println!(
        "{remotes} remotes added; each pulled once and watched {:.1} s after the last was added",
        started.elapsed().as_secs_f64()
    );
    std::thread::sleep(quiet);
    let before = scrape(METRICS_PORT);
    let busy = idle(pid, window);
    let after = scrape(METRICS_PORT);
    let total = |text: &str, metric: &str| -> f64 {
        names.iter().map(|name| series(text, metric, name)).sum()
    };
    let pulls = total(&after, "ddcp_pull_duration_seconds_count")
        - total(&before, "ddcp_pull_duration_seconds_count");
    println!(
        "no remote: {:.2}% of a core, RSS {} MiB",
        alone.core_share * 100.0,
        alone.rss_kib / 1024
    );
    println!(
        "{remotes} remotes up to date: {:.2}% of a core (target < 2%), RSS {} MiB; {} watches set, {} remotes polled, {} pulls in the {} s",
        busy.core_share * 100.0,
        busy.rss_kib / 1024,
        total(&after, "ddcp_remote_watches_total"),
        total(&after, "ddcp_remote_polling"),
        pulls,
        window.as_secs()
    );
    println!(
        "  per remote: {:.3}% of a core, {} KiB",
        (busy.core_share - alone.core_share) * 100.0 / remotes as f64,
        busy.rss_kib.saturating_sub(alone.rss_kib) / remotes as u64
    );
    a.stop();
}

/// What a process spent over a window of doing nothing asked of it.
struct Idle {
    core_share: f64,
    rss_kib: u64,
}

fn idle(pid: u32, window: Duration) -> Idle {
    let before = cpu_time(pid);
    std::thread::sleep(window);
    let spent = cpu_time(pid) - before;
    Idle {
        core_share: spent.as_secs_f64() / window.as_secs_f64(),
        rss_kib: memory_kib(pid).0,
    }
}

/// The value of `metric{remote="name"}` in `text` (0 when absent).
fn series(text: &str, metric: &str, name: &str) -> f64 {
    common::metrics::sample(text, &format!("{metric}{{remote=\"{name}\"}}")).unwrap_or(0.0)
}
