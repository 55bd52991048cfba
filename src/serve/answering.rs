//! Peers' calls, answered with bounded work. Askers are not authenticated and may call as fast
//! as they like; what a flood can cost this node is bounded:
//! - a private database's [`AccessGate`] refuses what is not a member's request as it comes,
//!   before it waits or the database is asked anything;
//! - at most [`MAX_WAITING`] calls wait (each at most one 32 KiB message), in a [`CallQueue`]
//!   that refuses a random waiter when full (answered `tooBusy` at once: a puller backs off and
//!   asks again) and answers in random order, so an honest asker's call is not starved by
//!   callers that re-ask faster; a member of a private database holds at most
//!   [`MAX_WAITING_PER_MEMBER`] places, and answers go to the askers waiting in turn, so a
//!   member that floods takes neither another member's places nor its turns;
//! - [`ANSWER_WORKERS`] calls are answered at a time, by the DbActor;
//! - while the queue is half full or more, a page is built within [`LOADED_PAGE_BUDGET`]
//!   rather than the asker's budget: every answer stays cheap, so the queue moves (one honest
//!   puller's burst of fragment requests does not count as load);
//! - a call that waited past the asker's patience is dropped unbuilt.
//!
//! A request for changes that asks to be told of new versions (`listen`) is taken into the
//! [`Listeners`] before it is answered: a version that comes while its page is built is told.

use std::sync::Arc;

use parking_lot::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::access::{AccessGate, Admission};
use super::call_queue::{Asker, CallQueue};
use super::listeners::Listeners;
use crate::db_actor::DbHandle;
use crate::metrics::{self, DbLabel, ShedReason};
use crate::net::{CallId, IncomingCall, Network};
use crate::sync::codec::{decode_request, encode_message};
use crate::sync::compress::Compression;
use crate::sync::filter::ChangeFilter;
use crate::sync::protocol::{Authenticated, ChangesRequest, Message};
use crate::sync::serve::too_busy_answer;

/// Calls that wait for an answer, at most. Below what Veilid itself lets in at once (each call
/// holds one of its RPC workers, 16 per core, until answered), so that a flood meets this
/// queue's fairness and is told `tooBusy`, rather than filling Veilid's own first-come queue;
/// above the 8 fragment requests an honest puller sends at once.
pub const MAX_WAITING: usize = 16;

/// Places in the queue one member of a private database may hold: the 8 fragment requests an
/// honest puller sends at once. A member that floods is refused its own calls past them.
pub const MAX_WAITING_PER_MEMBER: usize = 8;

/// Calls answered at a time. The DbActor builds one answer at a time anyway; a second keeps it
/// busy while the first answer travels.
pub const ANSWER_WORKERS: usize = 2;

/// The page budget while the queue is half full: a page of this many bytes of changes takes the
/// database milliseconds, where a full 4 MiB page takes it a good part of a second.
pub const LOADED_PAGE_BUDGET: u32 = 64 << 10;

/// Veilid gives a callee 5 s to answer; the database gets most of it. A call older than this
/// has an asker that gave up: its answer would be built for nobody.
const ANSWER_BOUND: Duration = Duration::from_millis(4000);

/// A call let in by the gate, waiting for its answer.
struct Waiting {
    id: CallId,
    question_len: usize,
    admitted: Admitted,
    since: Instant,
}

/// What the gate made of a call it let in.
struct Admitted {
    /// The request to answer (a member's, unwrapped).
    question: Vec<u8>,
    /// The member's request, whose answer is sealed for it (its inner request moved out, to
    /// `question`).
    member: Option<Box<Authenticated>>,
    /// What the asker may read.
    reads: Arc<ChangeFilter>,
    /// The gate's generation it was let in under: a call that waited while the access changed
    /// (a member removed, its filter narrowed, the database made private) is let in again.
    generation: u64,
}

impl Admitted {
    /// Asks `gate` about `call`: who asked and what was let in, or the refusal to answer.
    fn by(gate: &AccessGate, call: Vec<u8>) -> Result<(Asker, Admitted), Vec<u8>> {
        let generation = gate.generation();
        let (asker, question, member, reads) = match gate.admit(call) {
            Admission::Open(question, reads) => (Asker::Anyone, question, None, reads),
            Admission::Member(mut request, reads) => (
                Asker::Member(request.member),
                std::mem::take(&mut request.request),
                Some(request),
                reads,
            ),
            Admission::Refused(answer) => return Err(answer),
        };
        let admitted = Admitted {
            question,
            member,
            reads,
            generation,
        };
        Ok((asker, admitted))
    }

    /// The call as it came, to be let in again.
    fn call(&self) -> Vec<u8> {
        match &self.member {
            None => self.question.clone(),
            Some(request) => {
                let request = Authenticated {
                    request: self.question.clone(),
                    ..(**request).clone()
                };
                encode_message(&Message::Authenticated(request), Compression::None)
            }
        }
    }
}

/// Takes peers' calls and answers them through the DbActor, within the bounds above.
pub struct Answerer {
    queue: Arc<Mutex<CallQueue<Waiting>>>,
    ready: Arc<Notify>,
    network: Network,
    gate: AccessGate,
    workers: Vec<JoinHandle<()>>,
    metrics: DbLabel,
}

impl std::fmt::Debug for Answerer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answerer")
            .field("waiting", &self.queue.lock().len())
            .finish_non_exhaustive()
    }
}

impl Answerer {
    /// Starts answering calls from `db`'s database over `network`, through `gate`; the
    /// askers who listen join `listeners`.
    pub fn start(db: DbHandle, network: Network, gate: AccessGate, listeners: Listeners) -> Self {
        let queue = Arc::new(Mutex::new(CallQueue::randomized(
            MAX_WAITING,
            MAX_WAITING_PER_MEMBER,
        )));
        let ready = Arc::new(Notify::new());
        let metrics = db.metrics().clone();
        let workers = (0..ANSWER_WORKERS)
            .map(|_| {
                let worker = Worker {
                    queue: Arc::clone(&queue),
                    ready: Arc::clone(&ready),
                    db: db.clone(),
                    network: network.clone(),
                    gate: gate.clone(),
                    listeners: listeners.clone(),
                };
                tokio::spawn(worker.run())
            })
            .collect();
        Answerer {
            queue,
            ready,
            network,
            gate,
            workers,
            metrics,
        }
    }

    /// Takes one call: refused at once when the gate refuses it, else into the queue; the call
    /// pushed out of a full queue (or of its member's share), if any, is told `tooBusy` before
    /// this returns.
    pub async fn take(&self, call: IncomingCall) {
        let question_len = call.message.len();
        // The gate checks a member's signature here, so that the queue knows whose share a
        // call counts in: nobody can spend another member's places.
        let (asker, admitted) = match Admitted::by(&self.gate, call.message) {
            Ok(admitted) => admitted,
            Err(refusal) => {
                reply(&self.network, &self.metrics, call.id, question_len, refusal).await;
                return;
            }
        };
        let waiting = Waiting {
            id: call.id,
            question_len,
            admitted,
            since: Instant::now(),
        };
        let refused = {
            let mut queue = self.queue.lock();
            if queue.is_full() || queue.holds_share(asker) {
                // Calls whose askers gave up go first: a full queue (or a member's full share)
                // refuses a live call only when it holds nothing but live ones.
                let expired = queue.remove_where(|waiting| waiting.since.elapsed() >= ANSWER_BOUND);
                for _ in expired {
                    metrics::shed(&self.metrics, ShedReason::Expired);
                }
            }
            queue.push(asker, waiting)
        };
        self.ready.notify_one();
        if let Some(refused) = refused {
            metrics::shed(&self.metrics, ShedReason::Busy);
            let answer = self.network.reply(refused.id, too_busy_answer()).await;
            if let Err(err) = answer {
                tracing::debug!(target: "ddcp", error = %err, "Cannot answer a call");
            }
        }
    }
}

impl Drop for Answerer {
    fn drop(&mut self) {
        for worker in &self.workers {
            worker.abort();
        }
    }
}

struct Worker {
    queue: Arc<Mutex<CallQueue<Waiting>>>,
    ready: Arc<Notify>,
    db: DbHandle,
    network: Network,
    gate: AccessGate,
    listeners: Listeners,
}

impl Worker {
    async fn run(self) {
        loop {
            // Registered before the queue is looked at, so that a call taken in between wakes
            // this worker rather than only the other one.
            let notified = self.ready.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            let next = self.queue.lock().take();
            let Some((waiting, still_waiting)) = next else {
                notified.await;
                continue;
            };
            let left = ANSWER_BOUND.saturating_sub(waiting.since.elapsed());
            if left.is_zero() {
                metrics::shed(self.db.metrics(), ShedReason::Expired);
                continue;
            }
            let budget = (still_waiting >= MAX_WAITING / 2).then_some(LOADED_PAGE_BUDGET);
            self.answer(waiting, budget, left).await;
        }
    }

    async fn answer(&self, waiting: Waiting, budget: Option<u32>, within: Duration) {
        let Waiting {
            id,
            question_len,
            admitted,
            ..
        } = waiting;
        let admitted = match admitted.generation == self.gate.generation() {
            true => admitted,
            false => match Admitted::by(&self.gate, admitted.call()) {
                Ok((_, admitted)) => admitted,
                Err(refusal) => {
                    return reply(&self.network, self.db.metrics(), id, question_len, refusal)
                        .await;
                }
            },
        };
        let Admitted {
            question,
            member,
            reads,
            ..
        } = admitted;
        // Read before the DbActor takes the question (a request is a few hundred bytes), and
        // taken before the page is built.
        if let Ok(Message::ChangesRequest(ChangesRequest {
            listen: Some(listen),
            ..
        })) = decode_request(&question)
        {
            let member = member.as_ref().map(|request| request.member);
            self.listeners.listen(listen, member, Instant::now());
        }
        match self.db.answer(question, budget, reads, within).await {
            Some(answer) => {
                let answer = match &member {
                    Some(request) => self.gate.seal(request, &answer),
                    None => answer,
                };
                metrics::traffic(self.db.metrics(), question_len, answer.len());
                if let Err(err) = self.network.reply(id, answer).await {
                    tracing::debug!(target: "ddcp", error = %err, "Cannot answer a call");
                }
            }
            // No answer in time: the asker has given up, and asks again.
            None => tracing::debug!(target: "ddcp", "The database did not answer a peer in time"),
        }
    }
}

/// Sends a refusal the gate made.
async fn reply(network: &Network, db: &DbLabel, id: CallId, question_len: usize, refusal: Vec<u8>) {
    metrics::traffic(db, question_len, refusal.len());
    if let Err(err) = network.reply(id, refusal).await {
        tracing::debug!(target: "ddcp", error = %err, "Cannot answer a call");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{Access, AccessState, Member};
    use crate::sync::seal::authenticate;
    use crate::sync::{Epoch, MemberKeys, RecordKey};

    fn state(member: &MemberKeys, reads: ChangeFilter, epoch: u64) -> AccessState {
        AccessState {
            access: Access::Private,
            epoch: Epoch(epoch),
            members: vec![Member {
                name: "bob".parse().unwrap(),
                id: member.id(),
                added_at: 0,
                reads,
            }],
            shared: ChangeFilter::default(),
        }
    }

    /// A call let in, then the access changes while it waits: let in again, it goes by the
    /// access of now (a narrower filter; then a removal refuses it).
    #[test]
    fn a_call_that_waited_while_the_access_changed_is_let_in_again() {
        let record: RecordKey = "VLD0:73iT7NuqplS2nab1AH4P7lJYiQROR_k4NyUhag_K4DY"
            .parse()
            .unwrap();
        let bob = MemberKeys::generate();
        let gate = AccessGate::new(
            record.clone(),
            MemberKeys::generate(),
            state(&bob, ChangeFilter::default(), 1),
        );
        let request = encode_message(&Message::SchemaRequest, Compression::None);
        let asked = authenticate(&bob, &record, Epoch(1), request.clone());
        let call = encode_message(&Message::Authenticated(asked), Compression::None);
        let (asker, admitted) = Admitted::by(&gate, call.clone()).unwrap();
        assert_eq!(asker, Asker::Member(bob.id()));
        assert_eq!(admitted.question, request);
        assert!(admitted.reads.is_open());
        assert_eq!(admitted.call(), call, "the call is made again as it came");

        let narrower = crate::commands::filter_args::FilterFlags {
            tables: Some("tags"),
            ..Default::default()
        }
        .applied_to(&ChangeFilter::default())
        .unwrap();
        gate.update(state(&bob, narrower.clone(), 1));
        assert_ne!(admitted.generation, gate.generation());
        let (_, again) = Admitted::by(&gate, admitted.call()).unwrap();
        assert_eq!(*again.reads, narrower);

        gate.update(AccessState {
            members: Vec::new(),
            ..state(&bob, narrower, 2)
        });
        assert!(Admitted::by(&gate, again.call()).is_err());
    }
}
