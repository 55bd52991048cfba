//! The HostControlActor: the host's control socket, DIR/.ddcp/control.sock (mode 0600, its
//! owner's only), through which `ddcp host status|add|remove` reach a running
//! `ddcp serve --databases DIR`. Each database keeps its own socket in its own state dir, as it
//! would served alone: the CLI addresses one database there.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;

use ractor::rpc::CallResult;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::net::{UnixListener, UnixStream};

use super::{DbName, HostMsg};
use crate::control::{
    ControlError, ControlRequest, ControlResponse, QUESTION_DEADLINE, socket_path,
};
use crate::serve::control::{accept_forever, read_question, unreadable, write_answer};

/// Owns the host's socket: removes it when it stops.
#[derive(Debug)]
pub struct HostControlActor;

/// Its state: the socket, to remove at the end, and the task accepting connections.
#[derive(Debug)]
pub struct HostControlState {
    path: PathBuf,
    accepting: tokio::task::JoinHandle<()>,
}

impl Actor for HostControlActor {
    type Msg = ();
    type State = HostControlState;
    type Arguments = (PathBuf, ActorRef<HostMsg>);

    async fn pre_start(
        &self,
        _myself: ActorRef<()>,
        (state_dir, host): (PathBuf, ActorRef<HostMsg>),
    ) -> Result<HostControlState, ActorProcessingErr> {
        if crate::control::connect(&state_dir)?.is_some() {
            return Err(ControlError::AlreadyServing(state_dir).into());
        }
        let path = socket_path(&state_dir);
        let listener = UnixListener::bind(&path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        let owner = std::fs::metadata(&path)?.uid();
        let accepting = tokio::spawn(accept_forever(listener, move |stream| {
            let host = host.clone();
            async move {
                if let Err(err) = answer(stream, owner, host).await {
                    tracing::debug!(target: "ddcp", error = %err, "Host control connection failed");
                }
            }
        }));
        Ok(HostControlState { path, accepting })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<()>,
        state: &mut HostControlState,
    ) -> Result<(), ActorProcessingErr> {
        state.accepting.abort();
        let _ = std::fs::remove_file(&state.path);
        Ok(())
    }
}

/// Answers the one question of a connection.
async fn answer(stream: UnixStream, owner: u32, host: ActorRef<HostMsg>) -> std::io::Result<()> {
    let Some((stream, question)) = read_question(stream, owner).await? else {
        return Ok(());
    };
    let response = match question {
        Ok(request) => respond(&host, request).await,
        Err(err) => unreadable(err)?,
    };
    write_answer(stream, response).await
}

/// The answer to `request`, within its deadline.
async fn respond(host: &ActorRef<HostMsg>, request: ControlRequest) -> ControlResponse {
    let name = |text: &str| text.parse::<DbName>().map_err(|err| err.to_string());
    let answered = match request {
        ControlRequest::HostStatus => ask(host, HostMsg::Status).await.map(ControlResponse::Host),
        ControlRequest::HostAdd(text) => match name(&text) {
            Ok(name) => ask(host, |reply| HostMsg::Add(name, reply))
                .await
                .and_then(|added| added)
                .map(|(key, made)| ControlResponse::Added { key, made }),
            Err(err) => Err(err),
        },
        ControlRequest::HostRemove(text) => match name(&text) {
            Ok(name) => ask(host, |reply| HostMsg::Remove(name, reply))
                .await
                .and_then(|removed| removed)
                .map(|()| ControlResponse::Done),
            Err(err) => Err(err),
        },
        _ => Err(
            "this is the socket of a host of many databases: address one database with --db-file DIR/NAME/ddcp.db --state-dir DIR/NAME/.ddcp".into(),
        ),
    };
    answered.unwrap_or_else(ControlResponse::Error)
}

/// Asks the host something, within the deadline of a question.
async fn ask<T: Send + 'static>(
    host: &ActorRef<HostMsg>,
    message: impl FnOnce(RpcReplyPort<T>) -> HostMsg,
) -> Result<T, String> {
    match host.call(message, Some(QUESTION_DEADLINE)).await {
        Ok(CallResult::Success(answer)) => Ok(answer),
        Ok(CallResult::Timeout) => Err(format!("no answer within {QUESTION_DEADLINE:?}")),
        Ok(CallResult::SenderError) | Err(_) => Err("ddcp serve is stopping".into()),
    }
}
