//! What a node reports, in ddcp's terms: the rest of ddcp never sees a `VeilidUpdate`.

use veilid_core::{OperationId, VeilidUpdate};

use super::network::{RouteId, to_record_key};
use crate::sync::RecordKey;

/// A question from a peer, to be answered with [`super::Network::reply`].
#[derive(Debug)]
pub struct IncomingCall {
    /// Which call the answer is for.
    pub id: CallId,
    /// The question's bytes.
    pub message: Vec<u8>,
    /// The private route of this node's it came in on.
    pub route: Option<RouteId>,
}

/// Identifies an incoming call until it is answered.
#[derive(Clone, Copy, Debug)]
pub struct CallId(pub(super) OperationId);

/// Something the node noticed.
#[derive(Debug)]
pub enum NetEvent {
    /// A peer asks something.
    Call(IncomingCall),
    /// A peer sent something one way (a note): its bytes, at most one Veilid message.
    Message {
        /// The bytes.
        message: Vec<u8>,
        /// The private route of this node's it came in on.
        route: Option<RouteId>,
    },
    /// A watched record changed, or its watch ended.
    ValueChanged {
        /// The record.
        key: RecordKey,
        /// Subkey 0's new value, when the update carries it.
        value: Option<Vec<u8>>,
        /// The watch is over (expired, or its nodes left): renew it.
        watch_ended: bool,
    },
    /// Private routes died: this node's own (make and publish a new one) or peers' (read their
    /// status again for a fresh route).
    RoutesDied {
        /// This node's routes that died.
        own: Vec<RouteId>,
        /// Imported routes of peers that died.
        remote: Vec<RouteId>,
    },
    /// The node's attachment changed.
    Attachment {
        /// Attachment state, as Veilid names it.
        state: String,
        /// Whether the DHT and private routes are usable.
        ready: bool,
        /// Peers the node is talking to.
        peers: u64,
    },
}

/// The event an update means, if ddcp cares about it.
pub(super) fn translate(update: VeilidUpdate) -> Option<NetEvent> {
    match update {
        VeilidUpdate::AppCall(call) => Some(NetEvent::Call(IncomingCall {
            id: CallId(call.id()),
            message: call.message().to_vec(),
            route: call.route_id().cloned().map(RouteId),
        })),
        VeilidUpdate::AppMessage(message) => Some(NetEvent::Message {
            message: message.message().to_vec(),
            route: message.route_id().cloned().map(RouteId),
        }),
        VeilidUpdate::ValueChange(change) => {
            let key = to_record_key(&change.key)?;
            Some(NetEvent::ValueChanged {
                key,
                watch_ended: change.count == 0 || change.subkeys.is_empty(),
                value: change.value.map(|value| value.data().to_vec()),
            })
        }
        VeilidUpdate::RouteChange(change) => Some(NetEvent::RoutesDied {
            own: change.dead_routes.into_iter().map(RouteId).collect(),
            remote: change.dead_remote_routes.into_iter().map(RouteId).collect(),
        }),
        VeilidUpdate::Attachment(attachment) => Some(NetEvent::Attachment {
            state: format!("{:?}", attachment.state),
            ready: attachment.public_internet_ready,
            peers: u64::from(attachment.live_peer_count),
        }),
        _ => None,
    }
}
