//! The bundle file format of `ddcp bundle`: replication by file, like `git bundle`.
//!
//! ```text
//! "DDCPBNDL"              8 bytes of magic
//! zstd frame of:          (format 2; format 1, uncompressed, is still read)
//!   BundleHeader          capnp message (see schema/ddcp.capnp)
//!   Changeset ...         capnp messages, in (db_version, seq) order
//! SHA-256                 32 bytes over everything before it
//! ```
//! A reader checks the magic and the hash before it decodes anything, so a truncated or
//! corrupted file is refused whole. Bundles are for air-gapped peers and backups, where size
//! matters most: zstd (as pages are compressed) takes a text-like bundle to about a sixteenth.

use std::borrow::Cow;
use std::io::{self, Read, Write};

use sha2::{Digest, Sha256};

use super::change::Change;
use super::codec::{self, BundleHeader, CodecError};
use super::ids::DbVersion;
use super::validate::MAX_COUNTER;

/// The first bytes of every bundle file.
pub const MAGIC: &[u8; 8] = b"DDCPBNDL";
/// The bundle format this build writes: compressed.
pub const FORMAT_VERSION: u32 = 2;
/// The uncompressed format of earlier builds, still read.
pub const UNCOMPRESSED_FORMAT: u32 = 1;
/// The most a bundle may decompress to: the reader holds it whole.
pub const MAX_BUNDLE_BYTES: u64 = 2 << 30;
const HASH_LEN: usize = 32;
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
const ZSTD_LEVEL: i32 = 3;

/// Why bytes are not a usable bundle.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // each #[error] says what the variant means
pub enum BundleError {
    #[error("not a ddcp bundle (no DDCPBNDL header)")]
    NotABundle,
    #[error("bundle is truncated or corrupted (checksum mismatch)")]
    Corrupted,
    #[error(
        "bundle format {0} is not supported by this ddcp (it reads formats 1 and {FORMAT_VERSION})"
    )]
    UnsupportedFormat(u32),
    #[error("bundle says it holds {expected} changes but holds {found}")]
    CountMismatch { expected: u64, found: u64 },
    #[error("bundle is corrupted: {0}")]
    Codec(#[from] CodecError),
    #[error("bundle's version range {since}..={until} is invalid")]
    BadRange { since: DbVersion, until: DbVersion },
    #[error("bundle holds a change at db_version {0}, outside its stated range")]
    ChangeOutsideRange(DbVersion),
    #[error("bundle does not decompress: {0}")]
    Decompress(String),
    #[error("bundle decompresses to more than {} GiB: refused", MAX_BUNDLE_BYTES >> 30)]
    TooLarge,
}

/// What is written hashed: the magic and the compressed stream, not the hash itself.
struct Hashing<W: Write> {
    out: W,
    hash: Sha256,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let written = self.out.write(bytes)?;
        self.hash.update(&bytes[..written]);
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Writes a bundle: the header, then changesets, then the checksum in [`BundleWriter::finish`].
pub struct BundleWriter<W: Write> {
    encoder: zstd::stream::write::Encoder<'static, Hashing<W>>,
}

impl<W: Write> std::fmt::Debug for BundleWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BundleWriter").finish_non_exhaustive()
    }
}

impl<W: Write> BundleWriter<W> {
    /// Starts a bundle on `out` with `header` (written as format [`FORMAT_VERSION`]).
    pub fn start(out: W, header: &BundleHeader) -> io::Result<Self> {
        let mut hashing = Hashing {
            out,
            hash: Sha256::new(),
        };
        hashing.write_all(MAGIC)?;
        let mut encoder = zstd::stream::write::Encoder::new(hashing, ZSTD_LEVEL)?;
        let header = BundleHeader {
            format_version: FORMAT_VERSION,
            ..header.clone()
        };
        encoder.write_all(&codec::encode_bundle_header(&header))?;
        Ok(BundleWriter { encoder })
    }

    /// Appends one changeset message.
    pub fn write_changes(&mut self, changes: &[Change]) -> io::Result<()> {
        self.encoder.write_all(&codec::encode_changeset(changes))
    }

    /// Ends the compressed stream, writes the checksum and hands back the output.
    pub fn finish(self) -> io::Result<W> {
        let Hashing { mut out, hash } = self.encoder.finish()?;
        out.write_all(&hash.finalize())?;
        out.flush()?;
        Ok(out)
    }
}

/// Reads a bundle whose bytes are all in memory and whose checksum has been verified.
pub struct BundleReader<'a> {
    header: BundleHeader,
    body: Cow<'a, [u8]>,
    position: usize,
    changes_read: u64,
}

impl std::fmt::Debug for BundleReader<'_> {
    /// Where the reading stands, not the changes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BundleReader")
            .field("body_bytes", &self.body.len())
            .field("position", &self.position)
            .field("changes_read", &self.changes_read)
            .finish_non_exhaustive()
    }
}

impl<'a> BundleReader<'a> {
    /// Checks the magic, the checksum and the format of `bytes`, decompresses them (at most
    /// [`MAX_BUNDLE_BYTES`]), and decodes the header.
    pub fn open(bytes: &'a [u8]) -> Result<Self, BundleError> {
        if !bytes.starts_with(MAGIC) {
            return Err(BundleError::NotABundle);
        }
        if bytes.len() < MAGIC.len() + HASH_LEN {
            return Err(BundleError::Corrupted);
        }
        let (hashed, digest) = bytes.split_at(bytes.len() - HASH_LEN);
        if Sha256::digest(hashed).as_slice() != digest {
            return Err(BundleError::Corrupted);
        }
        let stored = &hashed[MAGIC.len()..];
        let (body, expected_format) = if stored.starts_with(&ZSTD_MAGIC) {
            (Cow::Owned(decompress(stored)?), FORMAT_VERSION)
        } else {
            (Cow::Borrowed(stored), UNCOMPRESSED_FORMAT)
        };
        let mut rest: &[u8] = &body;
        let header = codec::decode_bundle_header(&mut rest)?;
        if header.format_version != expected_format {
            return Err(BundleError::UnsupportedFormat(header.format_version));
        }
        let position = body.len() - rest.len();
        let (since, until) = (header.since, header.until);
        if since.0 < 0 || since > until || until.0 > MAX_COUNTER {
            return Err(BundleError::BadRange { since, until });
        }
        Ok(BundleReader {
            header,
            body,
            position,
            changes_read: 0,
        })
    }

    /// The bundle's header.
    pub fn header(&self) -> &BundleHeader {
        &self.header
    }

    /// The next changeset, or None at the end (once the header's change count is confirmed).
    pub fn next_changes(&mut self) -> Result<Option<Vec<Change>>, BundleError> {
        let mut rest = &self.body[self.position..];
        if rest.is_empty() {
            let expected = self.header.change_count;
            if self.changes_read != expected {
                return Err(BundleError::CountMismatch {
                    expected,
                    found: self.changes_read,
                });
            }
            return Ok(None);
        }
        let changes = codec::decode_changeset(&mut rest)?;
        self.position = self.body.len() - rest.len();
        let range = self.header.since..=self.header.until;
        if let Some(outside) = changes
            .iter()
            .find(|c| !range.contains(&c.db_version) || c.db_version == self.header.since)
        {
            return Err(BundleError::ChangeOutsideRange(outside.db_version));
        }
        self.changes_read += changes.len() as u64;
        Ok(Some(changes))
    }
}

/// The compressed body, whole; memory grows with what it actually decompresses to, never with
/// what it claims.
fn decompress(stored: &[u8]) -> Result<Vec<u8>, BundleError> {
    let fail = |err: io::Error| BundleError::Decompress(err.to_string());
    let decoder = zstd::stream::read::Decoder::new(stored).map_err(fail)?;
    let mut body = Vec::new();
    decoder
        .take(MAX_BUNDLE_BYTES + 1)
        .read_to_end(&mut body)
        .map_err(fail)?;
    if body.len() as u64 > MAX_BUNDLE_BYTES {
        return Err(BundleError::TooLarge);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SchemaDesc, Seq, SiteId, Value};

    fn header(change_count: u64) -> BundleHeader {
        BundleHeader {
            format_version: FORMAT_VERSION,
            site_id: SiteId([1; 16]),
            since: DbVersion(0),
            until: DbVersion(2),
            change_count,
            schema: SchemaDesc::default(),
        }
    }

    fn change(db_version: i64) -> Change {
        Change {
            table: "t".into(),
            pk: vec![1],
            cid: "v".into(),
            val: Value::Blob(vec![db_version as u8; 100]),
            col_version: 1,
            db_version: DbVersion(db_version),
            site_id: SiteId([1; 16]),
            cl: 1,
            seq: Seq(0),
        }
    }

    fn bundle(changesets: &[Vec<Change>], claimed_count: u64) -> Vec<u8> {
        let mut writer = BundleWriter::start(Vec::new(), &header(claimed_count)).unwrap();
        for changes in changesets {
            writer.write_changes(changes).unwrap();
        }
        writer.finish().unwrap()
    }

    fn read_all(bytes: &[u8]) -> Result<Vec<Change>, BundleError> {
        let mut reader = BundleReader::open(bytes)?;
        let mut all = Vec::new();
        while let Some(changes) = reader.next_changes()? {
            all.extend(changes);
        }
        Ok(all)
    }

    #[test]
    fn round_trip() {
        let sets = vec![vec![change(1)], vec![change(2), change(2)]];
        let bytes = bundle(&sets, 3);
        assert_eq!(read_all(&bytes).unwrap(), sets.concat());
    }

    #[test]
    fn every_truncation_and_every_flipped_byte_is_refused() {
        let bytes = bundle(&[vec![change(1), change(2)]], 2);
        for cut in 0..bytes.len() {
            assert!(read_all(&bytes[..cut]).is_err(), "truncated at {cut}");
        }
        for index in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[index] ^= 1;
            assert!(read_all(&flipped).is_err(), "flipped byte {index}");
        }
    }

    #[test]
    fn a_wrong_count_is_refused() {
        let bytes = bundle(&[vec![change(1)]], 2);
        assert!(matches!(
            read_all(&bytes),
            Err(BundleError::CountMismatch {
                expected: 2,
                found: 1
            })
        ));
    }

    /// A bundle as builds before compression wrote it: format 1, the changesets as they are.
    fn uncompressed_bundle(changesets: &[Vec<Change>], count: u64) -> Vec<u8> {
        let header = BundleHeader {
            format_version: UNCOMPRESSED_FORMAT,
            ..header(count)
        };
        let mut bytes = MAGIC.to_vec();
        bytes.extend(codec::encode_bundle_header(&header));
        for changes in changesets {
            bytes.extend(codec::encode_changeset(changes));
        }
        let digest = Sha256::digest(&bytes);
        bytes.extend_from_slice(&digest);
        bytes
    }

    #[test]
    fn bundles_of_earlier_builds_are_still_read_and_new_ones_are_smaller() {
        let sets: Vec<Vec<Change>> = (1..=2).map(|v| vec![change(v); 50]).collect();
        let old = uncompressed_bundle(&sets, 100);
        assert_eq!(read_all(&old).unwrap(), sets.concat());
        let new = bundle(&sets, 100);
        assert_eq!(read_all(&new).unwrap(), sets.concat());
        assert!(new.len() * 10 < old.len(), "{} vs {}", new.len(), old.len());
        // Format 1 inside a compressed stream, or 2 outside one, is not what either writes.
        let mut mislabelled = MAGIC.to_vec();
        mislabelled.extend(codec::encode_bundle_header(&header(0)));
        let digest = Sha256::digest(&mislabelled);
        mislabelled.extend_from_slice(&digest);
        assert!(matches!(
            read_all(&mislabelled),
            Err(BundleError::UnsupportedFormat(2))
        ));
    }
}
