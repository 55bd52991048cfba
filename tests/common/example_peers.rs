//! Peers made of the examples (examples/garbage_peer.rs, examples/stub_remotes.rs), run on
//! the private network beside ddcp's own processes.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::private_net::{NETWORK_KEY, TestNet, wait_until};

/// A hostile peer (examples/garbage_peer.rs) on `vtnode{host}`: publishes a Status, answers
/// every call with garbage of the given kind (`random` or `lying`).
pub struct GarbagePeer {
    _process: Running,
    pub key: String,
    _dir: tempfile::TempDir,
}

/// examples/garbage_peer on `vtnode{host}`, with `args` after its mode and state dir, its
/// stdout into `out`.
fn garbage_peer(net: &TestNet, dir: &Path, host: u8, args: &[&str], out: &Path) -> Running {
    example("garbage_peer", net, dir, host, args, out)
}

/// examples/`name` on `vtnode{host}`: `args[0]`, its state dir, the rest of `args`; its stdout
/// into `out`.
fn example(name: &str, net: &TestNet, dir: &Path, host: u8, args: &[&str], out: &Path) -> Running {
    let program = example_program(name);
    let child = Command::new(program)
        .arg(args[0])
        .arg(dir.join("state"))
        .args(&args[1..])
        .env("VEILID_BOOTSTRAP", net.bootstrap())
        .env("VEILID_NETWORK_KEY", NETWORK_KEY)
        .env("VEILID_LISTEN", format!("vtnode{host}:5150"))
        .env("RUST_LOG", "error")
        .stdout(std::fs::File::create(out).unwrap())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    Running(child)
}

/// The built examples/`name`, next to the test binaries' folder (target/debug/examples).
pub fn example_program(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let program = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name);
    assert!(
        program.exists(),
        "{} is missing: run `cargo build {}--examples` first (scripts/test.sh does)",
        program.display(),
        if cfg!(debug_assertions) {
            ""
        } else {
            "--release "
        }
    );
    program
}

/// An example's process, killed when its peer is dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl GarbagePeer {
    pub fn start(net: &TestNet, kind: &str, host: u8) -> GarbagePeer {
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("key");
        let process = garbage_peer(net, dir.path(), host, &[kind], &key_file);
        let key = wait_until(
            Duration::from_secs(120),
            "the garbage peer to publish",
            || {
                let key = std::fs::read_to_string(&key_file).ok()?;
                key.ends_with('\n').then(|| key.trim().to_string())
            },
        );
        GarbagePeer {
            _process: process,
            key,
            _dir: dir,
        }
    }
}

/// Many databases with nothing to give (examples/stub_remotes.rs), from one node on
/// `vtnode{host}`: their record keys.
pub struct StubRemotes {
    _process: Running,
    pub keys: Vec<String>,
    _dir: tempfile::TempDir,
}

impl StubRemotes {
    pub fn start(net: &TestNet, count: usize, host: u8) -> StubRemotes {
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("keys");
        let count_arg = count.to_string();
        let process = example(
            "stub_remotes",
            net,
            dir.path(),
            host,
            &[&count_arg],
            &key_file,
        );
        let keys = wait_until(
            Duration::from_secs(300),
            "the stub remotes to publish",
            || {
                let keys = std::fs::read_to_string(&key_file).ok()?;
                let whole = keys.ends_with('\n');
                let keys: Vec<String> = keys.lines().map(str::to_string).collect();
                (whole && keys.len() == count).then_some(keys)
            },
        );
        StubRemotes {
            _process: process,
            keys,
            _dir: dir,
        }
    }
}

/// A peer flooding a database with calls (examples/garbage_peer.rs `flood`) from `vtnode{host}`.
pub struct Flood {
    _process: Running,
    counts: PathBuf,
    _dir: tempfile::TempDir,
}

/// What a flood's calls got so far.
#[derive(Clone, Copy, Debug, Default)]
pub struct FloodCounts {
    pub answers: u64,
    pub busy: u64,
    pub failed: u64,
    /// Forged notes sent.
    pub notes: u64,
}

impl Flood {
    pub fn start(net: &TestNet, target_key: &str, host: u8) -> Flood {
        Flood::start_forging(net, target_key, None, host)
    }

    /// A flood that also sends forged notes to the database of `note_key`.
    pub fn start_forging(
        net: &TestNet,
        target_key: &str,
        note_key: Option<&str>,
        host: u8,
    ) -> Flood {
        let dir = tempfile::tempdir().unwrap();
        let counts = dir.path().join("counts");
        let mut args = vec!["flood", target_key];
        args.extend(note_key);
        let process = garbage_peer(net, dir.path(), host, &args, &counts);
        Flood {
            _process: process,
            counts,
            _dir: dir,
        }
    }

    /// A flood by a member of the private database at `target_key`, signing every call with
    /// the member identity in `member_file`.
    pub fn start_member(net: &TestNet, target_key: &str, member_file: &Path, host: u8) -> Flood {
        let dir = tempfile::tempdir().unwrap();
        let counts = dir.path().join("counts");
        let member_file = member_file.to_str().unwrap();
        let args = ["member_flood", target_key, member_file];
        let process = garbage_peer(net, dir.path(), host, &args, &counts);
        Flood {
            _process: process,
            counts,
            _dir: dir,
        }
    }

    /// The last counts it printed.
    pub fn counts(&self) -> FloodCounts {
        let text = std::fs::read_to_string(&self.counts).unwrap_or_default();
        let Some(line) = text.lines().last() else {
            return FloodCounts::default();
        };
        let field = |name: &str| {
            line.split(' ')
                .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
                .and_then(|value| value.parse().ok())
                .unwrap_or(0)
        };
        FloodCounts {
            answers: field("answers"),
            busy: field("busy"),
            failed: field("failed"),
            notes: field("notes"),
        }
    }
}
