//! Answers too big for one message travel as fragments, fetched by index and checked by hash.

use sha2::{Digest, Sha256};

use super::compress::MAX_PAGE_BYTES;
use super::protocol::{Fragmented, Hash, MAX_ANSWER_BYTES, MAX_MESSAGE_BYTES};

/// Payload bytes per fragment: a message's limit less room for the envelope around them
/// (framing, hash and index take about 100 bytes; tests check every message against the limit).
pub const FRAGMENT_BYTES: usize = MAX_ANSWER_BYTES - 256;

/// The fewest payload bytes a fragment other than the last may carry.
pub const MIN_FRAGMENT_BYTES: usize = 1024;

/// The SHA-256 of `bytes`.
pub fn hash(bytes: &[u8]) -> Hash {
    Sha256::digest(bytes).into()
}

/// The manifest of `answer` cut into fragments.
pub fn manifest(answer: &[u8]) -> Fragmented {
    Fragmented {
        hash: hash(answer),
        total_len: answer.len() as u64,
        fragment_count: answer.len().div_ceil(FRAGMENT_BYTES) as u32,
    }
}

/// Fragment `index` of `answer`, or None past its end.
pub fn fragment(answer: &[u8], index: u32) -> Option<&[u8]> {
    let start = (index as usize).checked_mul(FRAGMENT_BYTES)?;
    if start >= answer.len() {
        return None;
    }
    Some(&answer[start..answer.len().min(start + FRAGMENT_BYTES)])
}

/// Why fragments do not make the answer their manifest promised.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[allow(missing_docs)] // each #[error] says what the variant means
pub enum ReassemblyError {
    #[error("fragmented answer of {0} bytes is over the {MAX_PAGE_BYTES}-byte limit")]
    TooLarge(u64),
    #[error("fragment manifest is inconsistent ({0} fragments for {1} bytes)")]
    BadManifest(u32, u64),
    #[error("fragment {0} does not fit the manifest")]
    BadFragment(u32),
    #[error("reassembled answer does not match its hash")]
    HashMismatch,
}

/// Collects the fragments of one answer. Memory is the answer's size, which the manifest
/// states and [`MAX_PAGE_BYTES`] bounds.
#[derive(Debug)]
pub struct Reassembly {
    manifest: Fragmented,
    parts: Vec<Option<Vec<u8>>>,
    received_bytes: u64,
    received: u32,
}

impl Reassembly {
    /// Starts collecting the answer `manifest` describes, after checking it is plausible.
    pub fn new(manifest: Fragmented) -> Result<Self, ReassemblyError> {
        let Fragmented {
            total_len,
            fragment_count,
            ..
        } = manifest;
        if total_len > MAX_PAGE_BYTES as u64 {
            return Err(ReassemblyError::TooLarge(total_len));
        }
        // Every fragment carries at most one message's worth and, but for the last, at least
        // MIN_FRAGMENT_BYTES: the count bounds the bookkeeping a manifest can make us allocate.
        let possible = total_len.div_ceil(MAX_MESSAGE_BYTES as u64)
            ..=total_len.div_ceil(MIN_FRAGMENT_BYTES as u64);
        if fragment_count == 0 || !possible.contains(&(fragment_count as u64)) {
            return Err(ReassemblyError::BadManifest(fragment_count, total_len));
        }
        Ok(Reassembly {
            parts: vec![None; fragment_count as usize],
            manifest,
            received_bytes: 0,
            received: 0,
        })
    }

    /// The manifest being filled.
    pub fn manifest(&self) -> &Fragmented {
        &self.manifest
    }

    /// Indexes still missing, in order.
    pub fn missing(&self) -> impl Iterator<Item = u32> + '_ {
        self.parts
            .iter()
            .enumerate()
            .filter(|(_, part)| part.is_none())
            .map(|(index, _)| index as u32)
    }

    /// How many fragments have arrived, of how many.
    pub fn progress(&self) -> (u32, u32) {
        (self.received, self.manifest.fragment_count)
    }

    /// Stores a fragment; a repeated one is ignored. Returns the whole answer once complete.
    pub fn add(&mut self, index: u32, bytes: Vec<u8>) -> Result<Option<Vec<u8>>, ReassemblyError> {
        let slot = self
            .parts
            .get_mut(index as usize)
            .ok_or(ReassemblyError::BadFragment(index))?;
        if slot.is_some() {
            return Ok(None);
        }
        if bytes.is_empty() || self.received_bytes + bytes.len() as u64 > self.manifest.total_len {
            return Err(ReassemblyError::BadFragment(index));
        }
        self.received_bytes += bytes.len() as u64;
        self.received += 1;
        *slot = Some(bytes);
        if self.received < self.manifest.fragment_count {
            return Ok(None);
        }
        if self.received_bytes != self.manifest.total_len {
            return Err(ReassemblyError::BadFragment(index));
        }
        let whole: Vec<u8> = self
            .parts
            .iter_mut()
            .flat_map(|p| p.take().unwrap_or_default())
            .collect();
        if hash(&whole) != self.manifest.hash {
            return Err(ReassemblyError::HashMismatch);
        }
        Ok(Some(whole))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_reassemble_in_any_order_with_repeats() {
        let answer: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let manifest = manifest(&answer);
        assert_eq!(manifest.fragment_count, 4);
        let mut reassembly = Reassembly::new(manifest.clone()).unwrap();
        let mut result = None;
        for index in [3, 1, 1, 0, 3, 2] {
            let bytes = fragment(&answer, index).unwrap().to_vec();
            if let Some(whole) = reassembly.add(index, bytes).unwrap() {
                result = Some(whole);
            }
        }
        assert_eq!(result.unwrap(), answer);
        assert!(fragment(&answer, 4).is_none());
    }

    #[test]
    fn lies_are_caught() {
        let answer = vec![7u8; 70_000];
        let good = manifest(&answer);
        let huge = Fragmented {
            total_len: u64::MAX,
            ..good.clone()
        };
        assert!(matches!(
            Reassembly::new(huge),
            Err(ReassemblyError::TooLarge(_))
        ));
        let zero = Fragmented {
            fragment_count: 0,
            ..good.clone()
        };
        assert!(Reassembly::new(zero).is_err());
        let mut reassembly = Reassembly::new(good.clone()).unwrap();
        assert!(reassembly.add(9, vec![1]).is_err());
        let mut tampered = Reassembly::new(good).unwrap();
        tampered
            .add(0, fragment(&answer, 0).unwrap().to_vec())
            .unwrap();
        tampered
            .add(1, fragment(&answer, 1).unwrap().to_vec())
            .unwrap();
        let mut last = fragment(&answer, 2).unwrap().to_vec();
        last[0] ^= 1;
        assert_eq!(tampered.add(2, last), Err(ReassemblyError::HashMismatch));
    }
}
