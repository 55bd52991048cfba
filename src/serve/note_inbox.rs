//! Notes from the remotes this database listens to (see `listeners` for the other side). Each
//! remote's actor opens a box with the remote's token (random, drawn once per remote while
//! serve runs: a restarted actor keeps it, so the remote's listen stays one), which its pulls
//! give the remote; a note that quotes the token goes to that actor, and any other note is
//! dropped (counted).
//!
//! A note is a hint and nothing more: the actor pulls as it would on seeing the remote's
//! Status, and checks what it pulls as always. Whoever sends notes can cost this node at most
//! one pull per note: while an actor has not taken its last note, newer ones replace it
//! rather than queue, and a note of a version already pulled is dropped by the actor.

use std::collections::HashMap;

use parking_lot::Mutex;
use ractor::{ActorId, ActorRef};
use tokio::sync::watch;

use super::remote::RemoteMsg;
use crate::metrics::{self, DbLabel, NoteOutcome};
use crate::sync::RecordKey;
use crate::sync::codec::decode_note;
use crate::sync::protocol::{ListenToken, Message, Note, SealedNote};

/// A note as it came: a public remote's as it is, a private one's sealed for this member (the
/// remote's actor opens it: it knows whether the remote is private, and its owner).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Noted {
    /// From a public remote.
    Open(Note),
    /// From a private remote.
    Sealed(SealedNote),
}

impl Noted {
    fn token(&self) -> ListenToken {
        match self {
            Noted::Open(note) => note.token,
            Noted::Sealed(sealed) => sealed.token,
        }
    }
}

struct NoteBox {
    actor: ActorRef<RemoteMsg>,
    /// The newest note the actor has not taken.
    pending: Option<Noted>,
}

/// The boxes, and this node's own route (where the remotes are asked to send notes).
#[derive(Default)]
pub struct NoteInbox {
    boxes: Mutex<HashMap<ListenToken, NoteBox>>,
    /// Each remote's token, by its record.
    tokens: Mutex<HashMap<[u8; 32], ListenToken>>,
    route: watch::Sender<Option<Vec<u8>>>,
    metrics: DbLabel,
}

impl std::fmt::Debug for NoteInbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoteInbox")
            .field("boxes", &self.boxes.lock().len())
            .finish()
    }
}

impl NoteInbox {
    /// No box yet, for the database whose metrics are labelled `metrics`.
    pub fn labelled(metrics: DbLabel) -> NoteInbox {
        NoteInbox {
            metrics,
            ..NoteInbox::default()
        }
    }

    /// The label of its database's metrics.
    pub fn metrics(&self) -> &DbLabel {
        &self.metrics
    }

    /// A box for the notes of `remote`, taken by `actor` (in place of an actor of the same
    /// remote before it); the token its pulls give.
    pub fn open(&self, remote: &RecordKey, actor: ActorRef<RemoteMsg>) -> ListenToken {
        let token = *self
            .tokens
            .lock()
            .entry(*remote.key())
            .or_insert_with(ListenToken::random);
        let note_box = NoteBox {
            actor,
            pending: None,
        };
        self.boxes.lock().insert(token, note_box);
        token
    }

    /// Closes the box of `token`, if `actor` still holds it (it stops).
    pub fn close(&self, token: &ListenToken, actor: ActorId) {
        let mut boxes = self.boxes.lock();
        if boxes
            .get(token)
            .is_some_and(|note_box| note_box.actor.get_id() == actor)
        {
            boxes.remove(token);
        }
    }

    /// Takes the note a peer sent (`bytes`, any bytes): its actor is told, unless it has not
    /// taken the last one yet (then this one replaces it).
    pub fn deliver(&self, bytes: &[u8]) -> NoteOutcome {
        let note = match decode_note(bytes) {
            Ok(Message::Note(note)) => Noted::Open(note),
            Ok(Message::SealedNote(sealed)) => Noted::Sealed(sealed),
            _ => return NoteOutcome::Malformed,
        };
        let mut boxes = self.boxes.lock();
        let token = note.token();
        let Some(note_box) = boxes.get_mut(&token) else {
            return NoteOutcome::Unknown;
        };
        if note_box.pending.replace(note).is_none()
            && note_box.actor.send_message(RemoteMsg::Noted).is_err()
        {
            // The actor is gone without closing its box (a failure skips its post_stop).
            boxes.remove(&token);
            return NoteOutcome::Unknown;
        }
        NoteOutcome::Taken
    }

    /// The note waiting for the actor of `token`, if any.
    pub fn take(&self, token: &ListenToken) -> Option<Noted> {
        self.boxes.lock().get_mut(token)?.pending.take()
    }

    /// This node's route changed: pulls from now on ask for notes on `blob`.
    pub fn set_route(&self, blob: Vec<u8>) {
        self.route.send_replace(Some(blob));
    }

    /// Where notes are to be sent, once this node has a route.
    pub fn route(&self) -> Option<Vec<u8>> {
        self.route.borrow().clone()
    }
}

/// Takes a note a peer sent, and counts it when it goes nowhere (the remote's actor counts
/// the ones it takes).
pub fn take_note(inbox: &NoteInbox, bytes: &[u8]) {
    match inbox.deliver(bytes) {
        NoteOutcome::Taken => {}
        outcome => metrics::note_received(&inbox.metrics, outcome),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use ractor::{Actor, ActorProcessingErr};

    use super::*;
    use crate::sync::codec::encode_message;
    use crate::sync::compress::Compression;
    use crate::sync::protocol::Message;
    use crate::sync::{DbVersion, Incarnation};

    /// Stands in for a remote's actor: counts the notes it is told of, and answers a pull
    /// (which, coming after them in its mailbox, says it has seen them all).
    struct Remote;

    impl Actor for Remote {
        type Msg = RemoteMsg;
        type State = Arc<AtomicUsize>;
        type Arguments = Arc<AtomicUsize>;

        async fn pre_start(
            &self,
            _myself: ActorRef<RemoteMsg>,
            told: Arc<AtomicUsize>,
        ) -> Result<Arc<AtomicUsize>, ActorProcessingErr> {
            Ok(told)
        }

        async fn handle(
            &self,
            _myself: ActorRef<RemoteMsg>,
            message: RemoteMsg,
            told: &mut Arc<AtomicUsize>,
        ) -> Result<(), ActorProcessingErr> {
            match message {
                RemoteMsg::Noted => {
                    told.fetch_add(1, Ordering::SeqCst);
                }
                RemoteMsg::PullNow(reply) => {
                    let _ = reply.send(Ok(Default::default()));
                }
                _ => {}
            }
            Ok(())
        }
    }

    fn note(token: ListenToken, version: i64) -> Vec<u8> {
        let note = Note {
            token,
            db_version: DbVersion(version),
            incarnation: Incarnation(1),
        };
        encode_message(&Message::Note(note), Compression::None)
    }

    /// How many notes `actor` was told of, once it handled everything sent before.
    async fn told(actor: &ActorRef<RemoteMsg>, count: &AtomicUsize) -> usize {
        ractor::call!(actor, RemoteMsg::PullNow).unwrap().unwrap();
        count.load(Ordering::SeqCst)
    }

    #[tokio::test]
    async fn a_note_tells_its_remote_once_until_taken_and_any_other_is_dropped() {
        let inbox = NoteInbox::default();
        let count = Arc::new(AtomicUsize::new(0));
        let (actor, _) = Actor::spawn(None, Remote, Arc::clone(&count))
            .await
            .unwrap();
        let remote: RecordKey = "A".repeat(43).parse().unwrap();
        let token = inbox.open(&remote, actor.clone());

        assert_eq!(inbox.deliver(&note(token, 5)), NoteOutcome::Taken);
        // Not taken yet: the next replaces it, and tells the actor nothing more.
        assert_eq!(inbox.deliver(&note(token, 6)), NoteOutcome::Taken);
        assert_eq!(told(&actor, &count).await, 1);
        // A token no remote gave, bytes that are no note, a request sent one way: dropped.
        assert_eq!(
            inbox.deliver(&note(ListenToken::random(), 7)),
            NoteOutcome::Unknown
        );
        assert_eq!(inbox.deliver(b"not a note"), NoteOutcome::Malformed);
        let request = encode_message(&Message::SchemaRequest, Compression::None);
        assert_eq!(inbox.deliver(&request), NoteOutcome::Malformed);
        assert_eq!(told(&actor, &count).await, 1);

        assert!(
            matches!(inbox.take(&token), Some(Noted::Open(note)) if note.db_version == DbVersion(6))
        );
        assert_eq!(inbox.take(&token), None);
        assert_eq!(inbox.deliver(&note(token, 8)), NoteOutcome::Taken);
        assert_eq!(told(&actor, &count).await, 2);

        // A restarted actor of the same remote keeps its token; the old one's close is not its.
        let (successor, _) = Actor::spawn(None, Remote, Arc::clone(&count))
            .await
            .unwrap();
        assert_eq!(inbox.open(&remote, successor.clone()), token);
        inbox.close(&token, actor.get_id());
        assert_eq!(inbox.deliver(&note(token, 9)), NoteOutcome::Taken);
        assert_eq!(told(&successor, &count).await, 3);
        inbox.close(&token, successor.get_id());
        assert_eq!(inbox.deliver(&note(token, 10)), NoteOutcome::Unknown);
        actor.stop(None);
        successor.stop(None);
    }
}
