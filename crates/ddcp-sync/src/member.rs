//! Member identities: the ed25519 keypair each database keeps in its state dir. Its public half
//! (a [`MemberId`], printed by `ddcp id` as `VLD0:<base64url>`, the form Veilid prints VLD0 public
//! keys in) is what a member sends to a private database's owner; the keypair signs this
//! database's requests to private databases and opens what they seal for it.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{SigningKey, VerifyingKey};

const KIND_PREFIX: &str = "VLD0:";
/// The secret key's prefix: unlike the id's, so that a secret pasted where an id belongs is
/// refused (and never taken for an id, stored and listed).
const SECRET_PREFIX: &str = "VLD0-SECRET:";

/// A database's public member identity: an ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MemberId([u8; 32]);

/// Why a string or bytes are not a member id. Meant for the user who typed it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[allow(missing_docs)] // each #[error] says what the variant means
pub enum BadMemberId {
    #[error("a member id is VLD0:<43 characters of base64url> (what `ddcp id` prints)")]
    Form,
    #[error("unsupported crypto kind {0:?} (only VLD0 ids are known)")]
    UnknownKind(String),
    #[error("a member id is 32 bytes, got {0}")]
    Length(usize),
    #[error("not an ed25519 public key")]
    NotAKey,
}

impl MemberId {
    /// The id in `bytes`: 32 bytes that are a point of the curve.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, BadMemberId> {
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| BadMemberId::Length(bytes.len()))?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| BadMemberId::NotAKey)?;
        // A small-order point would make every key agreed with it a constant anyone knows.
        if key.is_weak() {
            return Err(BadMemberId::NotAKey);
        }
        Ok(MemberId(bytes))
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub(crate) fn verifying_key(&self) -> VerifyingKey {
        // Checked when the id was made.
        VerifyingKey::from_bytes(&self.0).expect("a MemberId is a curve point")
    }

    /// A short form for logs and lists: the first 8 characters after the prefix.
    pub fn short(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)[..8].to_string()
    }
}

impl FromStr for MemberId {
    type Err = BadMemberId;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let body = match text.split_once(':') {
            None => text,
            Some(("VLD0", body)) => body,
            Some((kind, _)) if kind.len() == 4 => {
                return Err(BadMemberId::UnknownKind(kind.to_string()));
            }
            Some(_) => return Err(BadMemberId::Form),
        };
        let bytes = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| BadMemberId::Form)?;
        MemberId::from_slice(&bytes)
    }
}

impl fmt::Display for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{KIND_PREFIX}{}", URL_SAFE_NO_PAD.encode(self.0))
    }
}

impl fmt::Debug for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MemberId({self})")
    }
}

/// A database's member keypair. Its Debug shows the public id only; [`MemberKeys::reveal`] is
/// the one way to the secret, for the state dir's file.
#[derive(Clone)]
pub struct MemberKeys {
    signing: SigningKey,
    id: MemberId,
}

/// Its secret is wiped when dropped: ed25519-dalek's `SigningKey` does it (its `zeroize`
/// feature), and the id is public.
impl zeroize::ZeroizeOnDrop for MemberKeys {}

impl MemberKeys {
    /// A new random keypair.
    pub fn generate() -> Self {
        MemberKeys::from_secret(crate::random::bytes())
    }

    /// The keypair of an ed25519 secret key (its 32-byte seed).
    pub fn from_secret(secret: [u8; 32]) -> Self {
        let signing = SigningKey::from_bytes(&secret);
        let id = MemberId(signing.verifying_key().to_bytes());
        MemberKeys { signing, id }
    }

    /// The public half.
    pub fn id(&self) -> MemberId {
        self.id
    }

    /// The secret key in the text form the state dir keeps (`VLD0-SECRET:<base64url>`).
    pub fn reveal(&self) -> String {
        format!(
            "{SECRET_PREFIX}{}",
            URL_SAFE_NO_PAD.encode(self.signing.to_bytes())
        )
    }

    /// Reads the text [`MemberKeys::reveal`] wrote. The error never quotes the text.
    pub fn from_revealed(text: &str) -> Result<Self, BadMemberId> {
        let body = text
            .trim()
            .strip_prefix(SECRET_PREFIX)
            .ok_or(BadMemberId::Form)?;
        let bytes = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| BadMemberId::Form)?;
        let secret: [u8; 32] = bytes
            .try_into()
            .map_err(|bytes: Vec<u8>| BadMemberId::Length(bytes.len()))?;
        Ok(MemberKeys::from_secret(secret))
    }

    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.signing
    }
}

impl fmt::Debug for MemberKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemberKeys")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_print_and_parse_with_and_without_the_prefix() {
        let keys = MemberKeys::generate();
        let text = keys.id().to_string();
        assert!(text.starts_with("VLD0:") && text.len() == 5 + 43, "{text}");
        assert_eq!(text.parse::<MemberId>(), Ok(keys.id()));
        assert_eq!(text[5..].parse::<MemberId>(), Ok(keys.id()));
        assert_eq!(
            "VLD1:abc".parse::<MemberId>(),
            Err(BadMemberId::UnknownKind("VLD1".into()))
        );
        assert_eq!("VLD0:!!".parse::<MemberId>(), Err(BadMemberId::Form));
        assert_eq!("VLD0:AAAA".parse::<MemberId>(), Err(BadMemberId::Length(3)));
    }

    #[test]
    fn the_secret_shows_only_when_revealed() {
        let keys = MemberKeys::generate();
        let secret = keys.reveal();
        let debug = format!("{keys:?}");
        let body = secret.strip_prefix("VLD0-SECRET:").unwrap();
        assert!(!debug.contains(body), "{debug}");
        // A secret pasted where an id belongs is refused, never taken for an id.
        assert_eq!(secret.parse::<MemberId>(), Err(BadMemberId::Form));
        assert!(debug.contains(&keys.id().to_string()));
        let again = MemberKeys::from_revealed(&secret).unwrap();
        assert_eq!(again.id(), keys.id());
        let err = MemberKeys::from_revealed("VLD0-SECRET:not-a-key").unwrap_err();
        assert!(!err.to_string().contains("not-a-key"));
    }
}
