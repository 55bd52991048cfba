//! One framing for both ends of the control socket: a little-endian u32 length, then that many
//! bytes of JSON. The daemon runs it on its side of the connection too (off the async runtime),
//! so the rules are written once.
//!
//! Why not tokio-util's `LengthDelimitedCodec`: it frames async streams only, and the CLI's end
//! is a blocking socket (most commands start no runtime); the codec would make the daemon's end
//! and the CLI's two framings to keep in step, where these forty lines are one.

use std::io::{Read, Write};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The largest frame either side accepts: a status of thousands of remotes fits.
pub const MAX_FRAME: usize = 4 << 20;

/// Writes `message` as one frame.
pub fn write_message(out: &mut impl Write, message: &impl Serialize) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(message).map_err(std::io::Error::other)?;
    if bytes.len() > MAX_FRAME {
        return Err(std::io::Error::other(format!(
            "a message of {} bytes is over the {MAX_FRAME}-byte frame limit",
            bytes.len()
        )));
    }
    out.write_all(&(bytes.len() as u32).to_le_bytes())?;
    out.write_all(&bytes)?;
    out.flush()
}

/// Reads one frame's message; a frame over [`MAX_FRAME`] is refused before it is read.
pub fn read_message<T: DeserializeOwned>(input: &mut impl Read) -> std::io::Result<T> {
    let mut len = [0; 4];
    input.read_exact(&mut len)?;
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(std::io::Error::other(format!(
            "a frame of {len} bytes is over the {MAX_FRAME}-byte limit"
        )));
    }
    let mut bytes = vec![0; len];
    input.read_exact(&mut bytes)?;
    serde_json::from_slice(&bytes)
        .map_err(|err| std::io::Error::new(std::io::ErrorKind::InvalidData, err.to_string()))
}

#[cfg(test)]
mod tests {
    use super::super::{ControlRequest, ControlResponse, PullOutcome, RemoteHealth};
    use super::*;

    fn round_trip<T: Serialize + DeserializeOwned>(message: &T) -> T {
        let mut bytes = Vec::new();
        write_message(&mut bytes, message).unwrap();
        read_message(&mut bytes.as_slice()).unwrap()
    }

    #[test]
    fn requests_and_answers_survive_the_wire_absent_fields_included() {
        for request in [
            ControlRequest::RemotesChanged,
            ControlRequest::AccessChanged,
            ControlRequest::Pull(None),
            ControlRequest::Pull(Some("alice".into())),
            // An empty name is a name, not "every remote".
            ControlRequest::Pull(Some(String::new())),
            ControlRequest::Health,
        ] {
            assert_eq!(round_trip(&request), request);
        }
        let health = RemoteHealth {
            name: "alice".into(),
            key: "VLD0:abc".into(),
            pulled_version: Some(0),
            remote_version: None,
            last_success: None,
            last_error: Some(String::new()),
            refused: 3,
            restarts: 2,
            running: true,
        };
        let outcome = PullOutcome {
            name: "bob".into(),
            pages: 2,
            changes: 40,
            refused: 1,
            remote_version: 9,
            applied: true,
            error: None,
        };
        for response in [
            ControlResponse::Done,
            ControlResponse::Pulled(vec![outcome]),
            ControlResponse::Health(vec![health]),
            ControlResponse::Error("no remote named \"x\"".into()),
        ] {
            assert_eq!(round_trip(&response), response);
        }
    }

    #[test]
    fn oversized_and_malformed_frames_are_refused() {
        let huge = ((MAX_FRAME + 1) as u32).to_le_bytes();
        let err = read_message::<ControlRequest>(&mut huge.as_slice()).unwrap_err();
        assert!(err.to_string().contains("over the"), "{err}");
        let mut garbage = 8u32.to_le_bytes().to_vec();
        garbage.extend_from_slice(b"garbage!");
        assert!(read_message::<ControlRequest>(&mut garbage.as_slice()).is_err());
        let short = 100u32.to_le_bytes();
        assert!(read_message::<ControlRequest>(&mut short.as_slice()).is_err());
    }
}
