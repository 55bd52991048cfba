//! The control socket, as its daemon end reads a client's frames and its client end reads the
//! daemon's: any bytes must give a message or an error, never a panic, a hang or an unbounded
//! allocation. The framing and the messages are ddcp's own files, included as they are.

#![no_main]

use libfuzzer_sys::fuzz_target;

// At the crate's root, as siblings: `messages` names `super::watch`, as in ddcp.
#[allow(dead_code)]
#[path = "../../src/control/frame.rs"]
mod frame;
#[allow(dead_code)]
#[path = "../../src/control/messages.rs"]
mod messages;
#[allow(dead_code)]
#[path = "../../src/control/watch.rs"]
mod watch;

use frame::read_message;
use messages::{ControlRequest, ControlResponse};

fuzz_target!(|data: &[u8]| {
    // A connection's frames, one after another, as long as they read.
    let mut input = data;
    while let Ok(_request) = read_message::<ControlRequest>(&mut input) {}
    let mut input = data;
    while let Ok(response) = read_message::<ControlResponse>(&mut input) {
        // What the CLI prints of a watch's changes, too.
        if let ControlResponse::Changes(changes) = response {
            for change in &changes {
                let _ = change.line();
            }
        }
    }
});
