//! Veilid DHT record keys as users type them.
//!
//! veilid-core 0.5 prints a record key as `VLD0:<key>:<encryption secret>`; older releases (and
//! the original DDCP README) print `VLD0:<key>`. Both parts are 32 bytes in unpadded base64url.
//! The `VLD0:` prefix is optional on input and always present on output.
//!
//! The secret lets whoever holds it read the database's published Status, so it is shown only
//! where the user asks for it: [`RecordKey`]'s `Display` and `Debug` leave it out, and
//! [`RecordKey::reveal`] is the one way to print it (`ddcp init`, `ddcp addr`, `remote list
//! --show-secrets`, and the stores that must keep it).

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use zeroize::{Zeroize, ZeroizeOnDrop};

const KIND_PREFIX: &str = "VLD0:";
const PART_LEN: usize = 32;

/// A DHT record key: the record's public key, and the secret its values are encrypted with when
/// the key came in the two-part form. Prints as `VLD0:<key>`, without the secret.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RecordKey {
    key: [u8; PART_LEN],
    secret: Option<[u8; PART_LEN]>,
}

/// Why a string is not a record key. The message is meant for the user who typed it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[allow(missing_docs)] // each #[error] says what the variant means
pub enum BadRecordKey {
    #[error("record key is empty")]
    Empty,
    #[error("unsupported crypto kind {0:?} (only VLD0 keys are known)")]
    UnknownKind(String),
    #[error("record key has {0} ':'-separated parts; expected KEY or KEY:SECRET")]
    PartCount(usize),
    #[error("{part} is not unpadded base64url")]
    NotBase64 { part: &'static str },
    #[error("{part} is {len} bytes; expected {PART_LEN}")]
    Length { part: &'static str, len: usize },
}

/// The secret is wiped when the key is dropped: a copy left in freed memory would outlive
/// every care taken not to print it (a core dump, a swapped page).
impl Drop for RecordKey {
    fn drop(&mut self) {
        if let Some(secret) = self.secret.as_mut() {
            secret.zeroize();
        }
    }
}

impl ZeroizeOnDrop for RecordKey {}

impl RecordKey {
    /// The record's public key bytes.
    pub fn key(&self) -> &[u8; PART_LEN] {
        &self.key
    }

    /// The same record key without its encryption secret: safe to show in logs.
    pub fn without_secret(&self) -> RecordKey {
        RecordKey {
            key: self.key,
            secret: None,
        }
    }

    /// The encryption secret, when the key was given in veilid-core 0.5's two-part form.
    pub fn secret(&self) -> Option<&[u8; PART_LEN]> {
        self.secret.as_ref()
    }

    /// The secret as it appears in the key's text form, to scrub it out of text from elsewhere
    /// (veilid-core's error messages quote the keys they were given).
    pub fn secret_text(&self) -> Option<String> {
        self.secret.map(|secret| URL_SAFE_NO_PAD.encode(secret))
    }

    /// The whole key, secret included, for the places the user asked to see it or that must
    /// store it. Everything else prints the key itself, which leaves the secret out.
    pub fn reveal(&self) -> RevealedKey<'_> {
        RevealedKey(self)
    }
}

/// A [`RecordKey`] printed whole: `VLD0:<key>:<secret>`, what `ddcp remote add` takes.
pub struct RevealedKey<'a>(&'a RecordKey);

impl fmt::Debug for RevealedKey<'_> {
    /// The record only: Debug output lands in logs, where a secret never goes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RevealedKey").field(self.0).finish()
    }
}

impl fmt::Display for RevealedKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        if let Some(secret) = self.0.secret_text() {
            write!(f, ":{secret}")?;
        }
        Ok(())
    }
}

fn decode_part(text: &str, part: &'static str) -> Result<[u8; PART_LEN], BadRecordKey> {
    let bytes = URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| BadRecordKey::NotBase64 { part })?;
    let len = bytes.len();
    bytes
        .try_into()
        .map_err(|_| BadRecordKey::Length { part, len })
}

impl FromStr for RecordKey {
    type Err = BadRecordKey;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.is_empty() {
            return Err(BadRecordKey::Empty);
        }
        let body = match text.strip_prefix(KIND_PREFIX) {
            Some(body) => body,
            None => {
                // A four-letter kind other than ours ("VLD1:...") is a different crypto system,
                // not a malformed key: say so.
                if let Some((kind, _)) = text.split_once(':')
                    && kind.len() == 4
                    && kind
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
                {
                    return Err(BadRecordKey::UnknownKind(kind.to_string()));
                }
                text
            }
        };
        let parts: Vec<&str> = body.split(':').collect();
        match parts.as_slice() {
            [key] => Ok(RecordKey {
                key: decode_part(key, "key")?,
                secret: None,
            }),
            [key, secret] => Ok(RecordKey {
                key: decode_part(key, "key")?,
                secret: Some(decode_part(secret, "encryption secret")?),
            }),
            _ => Err(BadRecordKey::PartCount(parts.len())),
        }
    }
}

impl fmt::Display for RecordKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{KIND_PREFIX}{}", URL_SAFE_NO_PAD.encode(self.key))
    }
}

impl fmt::Debug for RecordKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secret = if self.secret.is_some() {
            ", secret: <redacted>"
        } else {
            ""
        };
        write!(f, "RecordKey({self}{secret})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(unsafe_code)] // to look at a dropped key's storage, which is still there
    fn the_secret_is_wiped_when_the_key_is_dropped() {
        let mut key = std::mem::ManuallyDrop::new(RecordKey {
            key: [1; PART_LEN],
            secret: Some([7; PART_LEN]),
        });
        // SAFETY: the key is dropped in place once; its storage (plain bytes, valid whatever
        // they hold) lives on in the ManuallyDrop and is only read after.
        unsafe { std::mem::ManuallyDrop::drop(&mut key) };
        assert_eq!(key.secret, Some([0; PART_LEN]));
        assert_eq!(key.key, [1; PART_LEN], "the public part is left");
    }

    const SEED_KEY: &str = "73iT7NuqplS2nab1AH4P7lJYiQROR_k4NyUhag_K4DY";

    #[test]
    fn accepts_the_seed_readme_key_with_and_without_prefix() {
        let bare: RecordKey = SEED_KEY.parse().unwrap();
        let prefixed: RecordKey = format!("VLD0:{SEED_KEY}").parse().unwrap();
        assert_eq!(bare, prefixed);
        assert_eq!(bare.to_string(), format!("VLD0:{SEED_KEY}"));
        assert!(bare.secret().is_none());
    }

    #[test]
    fn accepts_the_two_part_form_of_veilid_0_5() {
        let text = format!("VLD0:{SEED_KEY}:{SEED_KEY}");
        let key: RecordKey = text.parse().unwrap();
        assert!(key.secret().is_some());
        assert_eq!(key.reveal().to_string(), text);
        let bare: RecordKey = format!("{SEED_KEY}:{SEED_KEY}").parse().unwrap();
        assert_eq!(bare, key);
    }

    #[test]
    fn display_and_debug_never_show_the_secret() {
        const SECRET: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I";
        let key: RecordKey = format!("VLD0:{SEED_KEY}:{SECRET}").parse().unwrap();
        for shown in [
            key.to_string(),
            format!("{key:?}"),
            format!("{:?}", Some(&key)),
            format!("{:#?}", vec![key.clone()]),
        ] {
            assert!(!shown.contains(SECRET), "{shown}");
            assert!(shown.contains(SEED_KEY), "{shown}");
        }
        assert_eq!(key.to_string(), format!("VLD0:{SEED_KEY}"));
        assert!(format!("{key:?}").contains("<redacted>"));
        assert_eq!(key.secret_text().as_deref(), Some(SECRET));
        // Revealed, it parses back to the same key.
        assert_eq!(key.reveal().to_string().parse::<RecordKey>(), Ok(key));
    }

    #[test]
    fn refuses_malformed_keys() {
        assert_eq!("".parse::<RecordKey>(), Err(BadRecordKey::Empty));
        assert_eq!(
            "VLD1:abc".parse::<RecordKey>(),
            Err(BadRecordKey::UnknownKind("VLD1".into()))
        );
        assert_eq!(
            "VLD0:not base64!".parse::<RecordKey>(),
            Err(BadRecordKey::NotBase64 { part: "key" })
        );
        assert_eq!(
            "VLD0:AAAA".parse::<RecordKey>(),
            Err(BadRecordKey::Length {
                part: "key",
                len: 3
            })
        );
        assert_eq!(
            format!("{SEED_KEY}:{SEED_KEY}:{SEED_KEY}").parse::<RecordKey>(),
            Err(BadRecordKey::PartCount(3))
        );
        // Padded base64 is not what Veilid prints.
        assert!(format!("{SEED_KEY}=").parse::<RecordKey>().is_err());
    }
}
