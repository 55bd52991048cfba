//! A RemoteActor's side of notes (the remote's side is `serve::listeners`): a note taken from
//! the inbox is opened (a private remote seals its notes for this member), and a version not
//! pulled yet is pulled at once; the remote is asked again for notes before its listen lapses.

use ractor::ActorProcessingErr;

use super::{LISTEN_RENEW, RemoteState};
use crate::metrics::{self, NoteOutcome};
use crate::serve::note_inbox::Noted;
use crate::sync::codec::decode_note;
use crate::sync::protocol::{Message, Note};
use crate::sync::seal::open_note;

impl RemoteState {
    /// Takes the note waiting in the inbox, if any: opened, it is pulled on; one that does not
    /// open is counted and dropped.
    pub(super) async fn take_note(&mut self) -> Result<(), ActorProcessingErr> {
        let Some(noted) = self.args.inbox.take(&self.token) else {
            return Ok(());
        };
        match self.open_note(noted) {
            Some(note) => {
                metrics::note_received(self.args.db.metrics(), NoteOutcome::Taken);
                self.noted(note).await
            }
            None => {
                metrics::note_received(self.args.db.metrics(), NoteOutcome::Unopened);
                tracing::debug!(target: "ddcp", remote_name = %self.args.link.name,
                    "A note that is not sealed as the remote's access says, or does not open");
                Ok(())
            }
        }
    }

    /// Whether the remote must be asked for notes again: its listen would lapse soon, or this
    /// node's route changed since.
    pub(super) fn listen_due(&self) -> bool {
        let Some(route) = self.args.inbox.route() else {
            return false;
        };
        self.listened
            .as_ref()
            .is_none_or(|(asked, on)| asked.elapsed() >= LISTEN_RENEW || *on != route)
    }

    /// The note in `noted`, if it is what the remote sends: a public remote's as it is, a
    /// private one's sealed for this member (a private remote's note in clear is refused: the
    /// token alone would let whoever learnt it tell this node).
    fn open_note(&self, noted: Noted) -> Option<Note> {
        let session = self.last_view.as_ref()?.session;
        match (noted, session) {
            (Noted::Open(note), None) => Some(note),
            (Noted::Sealed(sealed), Some(session)) => {
                let (me, key) = (&self.args.me, &self.args.link.key);
                let bytes = open_note(me, &session.owner, key, &sealed).ok()?;
                match decode_note(&bytes) {
                    Ok(Message::Note(note)) if note.token == sealed.token => Some(note),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// The remote sent a note: a version this database has not pulled is pulled at once, on
    /// the route last read (when that fails, the remote's Status is read afresh).
    async fn noted(&mut self, note: Note) -> Result<(), ActorProcessingErr> {
        tracing::debug!(target: "ddcp_latency", db_version = note.db_version.0, "note taken");
        let new = self.pulled.is_none_or(|(version, incarnation)| {
            note.db_version > version || note.incarnation != incarnation
        });
        if !new {
            return Ok(());
        }
        if let Some(mut view) = self.last_view.clone() {
            view.status.db_version = note.db_version;
            view.status.incarnation = note.incarnation;
            match self.sync(Some(view), false).await {
                Ok(_) => return Ok(()),
                Err(err) => {
                    tracing::debug!(target: "ddcp", remote_name = %self.args.link.name, error = %err,
                        "A pull on the remote's note failed: reading its status");
                    self.last_view = None;
                }
            }
        }
        self.sync(None, false).await.map(|_| ())
    }
}
