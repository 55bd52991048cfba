//! The control socket's connections: accepted (a bounded number at once, failed accepts waited
//! out), their one question read and their answer written, with the CLI's own framing and
//! deadline. What a question is answered is the ControlActor's (`super`) or the host's.

use std::os::unix::net::UnixStream as StdUnixStream;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;

use crate::backoff::Backoff;
use crate::control::frame::{read_message, write_message};
use crate::control::{ControlRequest, ControlResponse, QUESTION_DEADLINE};

/// Connections answered at once; more wait in the socket's backlog.
const MAX_CONNECTIONS: usize = 16;
/// After a failed accept (out of file descriptors, say), the loop waits 0.1 s, twice as long
/// after each further failure, up to 5 s.
const ACCEPT_BACKOFF: Backoff =
    Backoff::doubling(Duration::from_millis(100), Duration::from_secs(5));

/// Where connections come from: the socket, or a test's stand-in.
pub(in crate::serve) trait Acceptor: Send + 'static {
    fn accept(&self) -> impl Future<Output = std::io::Result<UnixStream>> + Send;
}

impl Acceptor for UnixListener {
    async fn accept(&self) -> std::io::Result<UnixStream> {
        UnixListener::accept(self).await.map(|(stream, _)| stream)
    }
}

/// Accepts connections until the actor stops, handing each to `serve` (at most
/// [`MAX_CONNECTIONS`] at once). A failed accept is logged and tried again after a pause: the
/// socket must not go deaf while serve runs on.
pub(in crate::serve) async fn accept_forever<F, Fut>(acceptor: impl Acceptor, serve: F)
where
    F: Fn(UnixStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut backoff = ACCEPT_BACKOFF;
    loop {
        let slot = match Arc::clone(&slots).acquire_owned().await {
            Ok(slot) => slot,
            Err(_) => return,
        };
        match acceptor.accept().await {
            Ok(stream) => {
                backoff.reset();
                let connection = serve(stream);
                tokio::spawn(async move {
                    connection.await;
                    drop(slot);
                });
            }
            Err(err) => {
                let pause = backoff.failed();
                tracing::warn!(target: "ddcp", error = %err, retry_in = ?pause,
                    "Cannot accept a control connection");
                tokio::time::sleep(pause).await;
            }
        }
    }
}

/// A connection's one question, read by the same code as the CLI's, on a blocking thread; none
/// when the connection is another user's (dropped, logged).
pub(in crate::serve) async fn read_question(
    stream: UnixStream,
    owner: u32,
) -> std::io::Result<Option<(StdUnixStream, std::io::Result<ControlRequest>)>> {
    let peer = stream.peer_cred()?.uid();
    if peer != owner {
        tracing::warn!(target: "ddcp", uid = peer, "Refused a control connection from another user");
        return Ok(None);
    }
    let mut stream = stream.into_std()?;
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(QUESTION_DEADLINE))?;
    let read = tokio::task::spawn_blocking(move || {
        let question = read_message::<ControlRequest>(&mut stream);
        (stream, question)
    });
    Ok(Some(read.await?))
}

/// Writes the answer to a connection's question, on a blocking thread.
pub(in crate::serve) async fn write_answer(
    mut stream: StdUnixStream,
    response: ControlResponse,
) -> std::io::Result<()> {
    stream.set_write_timeout(Some(QUESTION_DEADLINE))?;
    tokio::task::spawn_blocking(move || write_message(&mut stream, &response)).await?
}

/// What a question that could not be read is answered, if anything.
pub(in crate::serve) fn unreadable(err: std::io::Error) -> std::io::Result<ControlResponse> {
    if err.kind() == std::io::ErrorKind::InvalidData {
        Ok(ControlResponse::Error(format!("malformed request: {err}")))
    } else {
        Err(err)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use tokio::time::Instant;

    use super::*;

    /// Fails its first `failures` accepts, then hands out one end of a socket pair per accept.
    struct Flaky {
        failures: Mutex<u32>,
        accepted: Mutex<Vec<std::os::unix::net::UnixStream>>,
    }

    impl Acceptor for Arc<Flaky> {
        async fn accept(&self) -> std::io::Result<UnixStream> {
            let fail = {
                let mut failures = self.failures.lock().unwrap();
                let fail = *failures > 0;
                *failures = failures.saturating_sub(1);
                fail
            };
            if fail {
                return Err(std::io::Error::other("too many open files"));
            }
            if !self.accepted.lock().unwrap().is_empty() {
                // One connection is enough; later accepts wait forever, as a quiet socket does.
                std::future::pending::<()>().await;
            }
            let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
            self.accepted.lock().unwrap().push(theirs);
            ours.set_nonblocking(true)?;
            UnixStream::from_std(ours)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn failed_accepts_are_waited_out_and_the_next_connection_is_served() {
        let flaky = Arc::new(Flaky {
            failures: Mutex::new(5),
            accepted: Mutex::new(Vec::new()),
        });
        let (served, mut connections) = tokio::sync::mpsc::unbounded_channel();
        let accepting = tokio::spawn(accept_forever(Arc::clone(&flaky), move |stream| {
            let served = served.clone();
            async move {
                let _ = served.send(stream);
            }
        }));
        let started = Instant::now();
        let connection = tokio::time::timeout(Duration::from_secs(60), connections.recv())
            .await
            .expect("the loop stopped accepting");
        assert!(connection.is_some());
        assert_eq!(*flaky.failures.lock().unwrap(), 0);
        // It paused after each failure, growing: 0.1 + 0.2 + 0.4 + 0.8 + 1.6 s (paused clock).
        assert!(
            started.elapsed() >= Duration::from_millis(3100),
            "{:?}",
            started.elapsed()
        );
        accepting.abort();
    }
}
