//! The shell at a terminal: a real pseudo-terminal (util-linux `script`) between the test and
//! `ddcp shell`, answering each prompt only once it shows, as a person typing would.

mod common;

use std::io::{Read, Write};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::Site;

const PROMPT_WAIT: Duration = Duration::from_secs(20);

/// The terminal's output so far, without escape sequences and carriage returns.
fn clean(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC [ parameters final-letter
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else if c != '\r' {
            out.push(c);
        }
    }
    out
}

#[test]
fn the_prompt_edits_lines_continues_statements_and_keeps_history() {
    let site = Site::new();
    site.run(&["init"]).ok();
    let ddcp = env!("CARGO_BIN_EXE_ddcp");
    let mut child = std::process::Command::new("script")
        .args(["-qec", &format!("{ddcp} shell"), "/dev/null"])
        .current_dir(site.dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("util-linux `script` runs the shell on a pseudo-terminal");
    let mut stdout = child.stdout.take().unwrap();
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buffer) {
            if n == 0 || send.send(buffer[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut raw = Vec::new();
    let mut stdin = child.stdin.take().unwrap();
    let wait_for = |raw: &mut Vec<u8>, prompts: usize| {
        let deadline = Instant::now() + PROMPT_WAIT;
        while clean(raw).matches("> ").count() < prompts {
            let left = deadline.saturating_duration_since(Instant::now());
            match receive.recv_timeout(left) {
                Ok(bytes) => raw.extend(bytes),
                Err(_) => panic!("no prompt #{prompts}; terminal shows:\n{}", clean(raw)),
            }
        }
    };
    let lines = [
        "select 40 +",
        "2 as answer;",
        "select * from nope;",
        ".mode box",
        "select 'boxed' as how;",
        ".quit",
    ];
    // The continuation line shows its own prompt, so every line waits for one.
    for (index, line) in lines.iter().enumerate() {
        wait_for(&mut raw, index + 1);
        writeln!(stdin, "{line}").unwrap();
    }
    let status = child.wait().unwrap();
    while let Ok(bytes) = receive.recv_timeout(Duration::from_millis(200)) {
        raw.extend(bytes);
    }
    let screen = clean(&raw);
    assert!(status.success(), "{screen}");
    assert!(
        screen.contains("ddcp> select 40 +\n  ...> 2 as answer;\n42\n"),
        "{screen}"
    );
    // An error at the prompt is shown and the session goes on.
    assert!(
        screen.contains("error: line 1: no such table: nope"),
        "{screen}"
    );
    assert!(screen.contains("│ boxed │"), "{screen}");
    let history = std::fs::read_to_string(site.path(".ddcp/shell_history")).unwrap();
    assert!(history.contains("select 'boxed' as how;"), "{history}");
}

/// `bundle create -` on a terminal: a binary bundle would garble it; one line says what to do.
#[test]
fn a_bundle_is_not_written_to_a_terminal() {
    let site = Site::new();
    site.run(&["init"]).ok();
    let ddcp = env!("CARGO_BIN_EXE_ddcp");
    let output = std::process::Command::new("script")
        .args(["-qec", &format!("{ddcp} bundle create -"), "/dev/null"])
        .current_dir(site.dir.path())
        .env("RUST_LOG", "error,ddcp=info")
        .stdin(Stdio::null())
        .output()
        .expect("util-linux `script` runs ddcp on a pseudo-terminal");
    let shown = clean(&output.stdout);
    assert!(
        shown.contains("error: a bundle is binary: not written to a terminal"),
        "{shown}"
    );
    assert!(!shown.contains("DDCPBNDL"), "{shown}");
    // Redirected, it is written.
    site.run_with_input(&["shell"], &common::fixture("cr_tables.sql"))
        .ok();
    site.sql("insert into bookmarks (id, url) values ('a', 'https://a/')");
    let bytes = site
        .command(&["bundle", "create", "-"])
        .output()
        .unwrap()
        .stdout;
    assert!(bytes.starts_with(b"DDCPBNDL"));
}

/// Logs on a terminal are coloured, unless NO_COLOR is set (no-color.org).
#[test]
fn no_color_takes_the_colours_out_of_the_logs() {
    let site = Site::new();
    site.run(&["init"]).ok();
    let ddcp = env!("CARGO_BIN_EXE_ddcp");
    // Each run changes the access mode, which is logged at info.
    let on_terminal = |mode: &str, no_color: Option<&str>| {
        let mut command = std::process::Command::new("script");
        command
            .args(["-qec", &format!("{ddcp} access {mode}"), "/dev/null"])
            .current_dir(site.dir.path())
            .env("RUST_LOG", "error,ddcp=info")
            .env_remove("NO_COLOR")
            .stdin(Stdio::null());
        if let Some(value) = no_color {
            command.env("NO_COLOR", value);
        }
        let output = command.output().expect("util-linux `script`");
        String::from_utf8_lossy(&output.stdout).to_string()
    };
    let coloured = on_terminal("private", None);
    assert!(coloured.contains("Changed access"), "{coloured:?}");
    assert!(coloured.contains("\x1b["), "{coloured:?}");
    let plain = on_terminal("public", Some("1"));
    assert!(plain.contains("Changed access"), "{plain:?}");
    assert!(!plain.contains("\x1b["), "{plain:?}");
}
