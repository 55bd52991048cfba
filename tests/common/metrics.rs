//! Reading a `ddcp serve`'s Prometheus endpoint, for tests and benches.

use std::io::{Read, Write};
use std::time::Duration;

/// GET /metrics from 127.0.0.1:`port`: the body.
pub fn scrape(port: u16) -> String {
    http_get(port, "/metrics")
}

/// GET `path` from 127.0.0.1:`port`: the body of a 200 answer. HTTP/1.0, so that a long answer
/// comes whole, never chunked.
pub fn http_get(port: u16, path: &str) -> String {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "{head}\n{body}"
    );
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{head}"
    );
    body.to_string()
}

/// The value of the sample named exactly `series` (name and labels as exposed).
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}
