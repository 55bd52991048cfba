//! `ddcp pull` through the control socket: every remote asked (or the one named) is pulled by
//! its own actor, all at once, and all answered by the request's one deadline.

use std::time::Duration;

use ractor::{ActorRef, DerivedActorRef};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{ControlQuery, ask};
use crate::control::PullOutcome;
use crate::serve::remote::RemoteMsg;

/// A remote to pull for `ddcp pull`: its actor when it runs, its last failure when not.
#[derive(Debug)]
pub struct PullTarget {
    /// The remote's name.
    pub name: String,
    /// Its actor; none while it waits to restart.
    pub actor: Option<ActorRef<RemoteMsg>>,
    /// Its last failure since its last success.
    pub last_error: Option<String>,
}

/// Has the remote named `name` (every one when none) pull now, each for `within` at most; how
/// each went, by name.
pub async fn pull_remotes(
    supervisor: &DerivedActorRef<ControlQuery>,
    name: Option<String>,
    within: Duration,
) -> Result<Vec<PullOutcome>, String> {
    let deadline = Instant::now() + within;
    let asked = name.clone();
    let query = |reply| ControlQuery::PullTargets { name: asked, reply };
    let targets = ask(supervisor, query).await?;
    if let (Some(name), true) = (&name, targets.is_empty()) {
        return Err(format!("no remote named {name:?}"));
    }
    Ok(pull_all(targets, deadline).await)
}

/// Pulls every target at once, each until `deadline`; the outcomes by name.
async fn pull_all(targets: Vec<PullTarget>, deadline: Instant) -> Vec<PullOutcome> {
    let mut pulls = JoinSet::new();
    for target in targets {
        pulls.spawn(pull_now(target, deadline));
    }
    let mut outcomes = pulls.join_all().await;
    outcomes.sort_by(|a, b| a.name.cmp(&b.name));
    outcomes
}

/// Has `target`'s actor pull now, until `deadline` at most; how it went.
async fn pull_now(target: PullTarget, deadline: Instant) -> PullOutcome {
    let failed = |error: String| PullOutcome {
        name: target.name.clone(),
        error: Some(error),
        ..PullOutcome::default()
    };
    let Some(actor) = &target.actor else {
        let why = target
            .last_error
            .clone()
            .unwrap_or_else(|| "it failed".into());
        return failed(format!("waiting to restart after a failure: {why}"));
    };
    let within = deadline.saturating_duration_since(Instant::now());
    match actor.call(RemoteMsg::PullNow, Some(within)).await {
        Ok(ractor::rpc::CallResult::Success(Ok(report))) => report.outcome(target.name.clone()),
        Ok(ractor::rpc::CallResult::Success(Err(error))) => failed(error),
        Ok(ractor::rpc::CallResult::Timeout) => failed(format!(
            "not done within {}s; the pull goes on in the background",
            within.as_secs()
        )),
        _ => failed("the remote's actor stopped".into()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use ractor::{Actor, ActorProcessingErr};

    use super::*;
    use crate::control::ControlRequest;

    /// When each stuck remote was asked to pull.
    type Asked = Arc<Mutex<Vec<Instant>>>;

    /// A remote actor that takes pulls, notes when, and never finishes them.
    struct Stuck;

    impl Actor for Stuck {
        type Msg = RemoteMsg;
        type State = (Asked, Vec<RemoteMsg>);
        type Arguments = Asked;

        async fn pre_start(
            &self,
            _myself: ActorRef<RemoteMsg>,
            asked: Asked,
        ) -> Result<Self::State, ActorProcessingErr> {
            Ok((asked, Vec::new()))
        }

        async fn handle(
            &self,
            _myself: ActorRef<RemoteMsg>,
            message: RemoteMsg,
            (asked, held): &mut Self::State,
        ) -> Result<(), ActorProcessingErr> {
            asked.lock().unwrap().push(Instant::now());
            held.push(message);
            Ok(())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn remotes_are_pulled_at_once_and_all_answered_by_the_one_deadline() {
        let asked = Asked::default();
        let mut targets = Vec::new();
        for name in ["b", "a"] {
            let (actor, _) = Actor::spawn(None, Stuck, Arc::clone(&asked)).await.unwrap();
            targets.push(PullTarget {
                name: name.into(),
                actor: Some(actor),
                last_error: None,
            });
        }
        targets.push(PullTarget {
            name: "c".into(),
            actor: None,
            last_error: Some("unreachable".into()),
        });
        let started = Instant::now();
        let deadline = started + crate::control::PULL_DEADLINE;
        let outcomes = pull_all(targets, deadline).await;
        // Both were asked at once (one after another, the second would be asked only when the
        // first gave up), and all is answered by the one deadline. The clock is tokio's paused
        // one: these are counts of deadlines, not timings.
        let asked = asked.lock().unwrap().clone();
        assert_eq!(asked.len(), 2);
        for at in asked {
            assert!(
                at.duration_since(started) < Duration::from_secs(1),
                "{at:?}"
            );
        }
        let took = started.elapsed();
        assert!(took >= crate::control::PULL_DEADLINE, "{took:?}");
        assert!(took < crate::control::PULL_DEADLINE * 2, "{took:?}");
        let names: Vec<&str> = outcomes.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        for outcome in &outcomes[..2] {
            assert!(
                outcome
                    .error
                    .as_deref()
                    .unwrap()
                    .starts_with("not done within")
            );
        }
        assert_eq!(
            outcomes[2].error.as_deref(),
            Some("waiting to restart after a failure: unreachable")
        );
        // The CLI waits longer than the daemon works: the daemon's answer arrives first.
        let request = ControlRequest::Pull(None);
        assert!(request.deadline() + crate::control::REPLY_MARGIN > crate::control::PULL_DEADLINE);
    }
}
