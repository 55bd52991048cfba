//! Private databases' cryptography: the Status sealed for members, requests signed by a member
//! and bound to the database and its epoch, answers sealed for the member who asked.
//!
//! Primitives are those of Veilid's VLD0 crypto system, from the crates it builds them with:
//! ed25519 signatures, X25519 agreement between two ed25519 identities (the public key mapped to
//! Montgomery form, the secret expanded as ed25519 does: libsodium's `ed25519_to_curve25519`),
//! BLAKE3 key derivation and XChaCha20-Poly1305. Every derived key names its use, the record and
//! the epoch, so no key serves two purposes, two databases or two epochs.
//!
//! - Status: one body key per (database, epoch), derived from the owner's secret, encrypts the
//!   Status; it is sealed to each member with the key the owner and that member agree
//!   ([`SEALED_KEY_BYTES`] each). A non-member finds no seal it can open.
//! - Requests: [`Authenticated`] carries the asker's id and signs the record key, the epoch, a
//!   random nonce and the request. The server checks the epoch, the members and the signature.
//! - Answers: encrypted with a key only the owner and the asker can agree, bound to the
//!   request's nonce: whoever replays a member's request gets nothing it can read.

use chacha20poly1305::aead::AeadInOut;
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use ed25519_dalek::{Digest, Sha512, Signature, Signer};

use super::ids::Epoch;
use super::member::{MemberId, MemberKeys};
use super::protocol::{Authenticated, ListenToken, SealedAnswer, SealedNote, SealedStatus};
use super::random;
use super::record_key::RecordKey;

pub(crate) const TAG_BYTES: usize = 16;

/// Members a private database can have: their seals (56 bytes each with the list's pointer)
/// and the Status must fit in one 32 KiB subkey, with room for a route blob of 8 KiB.
pub const MAX_MEMBERS: usize = 400;

/// Bytes one member adds to a sealed Status: the 32-byte body key and its tag.
pub const SEALED_KEY_BYTES: usize = 32 + TAG_BYTES;

const BODY_KEY: &str = "ddcp 2026-11 private status body key";
const MEMBER_KEY: &str = "ddcp 2026-11 private status member key";
const ANSWER_KEY: &str = "ddcp 2026-11 private answer key";
const NOTE_KEY: &str = "ddcp 2026-12 private note key";
const REQUEST_DOMAIN: &[u8] = b"ddcp 2026-11 authenticated request";

/// Why something sealed does not open.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    /// No seal of the Status opens with this identity.
    #[error("not a member")]
    NotAMember,
    /// A seal opened but what it sealed did not: damaged or forged.
    #[error("the sealed message is damaged or forged")]
    Damaged,
}

/// Why a private database refuses a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The asker is not a member.
    NotAMember,
    /// The request names another epoch: made before a member was removed, or replayed.
    StaleEpoch,
    /// The signature is not the asker's over this request to this database.
    BadSignature,
}

impl Refusal {
    /// A label for metrics and logs, from a fixed set.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::NotAMember => "not_member",
            Refusal::StaleEpoch => "stale_epoch",
            Refusal::BadSignature => "bad_signature",
        }
    }
}

/// The X25519 secret two identities agree, each from its own secret and the other's id.
pub(crate) fn agree(mine: &MemberKeys, theirs: &MemberId) -> [u8; 32] {
    let expanded: [u8; 64] = Sha512::digest(mine.signing_key().to_bytes()).into();
    let mut scalar = [0u8; 32];
    scalar.copy_from_slice(&expanded[..32]);
    // Ids are never small-order points (MemberId refuses them), so the result is never zero.
    theirs
        .verifying_key()
        .to_montgomery()
        .mul_clamped(scalar)
        .to_bytes()
}

fn derive(context: &str, secret: &[u8], record: &RecordKey, epoch: Epoch) -> [u8; 32] {
    let mut material = Vec::with_capacity(secret.len() + 40);
    material.extend_from_slice(secret);
    material.extend_from_slice(record.key());
    material.extend_from_slice(&epoch.0.to_le_bytes());
    blake3::derive_key(context, &material)
}

fn status_aad(record: &RecordKey, epoch: Epoch) -> Vec<u8> {
    [record.key().as_slice(), &epoch.0.to_le_bytes()].concat()
}

pub(crate) fn encrypt(key: &[u8; 32], nonce: &[u8; 24], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let mut buffer = plaintext.to_vec();
    let tag = XChaCha20Poly1305::new(key.into())
        .encrypt_inout_detached(&XNonce::from(*nonce), aad, buffer.as_mut_slice().into())
        .expect("XChaCha20-Poly1305 takes messages far longer than any ddcp sends");
    buffer.extend_from_slice(&tag);
    buffer
}

pub(crate) fn decrypt(
    key: &[u8; 32],
    nonce: &[u8; 24],
    aad: &[u8],
    ciphertext: &[u8],
) -> Option<Vec<u8>> {
    let split = ciphertext.len().checked_sub(TAG_BYTES)?;
    let (body, tag) = ciphertext.split_at(split);
    let tag: [u8; TAG_BYTES] = tag.try_into().ok()?;
    let mut buffer = body.to_vec();
    XChaCha20Poly1305::new(key.into())
        .decrypt_inout_detached(
            &XNonce::from(*nonce),
            aad,
            buffer.as_mut_slice().into(),
            &tag.into(),
        )
        .ok()?;
    Some(buffer)
}

/// The key a member's seal of the body key is made with. Used once per (member, database,
/// epoch) on a constant plaintext, so its nonce is constant too.
fn member_key(mine: &MemberKeys, theirs: &MemberId, record: &RecordKey, epoch: Epoch) -> [u8; 32] {
    derive(MEMBER_KEY, &agree(mine, theirs), record, epoch)
}

const MEMBER_NONCE: [u8; 24] = [0; 24];

/// Seals `status` (an encoded Status) for `members`: only they can open it, with
/// [`open_status`].
pub fn seal_status(
    owner: &MemberKeys,
    record: &RecordKey,
    epoch: Epoch,
    members: &[MemberId],
    status: &[u8],
) -> SealedStatus {
    let seals = member_seals(owner, record, epoch, members);
    seal_with(owner, record, epoch, seals, status)
}

/// The body key sealed to each of `members`: the same for every publish of one epoch (a key
/// agreement per member, so a publisher computes them once per epoch and members change).
pub fn member_seals(
    owner: &MemberKeys,
    record: &RecordKey,
    epoch: Epoch,
    members: &[MemberId],
) -> Vec<Vec<u8>> {
    let body_key = body_key(owner, record, epoch);
    let mut seals: Vec<Vec<u8>> = members
        .iter()
        .map(|member| {
            let key = member_key(owner, member, record, epoch);
            encrypt(&key, &MEMBER_NONCE, &[], &body_key)
        })
        .collect();
    // In no order that says anything about the members.
    seals.sort_unstable();
    seals
}

/// Seals `status` with `seals` made by [`member_seals`] for the same owner, record and epoch.
pub fn seal_with(
    owner: &MemberKeys,
    record: &RecordKey,
    epoch: Epoch,
    seals: Vec<Vec<u8>>,
    status: &[u8],
) -> SealedStatus {
    let nonce = random::bytes();
    let body = encrypt(
        &body_key(owner, record, epoch),
        &nonce,
        &status_aad(record, epoch),
        status,
    );
    SealedStatus {
        epoch,
        owner: owner.id(),
        keys: seals,
        nonce,
        body,
    }
}

/// Derived, not random: the seals stay the same across publishes (and restarts) of one epoch.
fn body_key(owner: &MemberKeys, record: &RecordKey, epoch: Epoch) -> [u8; 32] {
    derive(BODY_KEY, &owner.signing_key().to_bytes(), record, epoch)
}

/// Opens a Status sealed for `me` by the database whose record is `record`: the encoded Status.
pub fn open_status(
    me: &MemberKeys,
    record: &RecordKey,
    sealed: &SealedStatus,
) -> Result<Vec<u8>, SealError> {
    let key = member_key(me, &sealed.owner, record, sealed.epoch);
    let body_key = sealed
        .keys
        .iter()
        .find_map(|seal| decrypt(&key, &MEMBER_NONCE, &[], seal))
        .ok_or(SealError::NotAMember)?;
    let body_key: [u8; 32] = body_key.try_into().map_err(|_| SealError::Damaged)?;
    decrypt(
        &body_key,
        &sealed.nonce,
        &status_aad(record, sealed.epoch),
        &sealed.body,
    )
    .ok_or(SealError::Damaged)
}

/// Opens a Status this owner sealed, as its owner: with the body key it derives, not a seal.
/// `ddcp restore` reads what its database last published this way.
pub fn open_own_status(
    owner: &MemberKeys,
    record: &RecordKey,
    sealed: &SealedStatus,
) -> Result<Vec<u8>, SealError> {
    if sealed.owner != owner.id() {
        return Err(SealError::NotAMember);
    }
    decrypt(
        &body_key(owner, record, sealed.epoch),
        &sealed.nonce,
        &status_aad(record, sealed.epoch),
        &sealed.body,
    )
    .ok_or(SealError::Damaged)
}

/// Whether `sealed`, a Status this owner sealed, holds a seal for `member`: seals are made the
/// same way every time, so the owner finds a member's by making it again.
pub fn sealed_for(
    owner: &MemberKeys,
    record: &RecordKey,
    sealed: &SealedStatus,
    member: &MemberId,
) -> bool {
    let seal = member_seals(owner, record, sealed.epoch, std::slice::from_ref(member));
    sealed.keys.contains(&seal[0])
}

fn signed_bytes(record: &RecordKey, epoch: Epoch, nonce: &[u8; 24], request: &[u8]) -> Vec<u8> {
    [
        REQUEST_DOMAIN,
        record.key(),
        &epoch.0.to_le_bytes(),
        nonce,
        request,
    ]
    .concat()
}

/// `request` (an encoded message), signed by `me` for the database `record` in `epoch`.
pub fn authenticate(
    me: &MemberKeys,
    record: &RecordKey,
    epoch: Epoch,
    request: Vec<u8>,
) -> Authenticated {
    let nonce = random::bytes();
    let signature = me
        .signing_key()
        .sign(&signed_bytes(record, epoch, &nonce, &request))
        .to_bytes();
    Authenticated {
        member: me.id(),
        epoch,
        nonce,
        request,
        signature,
    }
}

/// Checks that `request` comes from a member (`is_member`), for this database (`record`) in its
/// current `epoch`. The signature is checked first: whoever cannot sign for an id learns
/// nothing about it (the asker is told one refusal for every reason anyway).
pub fn check_request(
    record: &RecordKey,
    epoch: Epoch,
    is_member: impl FnOnce(&MemberId) -> bool,
    request: &Authenticated,
) -> Result<(), Refusal> {
    let signed = signed_bytes(record, request.epoch, &request.nonce, &request.request);
    request
        .member
        .verifying_key()
        .verify_strict(&signed, &Signature::from_bytes(&request.signature))
        .map_err(|_| Refusal::BadSignature)?;
    if !is_member(&request.member) {
        return Err(Refusal::NotAMember);
    }
    if request.epoch != epoch {
        return Err(Refusal::StaleEpoch);
    }
    Ok(())
}

fn answer_key(mine: &MemberKeys, theirs: &MemberId, record: &RecordKey, epoch: Epoch) -> [u8; 32] {
    derive(ANSWER_KEY, &agree(mine, theirs), record, epoch)
}

/// Seals `answer` (an encoded message) for the member who sent `request` (already checked).
pub fn seal_answer(
    owner: &MemberKeys,
    record: &RecordKey,
    request: &Authenticated,
    answer: &[u8],
) -> SealedAnswer {
    let key = answer_key(owner, &request.member, record, request.epoch);
    let nonce = random::bytes();
    SealedAnswer {
        nonce,
        answer: encrypt(&key, &nonce, &request.nonce, answer),
    }
}

/// Seals `note` (an encoded note) for `member`, who listens with `token`, in `epoch`: only the
/// member and the database open it, and only as a note to that token.
pub fn seal_note(
    owner: &MemberKeys,
    member: &MemberId,
    record: &RecordKey,
    epoch: Epoch,
    token: ListenToken,
    note: &[u8],
) -> SealedNote {
    let key = derive(NOTE_KEY, &agree(owner, member), record, epoch);
    let nonce = random::bytes();
    SealedNote {
        token,
        epoch,
        nonce,
        note: encrypt(&key, &nonce, &token.0, note),
    }
}

/// Opens a note sealed for `me` by the database `owner` owns.
pub fn open_note(
    me: &MemberKeys,
    owner: &MemberId,
    record: &RecordKey,
    sealed: &SealedNote,
) -> Result<Vec<u8>, SealError> {
    let key = derive(NOTE_KEY, &agree(me, owner), record, sealed.epoch);
    decrypt(&key, &sealed.nonce, &sealed.token.0, &sealed.note).ok_or(SealError::Damaged)
}

/// Opens the answer to `request`, which `me` sent to the database `owner` owns.
pub fn open_answer(
    me: &MemberKeys,
    owner: &MemberId,
    record: &RecordKey,
    request: &Authenticated,
    sealed: &SealedAnswer,
) -> Result<Vec<u8>, SealError> {
    let key = answer_key(me, owner, record, request.epoch);
    decrypt(&key, &sealed.nonce, &request.nonce, &sealed.answer).ok_or(SealError::Damaged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record(byte: u8) -> RecordKey {
        use base64::Engine;
        let key = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([byte; 32]);
        key.parse().unwrap()
    }

    #[test]
    fn members_open_the_status_and_nobody_else_does() {
        let owner = MemberKeys::generate();
        let members: Vec<MemberKeys> = (0..5).map(|_| MemberKeys::generate()).collect();
        let ids: Vec<MemberId> = members.iter().map(MemberKeys::id).collect();
        let sealed = seal_status(&owner, &record(1), Epoch(3), &ids, b"the status");
        assert_eq!(sealed.keys.len(), 5);
        assert!(sealed.keys.iter().all(|key| key.len() == SEALED_KEY_BYTES));
        for member in &members {
            assert_eq!(
                open_status(member, &record(1), &sealed).unwrap(),
                b"the status"
            );
            // Bound to the record and the epoch.
            assert_eq!(
                open_status(member, &record(2), &sealed),
                Err(SealError::NotAMember)
            );
            let mut other_epoch = sealed.clone();
            other_epoch.epoch = Epoch(4);
            assert_eq!(
                open_status(member, &record(1), &other_epoch),
                Err(SealError::NotAMember)
            );
        }
        // The owner's own seal is not there unless it is a member.
        assert_eq!(
            open_status(&owner, &record(1), &sealed),
            Err(SealError::NotAMember)
        );
        let mut damaged = sealed.clone();
        damaged.body[0] ^= 1;
        assert_eq!(
            open_status(&members[0], &record(1), &damaged),
            Err(SealError::Damaged)
        );
    }

    #[test]
    fn the_owner_opens_its_own_status_and_finds_who_it_was_sealed_for() {
        let owner = MemberKeys::generate();
        let (kept, removed) = (MemberKeys::generate().id(), MemberKeys::generate().id());
        let sealed = seal_status(&owner, &record(1), Epoch(4), &[kept], b"the status");
        assert_eq!(
            open_own_status(&owner, &record(1), &sealed).unwrap(),
            b"the status"
        );
        assert!(sealed_for(&owner, &record(1), &sealed, &kept));
        assert!(!sealed_for(&owner, &record(1), &sealed, &removed));
        // Another owner, another record: nothing opens, nobody is found.
        let other = MemberKeys::generate();
        assert_eq!(
            open_own_status(&other, &record(1), &sealed),
            Err(SealError::NotAMember)
        );
        assert!(!sealed_for(&other, &record(1), &sealed, &kept));
        assert_eq!(
            open_own_status(&owner, &record(2), &sealed),
            Err(SealError::Damaged)
        );
        assert!(!sealed_for(&owner, &record(2), &sealed, &kept));
    }

    #[test]
    fn seals_of_one_epoch_stay_the_same_across_publishes() {
        let owner = MemberKeys::generate();
        let ids = [MemberKeys::generate().id()];
        let first = seal_status(&owner, &record(1), Epoch(1), &ids, b"one");
        let second = seal_status(&owner, &record(1), Epoch(1), &ids, b"two");
        assert_eq!(first.keys, second.keys);
        assert_ne!(first.nonce, second.nonce);
        let next = seal_status(&owner, &record(1), Epoch(2), &ids, b"two");
        assert_ne!(first.keys, next.keys);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        /// Whatever the members and the status, only a member's key opens it.
        #[test]
        fn only_a_members_key_opens_a_sealed_status(
            members in 0usize..8,
            status in proptest::collection::vec(any::<u8>(), 0..300),
            outsider_seed in any::<[u8; 32]>(),
        ) {
            let owner = MemberKeys::generate();
            let keys: Vec<MemberKeys> = (0..members).map(|_| MemberKeys::generate()).collect();
            let ids: Vec<MemberId> = keys.iter().map(MemberKeys::id).collect();
            let sealed = seal_status(&owner, &record(7), Epoch(1), &ids, &status);
            for key in &keys {
                prop_assert_eq!(open_status(key, &record(7), &sealed).unwrap(), status.clone());
            }
            let outsider = MemberKeys::from_secret(outsider_seed);
            prop_assume!(!ids.contains(&outsider.id()));
            prop_assert_eq!(open_status(&outsider, &record(7), &sealed), Err(SealError::NotAMember));
        }
    }

    #[test]
    fn requests_are_checked_for_member_epoch_and_signature() {
        let member = MemberKeys::generate();
        let request = authenticate(&member, &record(1), Epoch(5), b"pages please".to_vec());
        let members = |id: &MemberId| *id == member.id();
        assert_eq!(
            check_request(&record(1), Epoch(5), members, &request),
            Ok(())
        );
        // Replayed after the epoch moved on, or forwarded to another database.
        assert_eq!(
            check_request(&record(1), Epoch(6), members, &request),
            Err(Refusal::StaleEpoch)
        );
        // A non-member's own request is signed right, and refused as a non-member's.
        let stranger = MemberKeys::generate();
        let strangers = authenticate(&stranger, &record(1), Epoch(5), b"pages".to_vec());
        assert_eq!(
            check_request(&record(1), Epoch(5), members, &strangers),
            Err(Refusal::NotAMember)
        );
        assert_eq!(
            check_request(&record(2), Epoch(5), members, &request),
            Err(Refusal::BadSignature)
        );
        // Removed.
        assert_eq!(
            check_request(&record(1), Epoch(5), |_| false, &request),
            Err(Refusal::NotAMember)
        );
        // Forged: another request under the member's name, or their signature on other bytes.
        let forger = MemberKeys::generate();
        let mut forged = authenticate(&forger, &record(1), Epoch(5), b"pages please".to_vec());
        forged.member = member.id();
        assert_eq!(
            check_request(&record(1), Epoch(5), members, &forged),
            Err(Refusal::BadSignature)
        );
        let mut altered = request.clone();
        altered.request = b"other pages".to_vec();
        assert_eq!(
            check_request(&record(1), Epoch(5), members, &altered),
            Err(Refusal::BadSignature)
        );
    }

    #[test]
    fn only_the_asker_opens_the_answer() {
        let owner = MemberKeys::generate();
        let member = MemberKeys::generate();
        let other = MemberKeys::generate();
        let request = authenticate(&member, &record(1), Epoch(1), b"q".to_vec());
        let sealed = seal_answer(&owner, &record(1), &request, b"the answer");
        assert_eq!(
            open_answer(&member, &owner.id(), &record(1), &request, &sealed).unwrap(),
            b"the answer"
        );
        assert_eq!(
            open_answer(&other, &owner.id(), &record(1), &request, &sealed),
            Err(SealError::Damaged)
        );
        // Bound to the request it answers.
        let second = authenticate(&member, &record(1), Epoch(1), b"q".to_vec());
        assert_eq!(
            open_answer(&member, &owner.id(), &record(1), &second, &sealed),
            Err(SealError::Damaged)
        );
    }

    #[test]
    fn only_the_listening_member_opens_a_note_and_only_as_sealed() {
        let owner = MemberKeys::generate();
        let member = MemberKeys::generate();
        let other = MemberKeys::generate();
        let token = ListenToken([5; 16]);
        let sealed = seal_note(&owner, &member.id(), &record(1), Epoch(2), token, b"note");
        assert_eq!(
            open_note(&member, &owner.id(), &record(1), &sealed).unwrap(),
            b"note"
        );
        // Another member, another database, or the seal moved to another token or epoch.
        assert!(open_note(&other, &owner.id(), &record(1), &sealed).is_err());
        assert!(open_note(&member, &owner.id(), &record(2), &sealed).is_err());
        let mut moved = sealed.clone();
        moved.token = ListenToken([6; 16]);
        assert!(open_note(&member, &owner.id(), &record(1), &moved).is_err());
        let mut moved = sealed;
        moved.epoch = Epoch(3);
        assert!(open_note(&member, &owner.id(), &record(1), &moved).is_err());
    }
}
