//! Headless Chromium (Debian's `chromium`), driven over the DevTools protocol: the browser test
//! opens an app's pages, types and clicks in them as a person would, reads what they show and
//! keeps screenshots. One WebSocket to the browser; each page a session on it (flat mode).

use std::io::ErrorKind;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value as Json, json};
use tungstenite::{Message, WebSocket};

/// How long one DevTools call may take.
const CALL_DEADLINE: Duration = Duration::from_secs(30);

/// A running headless Chromium.
pub struct Browser {
    child: Child,
    socket: WebSocket<TcpStream>,
    next_id: u64,
    /// Its profile: removed with it.
    _profile: tempfile::TempDir,
}

/// A page (a tab) of the browser.
pub struct Page {
    session: String,
}

impl Browser {
    /// Starts Chromium with a fresh profile and connects to it.
    pub fn start() -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let child = Command::new("chromium")
            .args([
                "--headless",
                // Root in a test's namespace: Chromium's sandbox needs user namespaces of its own.
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--window-size=900,1100",
                "--remote-debugging-port=0",
                "about:blank",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromium runs (scripts/install-deps.sh installs Debian's chromium)");
        // Chromium writes the port it took, and its WebSocket's path, to this file.
        let port_file = profile.path().join("DevToolsActivePort");
        let (port, path) = super::private_net::wait_until(
            Duration::from_secs(60),
            "Chromium's DevToolsActivePort file",
            || {
                let text = std::fs::read_to_string(&port_file).ok()?;
                let mut lines = text.lines();
                Some((lines.next()?.to_string(), lines.next()?.to_string()))
            },
        );
        let stream = TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
        stream.set_read_timeout(Some(CALL_DEADLINE)).unwrap();
        let (socket, _) =
            tungstenite::client(format!("ws://127.0.0.1:{port}{path}"), stream).unwrap();
        Browser {
            child,
            socket,
            next_id: 0,
            _profile: profile,
        }
    }

    /// Opens `url` in a new page.
    pub fn open(&mut self, url: &str) -> Page {
        let target = self.call(None, "Target.createTarget", json!({ "url": url }));
        let attached = self.call(
            None,
            "Target.attachToTarget",
            json!({ "targetId": target["targetId"], "flatten": true }),
        );
        let page = Page {
            session: attached["sessionId"].as_str().unwrap().to_string(),
        };
        self.call(Some(&page), "Runtime.enable", json!({}));
        page
    }

    /// The value of the JavaScript `expression` in `page` (a promise's, once settled).
    pub fn eval(&mut self, page: &Page, expression: &str) -> Json {
        let answer = self.call(
            Some(page),
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
        );
        assert!(
            answer.get("exceptionDetails").is_none(),
            "{expression} threw: {}",
            answer["exceptionDetails"]
        );
        answer["result"]["value"].clone()
    }

    /// Waits until `expression` is true in `page`; panics with what `describe` says of the page
    /// after `within`.
    pub fn wait_until(&mut self, page: &Page, expression: &str, within: Duration, describe: &str) {
        let deadline = Instant::now() + within;
        while self.eval(page, expression) != Json::Bool(true) {
            assert!(
                Instant::now() < deadline,
                "{expression} was never true; the page showed: {}",
                self.eval(page, describe)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Saves what `page` shows as a PNG at `file`.
    pub fn screenshot(&mut self, page: &Page, file: &Path) {
        // A page behind another is not painted whole.
        self.call(Some(page), "Page.bringToFront", json!({}));
        let shot = self.call(
            Some(page),
            "Page.captureScreenshot",
            json!({ "format": "png" }),
        );
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        std::fs::write(file, png).unwrap();
    }

    /// Calls `method`, of the browser or of `page`'s session, and waits for its result (events
    /// on the way are let go).
    fn call(&mut self, page: Option<&Page>, method: &str, params: Json) -> Json {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(page) = page {
            message["sessionId"] = json!(page.session);
        }
        self.socket
            .send(Message::text(message.to_string()))
            .unwrap();
        let deadline = Instant::now() + CALL_DEADLINE;
        loop {
            assert!(Instant::now() < deadline, "{method} got no answer");
            let text = match self.socket.read() {
                Ok(Message::Text(text)) => text,
                Ok(_) => continue,
                Err(tungstenite::Error::Io(err))
                    if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                {
                    continue;
                }
                Err(err) => panic!("the DevTools connection failed during {method}: {err}"),
            };
            let answer: Json = serde_json::from_str(&text).unwrap();
            if answer["id"] != json!(id) {
                continue;
            }
            if let Some(error) = answer.get("error") {
                panic!("{method} failed: {error}");
            }
            return answer["result"].clone();
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.socket.close(None);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
