//! Tests on a private Veilid network: each test runs in a network namespace of its own
//! (scripts/netns.sh), with `ddcp testnet`'s plain nodes and one `ddcp` process per peer, as
//! users run them. Every wait is bounded; every process started is stopped on drop.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{Run, Site, fixture};

/// Set inside the namespace: the test body runs there.
const INSIDE: &str = "DDCP_TEST_IN_NETNS";

/// The private network's key.
pub const NETWORK_KEY: &str = "ddcp-tests";

/// One private network at a time: two cores do not carry two sets of Veilid nodes well.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The name libtest knows the calling test by: its path in the test binary, without the
/// crate, taken from the function the macro is expanded in (never written again by hand).
#[allow(unused_macros)]
macro_rules! this_test_name {
    () => {{
        fn here() {}
        $crate::common::private_net::test_name_of(std::any::type_name_of_val(&here))
    }};
}
#[allow(unused_imports)]
pub(crate) use this_test_name;

/// Runs the calling test inside a private network: true inside the network (run the body);
/// false outside, where the body already ran there, and passed. A test renamed cannot ask
/// for a name that matches nothing, and pass by running nothing.
#[allow(unused_macros)]
macro_rules! inside_private_network {
    () => {
        $crate::common::private_net::test_inside_private_network(
            $crate::common::private_net::this_test_name!(),
        )
    };
}
#[allow(unused_imports)]
pub(crate) use inside_private_network;

/// The path of the function whose type name is `here` (`crate::module::test::here`), without
/// the crate and the function: the name of the test it was declared in.
pub fn test_name_of(here: &'static str) -> &'static str {
    let path = here
        .strip_suffix("::here")
        .expect("test_name_of is given the type name of a function called `here`");
    path.split_once("::").map_or(path, |(_crate, name)| name)
}

/// Runs test `name` of this test binary inside a private network, as
/// [`inside_private_network!`] does for the calling test. Outside, the inner run must report
/// exactly one test run and passed, or this panics.
pub fn test_inside_private_network(name: &str) -> bool {
    if std::env::var_os(INSIDE).is_some() {
        return true;
    }
    let args = [name, "--exact", "--nocapture", "--test-threads=1"].map(String::from);
    let summary = run_inside_private_network(12, &args);
    assert_eq!(
        passed_tests(&summary),
        Some(1),
        "the run of {name:?} in its private network did not run exactly one test, \
         which passed; its summary: {summary:?}"
    );
    false
}

/// How many tests passed, from libtest's summary line (`test result: ok. 1 passed; ...`).
pub fn passed_tests(summary: &str) -> Option<usize> {
    let counts = summary.strip_prefix("test result: ok. ")?;
    counts.split_once(" passed;")?.0.parse().ok()
}

/// Runs this program again, with `args`, inside a private network. True inside; false
/// outside, where the inner run already ended, and succeeded.
pub fn this_program_inside_private_network(args: &[String]) -> bool {
    this_program_inside_private_network_of(12, args)
}

/// As [`this_program_inside_private_network`], with `nodes` addresses (vtnode1..vtnodeN).
pub fn this_program_inside_private_network_of(nodes: usize, args: &[String]) -> bool {
    if std::env::var_os(INSIDE).is_some() {
        return true;
    }
    run_inside_private_network(nodes, args);
    false
}

/// Runs this program with `args` in a private network of `nodes` addresses and waits for it;
/// panics unless it succeeded. Its output is passed on (through the test harness's capture)
/// and its last `test result:` line returned ("" when it printed none).
fn run_inside_private_network(nodes: usize, args: &[String]) -> String {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let netns = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/netns.sh");
    let mut inner = Command::new(netns)
        .args(["--nodes", &nodes.to_string()])
        .arg(std::env::current_exe().unwrap())
        .args(args)
        .env(INSIDE, "1")
        .stdout(Stdio::piped())
        .spawn()
        .expect("run scripts/netns.sh");
    let mut summary = String::new();
    for line in BufReader::new(inner.stdout.take().unwrap()).lines() {
        let line = line.expect("read the inner run's output");
        println!("{line}");
        if line.starts_with("test result:") {
            summary = line;
        }
    }
    let status = inner.wait().expect("wait for scripts/netns.sh");
    assert!(
        status.success(),
        "{args:?} failed in its private network (see above)"
    );
    summary
}

/// The network's plain nodes (vtnode1..vtnode4), a `ddcp testnet` process.
pub struct TestNet {
    process: Child,
    bootstrap: String,
    _dir: tempfile::TempDir,
}

impl TestNet {
    pub fn start() -> TestNet {
        let dir = tempfile::tempdir().unwrap();
        let record = dir.path().join("bootstrap");
        let log = std::fs::File::create(dir.path().join("testnet.log")).unwrap();
        let process = Command::new(env!("CARGO_BIN_EXE_ddcp"))
            .arg("testnet")
            .arg("--record-file")
            .arg(&record)
            .env("VEILID_NETWORK_KEY", NETWORK_KEY)
            .env("RUST_LOG", "error,ddcp=info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut net = TestNet {
            process,
            bootstrap: String::new(),
            _dir: dir,
        };
        wait_until(Duration::from_secs(30), "the test network to start", || {
            std::fs::read_to_string(&record).ok()
        });
        net.bootstrap = std::fs::read_to_string(&record).unwrap().trim().to_string();
        net
    }

    /// The record every node of this network bootstraps from.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// Settings for a node of the test process itself on `vtnode{host}` of this network.
    pub fn node_settings(&self, host: u8) -> ddcp::net::NetworkSettings {
        ddcp::net::NetworkSettings {
            bootstrap_records: vec![self.bootstrap.clone()],
            network_key: Some(NETWORK_KEY.to_string()),
            listen: Some(format!("vtnode{host}:5150")),
        }
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        stop(&mut self.process);
    }
}

/// A ddcp database on the network: its folder, and its `ddcp serve` while it runs.
pub struct Peer {
    pub name: &'static str,
    pub site: Site,
    host: String,
    bootstrap: String,
    serve: Option<Child>,
    /// Network settings come from STATE_DIR/network.conf, not the environment.
    settings_in_file: bool,
    /// The serve's log filter (`RUST_LOG`), when not serve's own default.
    pub log_filter: Option<String>,
}

impl Peer {
    /// A new database (with the fixtures' bookmark schema) for a peer on `vtnode{host}`.
    pub fn new(net: &TestNet, name: &'static str, host: u8) -> Peer {
        let peer = Peer::empty(net, name, host);
        peer.run(&["init"]).ok();
        peer.run_with_input(&["shell"], &fixture("cr_tables.sql"))
            .ok();
        peer
    }

    /// A new database (with the fixtures' bookmark schema) in the folder `parent/name`, as
    /// `ddcp serve --databases parent` hosts it; made on `vtnode{host}` (the host's, which is
    /// not serving yet).
    pub fn hosted_in(net: &TestNet, parent: &Path, name: &'static str, host: u8) -> Peer {
        let peer = Peer::hosted_empty(net, parent, name, host);
        peer.run(&["init"]).ok();
        peer.run_with_input(&["shell"], &fixture("cr_tables.sql"))
            .ok();
        peer
    }

    /// The empty folder `parent/name`, where `ddcp host add` makes a database.
    pub fn hosted_empty(net: &TestNet, parent: &Path, name: &'static str, host: u8) -> Peer {
        let mut peer = Peer::empty(net, name, host);
        peer.site = Site::named_in(parent, name);
        peer
    }

    /// A peer on `vtnode{host}` whose folder holds nothing yet (for `ddcp clone`).
    pub fn empty(net: &TestNet, name: &'static str, host: u8) -> Peer {
        Peer {
            name,
            site: Site::new(),
            host: format!("vtnode{host}:5150"),
            bootstrap: net.bootstrap.clone(),
            serve: None,
            settings_in_file: false,
            log_filter: None,
        }
    }

    /// This peer's record key, as `ddcp init` printed it.
    pub fn key(&self) -> String {
        self.run(&["addr"]).ok().trim().to_string()
    }

    /// A ddcp command for this peer, on the private network.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = self.site.command(args);
        if self.settings_in_file {
            command
                .env_remove("VEILID_BOOTSTRAP")
                .env_remove("VEILID_NETWORK_KEY")
                .env_remove("VEILID_LISTEN");
        } else {
            command
                .env("VEILID_BOOTSTRAP", &self.bootstrap)
                .env("VEILID_NETWORK_KEY", NETWORK_KEY)
                .env("VEILID_LISTEN", &self.host);
        }
        command
    }

    /// From now on, the network settings come from `.ddcp/network.conf`, as an operator
    /// would keep them.
    pub fn use_network_file(&mut self) {
        let text = format!(
            "# the private test network\nbootstrap = {}\nnetwork_key = {NETWORK_KEY}\nlisten = {}\n",
            self.bootstrap, self.host
        );
        std::fs::write(self.site.path(".ddcp/network.conf"), text).unwrap();
        self.settings_in_file = true;
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with_input(args, b"")
    }

    pub fn run_with_input(&self, args: &[&str], stdin: &[u8]) -> Run {
        super::run_command(self.command(args), stdin)
    }

    /// `ddcp shell -c SQL`, which must succeed; its output.
    pub fn sql(&self, sql: &str) -> String {
        self.run(&["shell", "-c", sql]).ok().to_string()
    }

    fn log_path(&self) -> PathBuf {
        self.site.path("serve.log")
    }

    /// Starts `ddcp serve` (its log appended to serve.log).
    pub fn serve(&mut self) {
        self.serve_with(&[]);
    }

    /// Starts `ddcp serve` with more options.
    pub fn serve_with(&mut self, options: &[&str]) {
        assert!(self.serve.is_none(), "{} serves already", self.name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let mut command = self.command(&[&["serve"], options].concat());
        // To see where a bench's time goes: DDCP_SERVE_LOG=error,ddcp=debug.
        if let Some(filter) = std::env::var("DDCP_SERVE_LOG")
            .ok()
            .or_else(|| self.log_filter.clone())
        {
            command.env("RUST_LOG", filter);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.serve = Some(child);
    }

    /// Stops `ddcp serve` as Ctrl-C does; it must exit cleanly.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.serve.take() {
            let status = stop(&mut child);
            assert!(
                status,
                "{}'s serve did not stop cleanly:\n{}",
                self.name,
                self.log()
            );
        }
    }

    /// The process id of the running `ddcp serve`.
    pub fn serve_pid(&self) -> u32 {
        self.serve.as_ref().expect("serving").id()
    }

    /// Kills `ddcp serve` without warning (kill -9).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.serve.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// What `ddcp serve` logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Waits until `sql` prints `expected` on this peer.
    #[track_caller]
    pub fn wait_for(&self, sql: &str, expected: &str, within: Duration) {
        let what = format!("{} to show {expected:?} for {sql}", self.name);
        let deadline = Instant::now() + within;
        loop {
            let run = self.run(&["shell", "-c", sql]);
            if run.code == 0 && run.stdout.trim() == expected {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "waited {within:?} for {what}; it shows {:?}\n--- {} serve log:\n{}",
                    run.stdout.trim(),
                    self.name,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Some(mut child) = self.serve.take() {
            stop(&mut child);
        }
        if std::thread::panicking() {
            eprintln!("--- {} serve log:\n{}", self.name, self.log());
        }
    }
}

/// Asks `child` to stop (SIGINT), waits at most a minute, then kills it. True when it exited
/// by itself with success.
pub fn stop(child: &mut Child) -> bool {
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return status.success();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}

/// A runtime for a test's own Veilid nodes, called from the test's thread (`block_on`).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Polls `probe` until it answers, at most `within`.
#[track_caller]
pub fn wait_until<T>(within: Duration, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < deadline, "waited {within:?} for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
