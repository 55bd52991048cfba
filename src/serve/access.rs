//! The gate of a private database: which peers' requests are answered, and the sealing of its
//! answers and Status (crypto in `sync::seal`). The answering workers and the publisher share
//! one [`AccessGate`]; the supervisor updates it when the members or the access mode change.
//! A public database's gate lets every request through, as before private databases.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::db::{Access, AccessState, MemberName};
use crate::metrics::{self, DbLabel};
use crate::sync::codec::{decode_request, encode_message, encode_published, encode_status};
use crate::sync::compress::Compression;
use crate::sync::filter::ChangeFilter;
use crate::sync::protocol::{
    Authenticated, ErrorCode, Message, Note, ProtocolError, Published, Status,
};
use crate::sync::seal::{Refusal, check_request, member_seals, seal_answer, seal_note, seal_with};
use crate::sync::{Epoch, MemberId, MemberKeys, RecordKey};

/// A refused asker is logged at most once in this long: refusals are counted, not each logged.
const LOG_EVERY: Duration = Duration::from_secs(60);
/// Askers remembered for that, at most: an asker's claimed id costs this node nothing more.
const LOGGED_ASKERS: usize = 1024;

/// What becomes of a peer's request.
#[derive(Debug)]
pub enum Admission {
    /// A public database's request: answered as it is, with what the database shares.
    Open(Vec<u8>, Arc<ChangeFilter>),
    /// A member's request, checked: its inner request is answered with what that member may
    /// read, the answer sealed for it.
    Member(Box<Authenticated>, Arc<ChangeFilter>),
    /// Refused: this is the answer (`notAllowed`).
    Refused(Vec<u8>),
}

/// What an [`AccessGate::update`] changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Update {
    /// The access mode, the epoch or the members.
    pub changed: bool,
    /// The epoch (a member was removed, or the database went private): the route must change
    /// too.
    pub epoch_moved: bool,
}

/// Shared between the answering workers, the publisher and the supervisor.
#[derive(Clone)]
pub struct AccessGate {
    gate: Arc<RwLock<Gate>>,
    logged: Arc<Mutex<HashMap<Option<MemberId>, Instant>>>,
    metrics: DbLabel,
}

struct Gate {
    record: RecordKey,
    owner: MemberKeys,
    access: Access,
    epoch: Epoch,
    /// Each member's name, and what it may read (within what is shared with everyone).
    members: HashMap<MemberId, (MemberName, Arc<ChangeFilter>)>,
    /// What every reader may have.
    shared: Arc<ChangeFilter>,
    /// The members' seals of this epoch's Status key: one key agreement per member, so they
    /// are made when the members change, not at every publish.
    seals: Vec<Vec<u8>>,
    /// Moves with every update, so that the publisher knows its last Status is out of date.
    generation: u64,
}

impl std::fmt::Debug for AccessGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let gate = self.gate.read();
        f.debug_struct("AccessGate")
            .field("access", &gate.access)
            .field("epoch", &gate.epoch)
            .field("members", &gate.members.len())
            .finish()
    }
}

fn not_allowed(message: &str) -> Vec<u8> {
    let error = ProtocolError::new(ErrorCode::NotAllowed, message);
    encode_message(&Message::Error(error), Compression::None)
}

/// What every refused asker is told, whatever the reason: the reasons are this node's to count
/// (metric, log), not a stranger's to probe. A member refused because the key epoch moved on
/// reads the Status again and asks again.
const REFUSED: &str =
    "this database is private: ask as a member, with the key epoch of its current status";

impl AccessGate {
    /// The gate of the database whose record is `record`, owned by `owner`.
    pub fn new(record: RecordKey, owner: MemberKeys, state: AccessState) -> Self {
        let mut gate = Gate {
            record,
            owner,
            access: Access::Public,
            epoch: Epoch(0),
            members: HashMap::new(),
            shared: Arc::default(),
            seals: Vec::new(),
            generation: 0,
        };
        gate.set(state);
        AccessGate {
            gate: Arc::new(RwLock::new(gate)),
            logged: Arc::default(),
            metrics: DbLabel::default(),
        }
    }

    /// The gate, counting its refusals under the hosted database's label `metrics`.
    pub fn labelled(self, metrics: DbLabel) -> Self {
        AccessGate { metrics, ..self }
    }

    /// The label of its database's metrics.
    pub fn metrics(&self) -> &DbLabel {
        &self.metrics
    }

    /// Takes the access state read from the database: what changed.
    pub fn update(&self, state: AccessState) -> Update {
        // Updates replace whole fields: a panic cannot leave the gate half written.
        let mut gate = self.gate.write();
        let members = |gate: &Gate| {
            let mut ids: Vec<MemberId> = gate.members.keys().copied().collect();
            ids.sort_unstable();
            ids
        };
        let before = (gate.access, gate.epoch, members(&gate));
        gate.set(state);
        Update {
            changed: (gate.access, gate.epoch, members(&gate)) != before,
            epoch_moved: gate.epoch != before.1,
        }
    }

    /// `note` as sent to a listener that listened as `member`: as it is from a public
    /// database, sealed for the member from a private one; `None` when that listener may no
    /// longer be told.
    pub fn note_for(&self, member: Option<MemberId>, note: &Note) -> Option<Vec<u8>> {
        let gate = self.gate.read();
        let bytes = encode_message(&Message::Note(note.clone()), Compression::None);
        match (gate.access, member) {
            (Access::Public, _) => Some(bytes),
            (Access::Private, Some(member)) if gate.members.contains_key(&member) => {
                let sealed = seal_note(
                    &gate.owner,
                    &member,
                    &gate.record,
                    gate.epoch,
                    note.token,
                    &bytes,
                );
                Some(encode_message(
                    &Message::SealedNote(sealed),
                    Compression::None,
                ))
            }
            (Access::Private, _) => None,
        }
    }

    /// Whether a listener may be told of new versions: anyone of a public database, a current
    /// member of a private one.
    pub fn may_listen(&self, member: Option<MemberId>) -> bool {
        let gate = self.gate.read();
        match gate.access {
            Access::Public => true,
            Access::Private => member.is_some_and(|member| gate.members.contains_key(&member)),
        }
    }

    /// Changes with every update.
    pub fn generation(&self) -> u64 {
        self.gate.read().generation
    }

    /// Decides what becomes of `question`.
    pub fn admit(&self, question: Vec<u8>) -> Admission {
        let gate = self.gate.read();
        // Only a request's kinds are read: an answer's pages sent as a call are not inflated
        // before anyone checked who sent them.
        let request = match decode_request(&question) {
            Ok(Message::Authenticated(request)) => Some(request),
            _ => None,
        };
        let refusal = match (gate.access, request) {
            (Access::Public, None) => {
                return Admission::Open(question, Arc::clone(&gate.shared));
            }
            // A member still asks as it did while the database was private: have it read the
            // Status again.
            (Access::Public, Some(_)) => {
                return Admission::Refused(not_allowed("this database is public now"));
            }
            (Access::Private, None) => {
                self.log_refusal(None, "unauthenticated", None);
                return Admission::Refused(not_allowed(REFUSED));
            }
            (Access::Private, Some(request)) => {
                let is_member = |id: &MemberId| gate.members.contains_key(id);
                match check_request(&gate.record, gate.epoch, is_member, &request) {
                    Ok(()) => {
                        let reads = gate.members.get(&request.member).map_or_else(
                            || Arc::clone(&gate.shared),
                            |(_, reads)| Arc::clone(reads),
                        );
                        return Admission::Member(Box::new(request), reads);
                    }
                    Err(refusal) => (refusal, request.member),
                }
            }
        };
        let (refusal, asker) = refusal;
        // A member's name only when the asker proved it holds that member's key.
        let name = match refusal {
            Refusal::BadSignature => None,
            _ => gate.members.get(&asker).map(|(name, _)| name.clone()),
        };
        self.log_refusal(Some(asker), refusal.label(), name);
        Admission::Refused(not_allowed(REFUSED))
    }

    /// `answer` sealed for the member who asked `request`, if it still may have it: the answer
    /// took a moment to build, and the member may have been removed (or the database made
    /// public) meanwhile. Then the asker is refused as any other.
    pub fn seal(&self, request: &Authenticated, answer: &[u8]) -> Vec<u8> {
        let gate = self.gate.read();
        let still_allowed = gate.access == Access::Private
            && gate.epoch == request.epoch
            && gate.members.contains_key(&request.member);
        if !still_allowed {
            return not_allowed(REFUSED);
        }
        let sealed = seal_answer(&gate.owner, &gate.record, request, answer);
        encode_message(&Message::SealedAnswer(sealed), Compression::None)
    }

    /// What to write in the record for `status`: the Status itself, or sealed for the members.
    pub fn publishable(&self, status: &Status) -> Vec<u8> {
        let gate = self.gate.read();
        let status = Status {
            public_key: gate.owner.id().as_bytes().to_vec(),
            ..status.clone()
        };
        match gate.access {
            Access::Public => encode_status(&status),
            Access::Private => {
                let sealed = seal_with(
                    &gate.owner,
                    &gate.record,
                    gate.epoch,
                    gate.seals.clone(),
                    &encode_status(&status),
                );
                encode_published(&Published::Sealed(sealed))
            }
        }
    }

    /// Counts a refusal, and logs it unless this asker was logged within [`LOG_EVERY`].
    fn log_refusal(&self, asker: Option<MemberId>, reason: &'static str, name: Option<MemberName>) {
        metrics::refused(&self.metrics, reason);
        let mut logged = self.logged.lock();
        let now = Instant::now();
        if logged
            .get(&asker)
            .is_some_and(|last| now.duration_since(*last) < LOG_EVERY)
        {
            return;
        }
        if logged.len() >= LOGGED_ASKERS {
            logged.retain(|_, last| now.duration_since(*last) < LOG_EVERY);
            if logged.len() >= LOGGED_ASKERS {
                return;
            }
        }
        logged.insert(asker, now);
        // The id an asker claims is public (and may not be its own when the signature failed).
        let claimed_id = asker.map_or_else(|| "none".to_string(), |id| id.to_string());
        let member = name.as_ref().map(MemberName::as_str);
        tracing::warn!(target: "ddcp", claimed_id, member, reason,
            "Refused a request to this private database (logged at most once a minute per asker)");
    }
}

impl Gate {
    fn set(&mut self, state: AccessState) {
        self.access = state.access;
        self.epoch = state.epoch;
        let shared = state.shared;
        self.members = state
            .members
            .into_iter()
            .map(|member| {
                let reads = Arc::new(shared.and(&member.reads));
                (member.id, (member.name, reads))
            })
            .collect();
        self.shared = Arc::new(shared);
        let ids: Vec<MemberId> = self.members.keys().copied().collect();
        self.seals = match self.access {
            Access::Private => member_seals(&self.owner, &self.record, self.epoch, &ids),
            Access::Public => Vec::new(),
        };
        self.generation += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Member;
    use crate::sync::codec::decode_message;
    use crate::sync::codec::decode_published;
    use crate::sync::seal::{authenticate, open_answer, open_status};
    use crate::sync::{DbVersion, SchemaFingerprint, SiteId};

    fn record() -> RecordKey {
        "VLD0:73iT7NuqplS2nab1AH4P7lJYiQROR_k4NyUhag_K4DY"
            .parse()
            .unwrap()
    }

    fn private_with(member: &MemberKeys, epoch: u64) -> AccessState {
        AccessState {
            access: Access::Private,
            epoch: Epoch(epoch),
            members: vec![Member {
                name: "bob".parse().unwrap(),
                id: member.id(),
                added_at: 0,
                reads: bobs_filter(),
            }],
            shared: shared_filter(),
        }
    }

    fn bobs_filter() -> ChangeFilter {
        crate::commands::filter_args::FilterFlags {
            tables: Some("bookmarks,tags"),
            ..Default::default()
        }
        .applied_to(&ChangeFilter::default())
        .unwrap()
    }

    fn shared_filter() -> ChangeFilter {
        crate::commands::filter_args::FilterFlags {
            exclude_tables: Some("tags"),
            ..Default::default()
        }
        .applied_to(&ChangeFilter::default())
        .unwrap()
    }

    fn refusal_of(admission: Admission) -> ProtocolError {
        let Admission::Refused(answer) = admission else {
            panic!("not refused");
        };
        match decode_message(&answer).unwrap() {
            Message::Error(error) => error,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_private_gate_answers_members_only_and_seals_for_them() {
        let owner = MemberKeys::generate();
        let bob = MemberKeys::generate();
        let carol = MemberKeys::generate();
        let gate = AccessGate::new(record(), owner.clone(), private_with(&bob, 1));
        let question = b"a request".to_vec();

        let plain = refusal_of(gate.admit(question.clone()));
        assert_eq!(plain.code, ErrorCode::NotAllowed);
        let carols = authenticate(&carol, &record(), Epoch(1), question.clone());
        let carols = encode_message(&Message::Authenticated(carols), Compression::None);
        assert_eq!(refusal_of(gate.admit(carols)).code, ErrorCode::NotAllowed);

        let bobs = authenticate(&bob, &record(), Epoch(1), question.clone());
        let wire = encode_message(&Message::Authenticated(bobs.clone()), Compression::None);
        let Admission::Member(admitted, reads) = gate.admit(wire.clone()) else {
            panic!("bob refused");
        };
        assert_eq!(admitted.request, question);
        // Bob reads what he may within what the database shares.
        assert_eq!(*reads, shared_filter().and(&bobs_filter()));
        let sealed = gate.seal(&admitted, b"the answer");
        let Message::SealedAnswer(sealed) = decode_message(&sealed).unwrap() else {
            panic!("not sealed");
        };
        let opened = open_answer(&bob, &owner.id(), &record(), &bobs, &sealed).unwrap();
        assert_eq!(opened, b"the answer");

        // Bob removed while his answer was being built: it is not sealed for him.
        let update = gate.update(AccessState {
            access: Access::Private,
            epoch: Epoch(2),
            members: Vec::new(),
            shared: ChangeFilter::default(),
        });
        assert!(update.changed && update.epoch_moved);
        let again = gate.update(AccessState {
            access: Access::Private,
            epoch: Epoch(2),
            members: Vec::new(),
            shared: ChangeFilter::default(),
        });
        assert!(!again.changed && !again.epoch_moved);
        let late = gate.seal(&admitted, b"the answer");
        assert!(matches!(
            decode_message(&late).unwrap(),
            Message::Error(ProtocolError {
                code: ErrorCode::NotAllowed,
                ..
            })
        ));
        // And his earlier request, replayed, is refused.
        assert_eq!(refusal_of(gate.admit(wire)).code, ErrorCode::NotAllowed);
    }

    #[test]
    fn the_published_status_is_sealed_while_private() {
        let owner = MemberKeys::generate();
        let bob = MemberKeys::generate();
        let gate = AccessGate::new(record(), owner.clone(), private_with(&bob, 1));
        let status = Status {
            site_id: SiteId([1; 16]),
            db_version: DbVersion(7),
            schema_fingerprint: SchemaFingerprint([2; 32]),
            route: vec![3; 100],
            public_key: Vec::new(),
            incarnation: crate::sync::Incarnation(5),
            history: Default::default(),
        };
        let bytes = gate.publishable(&status);
        let Published::Sealed(sealed) = decode_published(&bytes).unwrap() else {
            panic!("open while private");
        };
        let inner = open_status(&bob, &record(), &sealed).unwrap();
        let opened = crate::sync::codec::decode_status(&inner).unwrap();
        assert_eq!(opened.route, status.route);
        assert_eq!(opened.public_key, owner.id().as_bytes());

        gate.update(AccessState {
            access: Access::Public,
            epoch: Epoch(1),
            members: Vec::new(),
            shared: ChangeFilter::default(),
        });
        assert!(matches!(
            decode_published(&gate.publishable(&status)).unwrap(),
            Published::Open(_)
        ));
    }
}
