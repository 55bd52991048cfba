//! Helpers shared by the integration tests: run the real `ddcp` binary in a scratch folder.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A scratch folder with its own database and state dir, and the ddcp binary to run there.
pub struct Site {
    pub dir: tempfile::TempDir,
}

/// What one ddcp run printed and how it ended.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Asserts success and returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "ddcp failed:\n{}", self.stderr);
        &self.stdout
    }

    /// Asserts failure with exactly one line on stderr, containing `needle`; returns the line.
    #[track_caller]
    pub fn fails_with(&self, needle: &str) -> &str {
        assert_ne!(self.code, 0, "ddcp succeeded; stdout:\n{}", self.stdout);
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "want one line on stderr, got:\n{}",
            self.stderr
        );
        assert!(lines[0].starts_with("error: "), "{}", lines[0]);
        assert!(
            lines[0].contains(needle),
            "want {needle:?} in {:?}",
            lines[0]
        );
        assert!(!self.stderr.contains("panicked"), "{}", self.stderr);
        assert!(!self.stderr.contains("internal error"), "{}", self.stderr);
        lines[0]
    }
}

impl Site {
    pub fn new() -> Site {
        Site {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// A folder `name` in `parent` (a hosted database's, for `ddcp serve --databases`).
    pub fn named_in(parent: &Path, name: &str) -> Site {
        Site {
            dir: tempfile::Builder::new()
                .prefix(name)
                .rand_bytes(0)
                .tempdir_in(parent)
                .unwrap(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn db_file(&self) -> PathBuf {
        self.path("ddcp.db")
    }

    /// A ddcp command in this site's folder, as a user would run it there.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ddcp"));
        command
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("DB_FILE")
            .env_remove("STATE_DIR")
            .env_remove("EXT_FILE")
            .env_remove("DDCP_DB_FILE")
            .env_remove("DDCP_STATE_DIR")
            .env_remove("DDCP_EXT_FILE")
            .env("RUST_LOG", "error,ddcp=info");
        command
    }

    /// Runs ddcp with `args` and `stdin`.
    pub fn run_with_input(&self, args: &[&str], stdin: &[u8]) -> Run {
        run_command(self.command(args), stdin)
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with_input(args, b"")
    }

    /// `ddcp shell -c SQL`, which must succeed; returns stdout.
    pub fn sql(&self, sql: &str) -> String {
        self.run(&["shell", "-c", sql]).ok().to_string()
    }

    /// A fresh database with the fixtures' bookmark schema.
    pub fn with_bookmarks() -> Site {
        let site = Site::new();
        site.run(&["init"]).ok();
        site.run_with_input(&["shell"], &fixture("cr_tables.sql"))
            .ok();
        site
    }
}

/// Runs `command` with `stdin`; what it printed and how it ended.
pub fn run_command(mut command: Command, stdin: &[u8]) -> Run {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    finish(child.wait_with_output().unwrap())
}

fn finish(output: Output) -> Run {
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Where tests keep what a person may want to look at afterwards (the browser test's
/// screenshots): `DDCP_TEST_ARTIFACTS`, or `test-artifacts` in cargo's target dir.
pub fn artifacts_dir() -> PathBuf {
    let dir = std::env::var_os("DDCP_TEST_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("../test-artifacts"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(name),
    )
    .unwrap()
}

/// The bytes of a file, to prove that a refused command wrote nothing.
pub fn snapshot(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_default()
}
pub mod baseline;
pub mod browser;
pub mod curl_lines;
pub mod example_peers;
pub mod metrics;
pub mod noise;
pub mod pages;
pub mod peers;
pub mod private_net;
pub mod process;
pub mod releases;
