//! A streamed answer as curl receives it (an API subscription's NDJSON), line by line, each
//! awaited within a deadline; curl is stopped with it.

use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;

/// The lines of a running curl.
pub struct CurlLines {
    child: Child,
    lines: Receiver<String>,
}

impl CurlLines {
    /// Runs `curl` (a curl command, its arguments given) and reads its output's lines as
    /// they come.
    pub fn start(mut curl: Command) -> CurlLines {
        let mut child = curl.stdout(Stdio::piped()).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        CurlLines { child, lines }
    }

    /// The next line, as JSON, within `within`.
    pub fn next(&self, within: Duration) -> serde_json::Value {
        let line = self
            .lines
            .recv_timeout(within)
            .unwrap_or_else(|_| panic!("a line within {within:?}"));
        serde_json::from_str(&line).unwrap()
    }
}

impl Drop for CurlLines {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
