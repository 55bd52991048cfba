//! Peers' calls, answered with bounded work. Askers are not authenticated and may call as fast
//! as they like: at most [`MAX_ANSWERS_IN_FLIGHT`] answers are being built or queued for the
//! DbActor at once; a call beyond that is told `tooBusy` at once (the puller backs off and asks
//! again), and an answer whose asker stopped waiting is never built (see the DbActor).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use super::db_handle::DbHandle;
use crate::metrics::{self, ShedReason};
use crate::net::{IncomingCall, Network};
use crate::sync::serve::too_busy_answer;

/// Answers being built or waiting for the DbActor. A page takes the one writer up to a few
/// hundred milliseconds; this many queued still fit in [`ANSWER_BOUND`], and leave room for an
/// honest puller's 8 fragment requests in flight.
pub const MAX_ANSWERS_IN_FLIGHT: usize = 16;

/// Veilid gives a callee 5 s to answer; the database gets most of it. Past it the asker has
/// given up, and the answer would be built for nobody.
const ANSWER_BOUND: Duration = Duration::from_millis(4000);

/// Takes peers' calls and answers them through the DbActor, within the bound.
#[derive(Clone)]
pub struct Answerer {
    db: DbHandle,
    network: Network,
    in_flight: Arc<Semaphore>,
}

impl Answerer {
    /// Answers calls from `db`'s database over `network`.
    pub fn new(db: DbHandle, network: Network) -> Self {
        Answerer {
            db,
            network,
            in_flight: Arc::new(Semaphore::new(MAX_ANSWERS_IN_FLIGHT)),
        }
    }

    /// Takes one call: answered off the caller's task when an answer slot is free, else told
    /// `tooBusy` before this returns.
    pub async fn take(&self, call: IncomingCall) {
        match Arc::clone(&self.in_flight).try_acquire_owned() {
            Ok(slot) => {
                let answerer = self.clone();
                tokio::spawn(async move {
                    answerer.answer(call).await;
                    drop(slot);
                });
            }
            Err(_) => {
                metrics::shed(ShedReason::Busy);
                if let Err(err) = self.network.reply(call.id, too_busy_answer()).await {
                    tracing::debug!(target: "ddcp", error = %err, "Cannot answer a call");
                }
            }
        }
    }

    async fn answer(&self, call: IncomingCall) {
        let question_len = call.message.len();
        match self.db.answer(call.message, ANSWER_BOUND).await {
            Some(answer) => {
                metrics::traffic(question_len, answer.len());
                if let Err(err) = self.network.reply(call.id, answer).await {
                    tracing::debug!(target: "ddcp", error = %err, "Cannot answer a call");
                }
            }
            // No answer: the caller times out and asks again.
            None => tracing::debug!(target: "ddcp", "The database did not answer a peer in time"),
        }
    }
}
