//! A remote's Status as this database reads it, and how its route is called: a public
//! remote's Status and calls as they are; a private one's Status opened with this database's
//! member identity, every request signed with it and every answer opened.

use super::RemoteError;
use crate::net::{NetError, Network, RouteId};
use crate::sync::codec::{decode_message, decode_published, decode_status, encode_message};
use crate::sync::compress::Compression;
use crate::sync::protocol::{
    ErrorCode, Message, ProtocolError, Published, PublishedSchema, Status,
};
use crate::sync::pull::PullError;
use crate::sync::schema_fetch::{MAX_SCHEMA_ROUNDS, SchemaFetch};
use crate::sync::seal::{SealError, authenticate, open_answer, open_status};
use crate::sync::{Epoch, MemberId, MemberKeys, RecordKey};

/// A remote's Status as read from its record, and for a private remote what its requests
/// need.
#[derive(Clone, Debug)]
pub struct RemoteView {
    /// The Status.
    pub status: Status,
    /// Set when the remote is private (its Status was sealed).
    pub session: Option<Session>,
}

impl RemoteView {
    /// The database identity the Status names as its owner: a sealed one's sealer, an open
    /// one's `publicKey` (`None` when it names none ddcp can read).
    pub fn owner(&self) -> Option<MemberId> {
        match &self.session {
            Some(session) => Some(session.owner),
            None => MemberId::from_slice(&self.status.public_key).ok(),
        }
    }
}

/// What requests to a private remote are signed for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Session {
    /// The remote's member id: its answers are sealed with it.
    pub owner: MemberId,
    /// The key epoch of the Status read.
    pub epoch: Epoch,
}

/// Reads what a remote published (`bytes`, its record's subkey 0): a public remote's Status as
/// it is, a private one's opened with `me`.
pub fn open_published(
    me: &MemberKeys,
    key: &RecordKey,
    bytes: &[u8],
) -> Result<RemoteView, RemoteError> {
    match decode_published(bytes).map_err(RemoteError::BadStatus)? {
        Published::Open(status) => Ok(RemoteView {
            status,
            session: None,
        }),
        Published::Sealed(sealed) => {
            let inner = open_status(me, key, &sealed).map_err(|err| match err {
                SealError::NotAMember => RemoteError::NotAMember(me.id()),
                SealError::Damaged => RemoteError::DamagedSeal,
            })?;
            Ok(RemoteView {
                status: decode_status(&inner).map_err(RemoteError::BadStatus)?,
                session: Some(Session {
                    owner: sealed.owner,
                    epoch: sealed.epoch,
                }),
            })
        }
    }
}

/// A remote's CRR schema, asked on its route (for `ddcp clone`), with the Status it was read
/// from; the schema must have the fingerprint the Status names.
pub async fn remote_schema(
    network: &Network,
    me: &MemberKeys,
    key: &RecordKey,
) -> Result<(RemoteView, PublishedSchema), RemoteError> {
    let view = read_status(network, me, key).await?;
    // Released as it is dropped, when this returns.
    let route = network.import_route(&view.status.route)?;
    let caller = Caller {
        network: network.clone(),
        route: route.id().clone(),
        sealed: view
            .session
            .map(|session| (session, me.clone(), key.clone())),
    };
    let schema = caller.fetch_schema().await.map_err(|err| match err {
        RemoteError::Refused(error) if error.code == ErrorCode::NotAllowed => {
            RemoteError::NotAMember(me.id())
        }
        other => other,
    })?;
    if schema.shape.fingerprint() != view.status.schema_fingerprint {
        return Err(RemoteError::Garbage(PullError::BadPage(
            "a schema that is not the one its status names",
        )));
    }
    Ok((view, schema))
}

/// Reads a remote's Status from its record (opened with `me` when the remote is private).
pub async fn read_status(
    network: &Network,
    me: &MemberKeys,
    key: &RecordKey,
) -> Result<RemoteView, RemoteError> {
    let bytes = network
        .read_record(key)
        .await?
        .ok_or(RemoteError::NotPublished)?;
    open_published(me, key, &bytes)
}

/// Sends one request to a remote's route: as it is to a public remote; to a private one signed
/// with this database's member identity, its answer opened.
#[derive(Clone)]
pub(super) struct Caller {
    pub(super) network: Network,
    pub(super) route: RouteId,
    pub(super) sealed: Option<(Session, MemberKeys, RecordKey)>,
}

impl Caller {
    /// The remote's schema and history: one request, and its answer's fragments when it comes
    /// fragmented, in a bounded number of rounds.
    pub(super) async fn fetch_schema(&self) -> Result<PublishedSchema, RemoteError> {
        let mut fetch = SchemaFetch::new();
        for _ in 0..MAX_SCHEMA_ROUNDS {
            for request in fetch.requests() {
                let answer = self.clone().call(request).await?;
                let received = fetch.receive(&answer).map_err(|err| match err {
                    PullError::Refused(error) => RemoteError::Refused(error),
                    other => RemoteError::Garbage(other),
                })?;
                if let Some(schema) = received {
                    return Ok(schema);
                }
            }
        }
        Err(RemoteError::NoProgress)
    }

    pub(super) async fn call(self, request: Vec<u8>) -> Result<Vec<u8>, NetError> {
        let Some((session, me, key)) = self.sealed else {
            return self.network.call(&self.route, request).await;
        };
        let asked = authenticate(&me, &key, session.epoch, request);
        let wire = encode_message(&Message::Authenticated(asked.clone()), Compression::None);
        let answer = self.network.call(&self.route, wire).await?;
        let opened = match decode_message(&answer) {
            Ok(Message::SealedAnswer(sealed)) => {
                open_answer(&me, &session.owner, &key, &asked, &sealed).ok()
            }
            // Refusals (`notAllowed`, `tooBusy`) come unsealed: they tell nothing.
            Ok(Message::Error(_)) => Some(answer),
            _ => None,
        };
        // What does not open is garbage, and the pull says so.
        Ok(opened.unwrap_or_else(|| {
            let error = ProtocolError::new(
                ErrorCode::Malformed,
                "an answer that is not sealed for this member, or damaged",
            );
            encode_message(&Message::Error(error), Compression::None)
        }))
    }
}
