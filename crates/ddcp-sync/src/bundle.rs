//! The bundle file format of `ddcp bundle`: replication by file, like `git bundle`.
//!
//! ```text
//! "DDCPBNDL"              8 bytes of magic
//! BundleHeader            capnp message (see schema/ddcp.capnp)
//! Changeset ...           capnp messages, in (db_version, seq) order
//! SHA-256                 32 bytes over everything before it
//! ```
//! A reader checks the magic and the hash before it decodes anything, so a truncated or
//! corrupted file is refused whole.

use std::io::{self, Write};

use sha2::{Digest, Sha256};

use super::change::Change;
use super::codec::{self, BundleHeader, CodecError};
use super::ids::DbVersion;
use super::validate::MAX_COUNTER;

/// The first bytes of every bundle file.
pub const MAGIC: &[u8; 8] = b"DDCPBNDL";
/// The bundle format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
const HASH_LEN: usize = 32;

/// Why bytes are not a usable bundle.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // each #[error] says what the variant means
pub enum BundleError {
    #[error("not a ddcp bundle (no DDCPBNDL header)")]
    NotABundle,
    #[error("bundle is truncated or corrupted (checksum mismatch)")]
    Corrupted,
    #[error("bundle format {0} is not supported by this ddcp (it reads format {FORMAT_VERSION})")]
    UnsupportedFormat(u32),
    #[error("bundle says it holds {expected} changes but holds {found}")]
    CountMismatch { expected: u64, found: u64 },
    #[error("bundle is corrupted: {0}")]
    Codec(#[from] CodecError),
    #[error("bundle's version range {since}..={until} is invalid")]
    BadRange { since: DbVersion, until: DbVersion },
    #[error("bundle holds a change at db_version {0}, outside its stated range")]
    ChangeOutsideRange(DbVersion),
}

/// Writes a bundle: the header, then changesets, then the checksum in [`BundleWriter::finish`].
pub struct BundleWriter<W: Write> {
    out: W,
    hash: Sha256,
}

impl<W: Write> BundleWriter<W> {
    /// Starts a bundle on `out` with `header`.
    pub fn start(out: W, header: &BundleHeader) -> io::Result<Self> {
        let mut writer = BundleWriter {
            out,
            hash: Sha256::new(),
        };
        writer.write(MAGIC)?;
        writer.write(&codec::encode_bundle_header(header))?;
        Ok(writer)
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.hash.update(bytes);
        self.out.write_all(bytes)
    }

    /// Appends one changeset message.
    pub fn write_changes(&mut self, changes: &[Change]) -> io::Result<()> {
        self.write(&codec::encode_changeset(changes))
    }

    /// Writes the checksum and hands back the output.
    pub fn finish(mut self) -> io::Result<W> {
        let digest = self.hash.finalize();
        self.out.write_all(&digest)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Reads a bundle whose bytes are all in memory and whose checksum has been verified.
pub struct BundleReader<'a> {
    header: BundleHeader,
    rest: &'a [u8],
    changes_read: u64,
}

impl<'a> BundleReader<'a> {
    /// Checks the magic, the checksum and the format of `bytes`, and decodes the header.
    pub fn open(bytes: &'a [u8]) -> Result<Self, BundleError> {
        if !bytes.starts_with(MAGIC) {
            return Err(BundleError::NotABundle);
        }
        if bytes.len() < MAGIC.len() + HASH_LEN {
            return Err(BundleError::Corrupted);
        }
        let (body, digest) = bytes.split_at(bytes.len() - HASH_LEN);
        if Sha256::digest(body).as_slice() != digest {
            return Err(BundleError::Corrupted);
        }
        let mut rest = &body[MAGIC.len()..];
        let header = codec::decode_bundle_header(&mut rest)?;
        if header.format_version != FORMAT_VERSION {
            return Err(BundleError::UnsupportedFormat(header.format_version));
        }
        let (since, until) = (header.since, header.until);
        if since.0 < 0 || since > until || until.0 > MAX_COUNTER {
            return Err(BundleError::BadRange { since, until });
        }
        Ok(BundleReader {
            header,
            rest,
            changes_read: 0,
        })
    }

    /// The bundle's header.
    pub fn header(&self) -> &BundleHeader {
        &self.header
    }

    /// The next changeset, or None at the end (once the header's change count is confirmed).
    pub fn next_changes(&mut self) -> Result<Option<Vec<Change>>, BundleError> {
        if self.rest.is_empty() {
            let expected = self.header.change_count;
            if self.changes_read != expected {
                return Err(BundleError::CountMismatch {
                    expected,
                    found: self.changes_read,
                });
            }
            return Ok(None);
        }
        let changes = codec::decode_changeset(&mut self.rest)?;
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
}
