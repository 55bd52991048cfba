//! A file sealed for one member (`ddcp bundle create --encrypt-to ID`): only that member's
//! identity opens it, and it proves who sealed it. Like age, each file is encrypted with a key
//! agreed between a fresh key of its own (thrown away once the file is written) and the
//! recipient: a sealer's identity that leaks later opens none of the files it sealed. The
//! sealer signs the whole file with its identity: the recipient, who can make the file's key
//! as well as the sealer, cannot make a file that opens as sealed by someone else. The file is
//! encrypted in chunks, so that a writer holds one chunk at a time, and every chunk is
//! authenticated, the last one marked as last, so that reordering, truncation and additions
//! are all refused.
//!
//! ```text
//! "DDCPSEAL"                 8 bytes of magic
//! version                    u32 little-endian (2)
//! sealer id, recipient id    32 bytes each (ed25519 public keys)
//! file key id                32 bytes: the public half of the file's own key (ed25519)
//! nonce prefix               16 random bytes
//! chunks                     u32 little-endian length, then that many bytes of ciphertext
//! signature                  64 bytes: the sealer's, over the hash of everything before it
//! ```
//! Chunk `i` is XChaCha20-Poly1305 with the nonce `prefix || u64 big-endian (i, top bit set on
//! the last chunk)` and the 124 header bytes as associated data. The key is derived from the
//! X25519 agreement of the file key and the recipient, with the three ids.
//!
//! Version 1 (before 2026-12) agreed the key between the sealer's and the recipient's
//! identities alone and had no signature: it still opens, and proves less (see
//! docs/threat-model.md).

use std::io::{self, Write};

use ed25519_dalek::{Signature, Signer};

use super::member::{MemberId, MemberKeys};
use super::random;
use super::seal::{TAG_BYTES, agree, decrypt, encrypt};

/// The first bytes of a sealed file.
pub const SEALED_MAGIC: &[u8; 8] = b"DDCPSEAL";
const VERSION: u32 = 2;
const HEADER_BYTES: usize = 8 + 4 + 32 + 32 + 32 + 16;
const SIGNATURE_BYTES: usize = 64;
/// Plaintext bytes per chunk.
const CHUNK_BYTES: usize = 1 << 20;
const LAST: u64 = 1 << 63;
const KEY_CONTEXT: &str = "ddcp 2026-12 sealed file key, ephemeral";
const SIGNED_CONTEXT: &str = "ddcp 2026-12 sealed file, signed whole";

/// Why a sealed file does not open.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[allow(missing_docs)] // each #[error] says what the variant means
pub enum SealedFileError {
    #[error("the file is sealed for {recipient}, not for this database (its `ddcp id` is {me})")]
    NotForMe { recipient: MemberId, me: MemberId },
    #[error("the sealed file is truncated or corrupted")]
    Damaged,
    #[error("the sealed file is format {0}; this ddcp reads formats 1 and {VERSION}")]
    UnsupportedVersion(u32),
}

/// True when `bytes` start like a sealed file.
pub fn is_sealed(bytes: &[u8]) -> bool {
    bytes.starts_with(SEALED_MAGIC)
}

/// The key of a file: the agreement of `mine` and `theirs` (the file key and the recipient,
/// seen from either side), bound to the three ids.
fn file_key(
    mine: &MemberKeys,
    theirs: &MemberId,
    sealer: &MemberId,
    recipient: &MemberId,
    file: &MemberId,
) -> [u8; 32] {
    let material = [
        agree(mine, theirs).as_slice(),
        sealer.as_bytes(),
        recipient.as_bytes(),
        file.as_bytes(),
    ]
    .concat();
    blake3::derive_key(KEY_CONTEXT, &material)
}

fn nonce(prefix: &[u8; 16], index: u64, last: bool) -> [u8; 24] {
    let mut nonce = [0u8; 24];
    nonce[..16].copy_from_slice(prefix);
    let counter = if last { index | LAST } else { index };
    nonce[16..].copy_from_slice(&counter.to_be_bytes());
    nonce
}

/// Writes a sealed file: plaintext in, chunks out; [`SealedWriter::finish`] writes the last.
pub struct SealedWriter<W: Write> {
    out: W,
    key: [u8; 32],
    /// Signs the file once written.
    sealer: MemberKeys,
    /// Everything written so far.
    signed: blake3::Hasher,
    header: Vec<u8>,
    prefix: [u8; 16],
    buffer: Vec<u8>,
    index: u64,
}

impl<W: Write> std::fmt::Debug for SealedWriter<W> {
    /// Chunks written so far; never the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedWriter")
            .field("chunks", &self.index)
            .finish_non_exhaustive()
    }
}

impl<W: Write> SealedWriter<W> {
    /// Starts a file that `sealer` seals for `recipient` on `out`.
    pub fn start(mut out: W, sealer: &MemberKeys, recipient: &MemberId) -> io::Result<Self> {
        // The file's own key: its secret lives in this writer only.
        let file = MemberKeys::generate();
        let prefix: [u8; 16] = random::bytes();
        let mut header = Vec::with_capacity(HEADER_BYTES);
        header.extend_from_slice(SEALED_MAGIC);
        header.extend_from_slice(&VERSION.to_le_bytes());
        header.extend_from_slice(sealer.id().as_bytes());
        header.extend_from_slice(recipient.as_bytes());
        header.extend_from_slice(file.id().as_bytes());
        header.extend_from_slice(&prefix);
        out.write_all(&header)?;
        let mut signed = blake3::Hasher::new_derive_key(SIGNED_CONTEXT);
        signed.update(&header);
        Ok(SealedWriter {
            out,
            key: file_key(&file, recipient, &sealer.id(), recipient, &file.id()),
            sealer: sealer.clone(),
            signed,
            header,
            prefix,
            buffer: Vec::with_capacity(CHUNK_BYTES),
            index: 0,
        })
    }

    fn write_chunk(&mut self, last: bool) -> io::Result<()> {
        let nonce = nonce(&self.prefix, self.index, last);
        let sealed = encrypt(&self.key, &nonce, &self.header, &self.buffer);
        let length = (sealed.len() as u32).to_le_bytes();
        self.signed.update(&length);
        self.signed.update(&sealed);
        self.out.write_all(&length)?;
        self.out.write_all(&sealed)?;
        self.buffer.clear();
        self.index += 1;
        Ok(())
    }

    /// Writes the last chunk and the signature, and hands back the output, flushed.
    pub fn finish(mut self) -> io::Result<W> {
        self.write_chunk(true)?;
        let hash = self.signed.finalize();
        let signature = self.sealer.signing_key().sign(hash.as_bytes());
        self.out.write_all(&signature.to_bytes())?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for SealedWriter<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let room = CHUNK_BYTES - self.buffer.len();
        let taken = bytes.len().min(room);
        self.buffer.extend_from_slice(&bytes[..taken]);
        if self.buffer.len() == CHUNK_BYTES {
            self.write_chunk(false)?;
        }
        Ok(taken)
    }

    /// Full chunks are written as they fill; the rest waits for [`SealedWriter::finish`].
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// The sealer of a sealed file, once it opened: who made it.
#[derive(Debug, PartialEq, Eq)]
pub struct Opened {
    /// The identity the file names as its sealer.
    pub sealer: MemberId,
    /// Whether the sealer is proven (its signature, format 2). A format 1 file proves only
    /// that the sealer or the recipient made it: the recipient could have.
    pub proven: bool,
    /// What it sealed.
    pub bytes: Vec<u8>,
}

/// Opens a file sealed for `me`.
pub fn open_sealed(me: &MemberKeys, bytes: &[u8]) -> Result<Opened, SealedFileError> {
    if !is_sealed(bytes) || bytes.len() < 12 {
        return Err(SealedFileError::Damaged);
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    let header_bytes = match version {
        1 => V1_HEADER_BYTES,
        VERSION => HEADER_BYTES,
        other => return Err(SealedFileError::UnsupportedVersion(other)),
    };
    if bytes.len() < header_bytes {
        return Err(SealedFileError::Damaged);
    }
    let (header, rest) = bytes.split_at(header_bytes);
    let id = |range: std::ops::Range<usize>| {
        MemberId::from_slice(&header[range]).map_err(|_| SealedFileError::Damaged)
    };
    let (sealer, recipient) = (id(12..44)?, id(44..76)?);
    if recipient != me.id() {
        return Err(SealedFileError::NotForMe {
            recipient,
            me: me.id(),
        });
    }
    let (key, prefix, chunks) = if version == 1 {
        let key = v1_file_key(me, &sealer, &sealer, &recipient);
        (key, &header[76..92], rest)
    } else {
        // The signature first: nothing of a file its sealer did not sign is decrypted.
        let Some((chunks, signature)) = rest.split_last_chunk::<SIGNATURE_BYTES>() else {
            return Err(SealedFileError::Damaged);
        };
        let mut signed = blake3::Hasher::new_derive_key(SIGNED_CONTEXT);
        signed.update(header);
        signed.update(chunks);
        sealer
            .verifying_key()
            .verify_strict(
                signed.finalize().as_bytes(),
                &Signature::from_bytes(signature),
            )
            .map_err(|_| SealedFileError::Damaged)?;
        let file = id(76..108)?;
        let key = file_key(me, &file, &sealer, &recipient, &file);
        (key, &header[108..124], chunks)
    };
    let prefix: [u8; 16] = prefix.try_into().expect("16 bytes");
    let mut rest = chunks;
    let mut plain = Vec::with_capacity(bytes.len());
    let mut index = 0u64;
    loop {
        let Some((length, after)) = rest.split_first_chunk::<4>() else {
            return Err(SealedFileError::Damaged);
        };
        let length = u32::from_le_bytes(*length) as usize;
        if length > CHUNK_BYTES + TAG_BYTES || after.len() < length {
            return Err(SealedFileError::Damaged);
        }
        let (chunk, after) = after.split_at(length);
        rest = after;
        let last = rest.is_empty();
        let opened = decrypt(&key, &nonce(&prefix, index, last), header, chunk)
            .ok_or(SealedFileError::Damaged)?;
        plain.extend_from_slice(&opened);
        if last {
            return Ok(Opened {
                sealer,
                proven: version == VERSION,
                bytes: plain,
            });
        }
        index += 1;
    }
}

/// Version 1's header: no file key.
const V1_HEADER_BYTES: usize = 8 + 4 + 32 + 32 + 16;

/// Version 1's key: the sealer's and the recipient's identities agreed, nothing of the file's
/// own (read only: files are written as version 2).
fn v1_file_key(
    mine: &MemberKeys,
    theirs: &MemberId,
    sealer: &MemberId,
    recipient: &MemberId,
) -> [u8; 32] {
    let material = [
        agree(mine, theirs).as_slice(),
        sealer.as_bytes(),
        recipient.as_bytes(),
    ]
    .concat();
    blake3::derive_key("ddcp 2026-11 sealed file key", &material)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed(sealer: &MemberKeys, recipient: &MemberId, plain: &[u8]) -> Vec<u8> {
        let mut writer = SealedWriter::start(Vec::new(), sealer, recipient).unwrap();
        // In odd pieces, across chunk boundaries.
        for piece in plain.chunks(333_333) {
            writer.write_all(piece).unwrap();
        }
        writer.finish().unwrap()
    }

    #[test]
    fn only_the_recipient_opens_and_learns_the_sealer() {
        let (alice, bob, carol) = (
            MemberKeys::generate(),
            MemberKeys::generate(),
            MemberKeys::generate(),
        );
        for size in [0, 10, CHUNK_BYTES, 3 * CHUNK_BYTES + 7] {
            let plain: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            let file = sealed(&alice, &bob.id(), &plain);
            assert!(is_sealed(&file));
            let opened = open_sealed(&bob, &file).unwrap();
            assert_eq!((opened.sealer, opened.bytes.len()), (alice.id(), size));
            assert!(opened.proven);
            assert_eq!(opened.bytes, plain);
            assert!(matches!(
                open_sealed(&carol, &file),
                Err(SealedFileError::NotForMe { .. })
            ));
            // carol cannot read it by claiming to be bob either: the key is bob's to agree.
            let mut claimed = file.clone();
            claimed[44..76].copy_from_slice(carol.id().as_bytes());
            assert_eq!(open_sealed(&carol, &claimed), Err(SealedFileError::Damaged));
        }
    }

    /// Issue 29, item 7: the recipient can make a file's key (it is agreed with it), but not
    /// the sealer's signature: content it puts under alice's header does not open as hers. And
    /// alice's identity alone (what version 1 agreed the key from) does not make the key.
    #[test]
    fn the_recipient_cannot_forge_the_sealer_and_the_sealers_identity_does_not_open_a_file() {
        let (alice, bob) = (MemberKeys::generate(), MemberKeys::generate());
        let file = sealed(&alice, &bob.id(), b"from alice");
        let header = &file[..HEADER_BYTES];
        let file_id = MemberId::from_slice(&header[76..108]).unwrap();
        let prefix: [u8; 16] = header[108..124].try_into().unwrap();
        let key = file_key(&bob, &file_id, &alice.id(), &bob.id(), &file_id);
        let mut forged = header.to_vec();
        let chunk = encrypt(&key, &nonce(&prefix, 0, true), header, b"not from alice");
        forged.extend_from_slice(&(chunk.len() as u32).to_le_bytes());
        forged.extend_from_slice(&chunk);
        forged.extend_from_slice(&file[file.len() - SIGNATURE_BYTES..]);
        // The key is right (bob made it), the signature is not alice's over this content.
        assert_eq!(open_sealed(&bob, &forged), Err(SealedFileError::Damaged));
        let first = &file[HEADER_BYTES + 4..file.len() - SIGNATURE_BYTES];
        let by_identities = v1_file_key(&alice, &bob.id(), &alice.id(), &bob.id());
        assert!(decrypt(&by_identities, &nonce(&prefix, 0, true), header, first).is_none());
        assert!(decrypt(&key, &nonce(&prefix, 0, true), header, first).is_some());
    }

    /// A file sealed by a ddcp before version 2 still opens.
    #[test]
    fn a_version_1_file_still_opens() {
        let (alice, bob) = (MemberKeys::generate(), MemberKeys::generate());
        let prefix = [5u8; 16];
        let mut file = SEALED_MAGIC.to_vec();
        file.extend_from_slice(&1u32.to_le_bytes());
        file.extend_from_slice(alice.id().as_bytes());
        file.extend_from_slice(bob.id().as_bytes());
        file.extend_from_slice(&prefix);
        let header = file.clone();
        let key = v1_file_key(&alice, &bob.id(), &alice.id(), &bob.id());
        let chunk = encrypt(&key, &nonce(&prefix, 0, true), &header, b"old");
        file.extend_from_slice(&(chunk.len() as u32).to_le_bytes());
        file.extend_from_slice(&chunk);
        let opened = open_sealed(&bob, &file).unwrap();
        assert_eq!((opened.sealer, opened.bytes), (alice.id(), b"old".to_vec()));
        // bob could have made it himself: its sealer is not proven.
        assert!(!opened.proven);
    }

    #[test]
    fn truncation_reordering_and_flipped_bytes_are_refused() {
        let (alice, bob) = (MemberKeys::generate(), MemberKeys::generate());
        let plain = vec![7u8; 2 * CHUNK_BYTES + 100];
        let file = sealed(&alice, &bob.id(), &plain);
        // Cut after the second chunk: no chunk marked last.
        let first = HEADER_BYTES + 4 + CHUNK_BYTES + TAG_BYTES;
        let second = first + 4 + CHUNK_BYTES + TAG_BYTES;
        for cut in [HEADER_BYTES, first, second, file.len() - 1] {
            assert_eq!(
                open_sealed(&bob, &file[..cut]),
                Err(SealedFileError::Damaged)
            );
        }
        let mut swapped = file[..HEADER_BYTES].to_vec();
        swapped.extend_from_slice(&file[first..second]);
        swapped.extend_from_slice(&file[HEADER_BYTES..first]);
        swapped.extend_from_slice(&file[second..]);
        assert_eq!(open_sealed(&bob, &swapped), Err(SealedFileError::Damaged));
        for at in [20, HEADER_BYTES + 10, file.len() - 5] {
            let mut flipped = file.clone();
            flipped[at] ^= 1;
            assert!(open_sealed(&bob, &flipped).is_err(), "byte {at}");
        }
    }
}
