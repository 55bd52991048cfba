//! Compression of change pages. Chosen by measurement (benches/protocol.rs): zstd at a low level
//! shrinks realistic changesets well for little CPU; a page that does not shrink goes as is. A
//! big page is sampled first: one that would barely shrink goes as is, one mostly of
//! incompressible data is compressed at a faster level.

use super::codec::CodecError;

/// The largest page a peer may make us decompress or reassemble: a bound on what a hostile
/// peer can make us allocate. It also bounds the largest single value that replicates.
pub const MAX_PAGE_BYTES: usize = 256 << 20;

/// zstd level: 3 is zstd's default balance; higher levels cost much CPU for little gain here.
const ZSTD_LEVEL: i32 = 3;
/// zstd level for pages mostly of incompressible data (photos, compressed files, random keys
/// beside a little text): on such data level 1 runs about 2.7 times as fast as level 3 for an
/// output under 1% bigger (measured with `zstd -b` on benches/large.rs's rows), while on text
/// level 3's output is about 9% smaller, worth its time on a slow link.
const ZSTD_FAST_LEVEL: i32 = 1;

/// Pages at least this big are sampled before they are compressed whole.
const SAMPLED_FROM: usize = 256 << 10;
/// The samples: this many, this big, spread evenly over the page.
const SAMPLES: usize = 4;
const SAMPLE_BYTES: usize = 16 << 10;
/// Samples shrinking by less than this share: the page goes as is (zstd would cost more time
/// than the bytes it saves take on the wire).
const WORTHWHILE_SAVING: f64 = 0.1;
/// Samples shrinking by less than this share: the page is mostly incompressible, compressed
/// at [`ZSTD_FAST_LEVEL`].
const TEXT_LIKE_SAVING: f64 = 0.5;

/// How a page's changes are compressed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Compression {
    /// Sent as is.
    None,
    #[default]
    /// zstd: level 3, or 1 for a page mostly of incompressible data.
    Zstd,
}

impl Compression {
    /// Compresses `bytes`; returns the compression actually used (none when it would not help).
    pub fn compress(self, bytes: Vec<u8>) -> (Compression, Vec<u8>) {
        match self {
            Compression::None => (Compression::None, bytes),
            Compression::Zstd => match level_for(&bytes) {
                None => (Compression::None, bytes),
                Some(level) => match zstd::bulk::compress(&bytes, level) {
                    Ok(small) if small.len() < bytes.len() => (Compression::Zstd, small),
                    _ => (Compression::None, bytes),
                },
            },
        }
    }

    /// Undoes [`Compression::compress`], refusing output over [`MAX_PAGE_BYTES`]. Memory
    /// grows with the output actually produced, never with what the input claims.
    pub fn decompress(self, bytes: &[u8]) -> Result<Vec<u8>, CodecError> {
        self.decompress_at_most(bytes, MAX_PAGE_BYTES)
    }

    /// [`Compression::decompress`], refusing output over `limit` bytes.
    pub fn decompress_at_most(self, bytes: &[u8], limit: usize) -> Result<Vec<u8>, CodecError> {
        match self {
            Compression::None if bytes.len() > limit => {
                Err(CodecError::Decompress(format!("more than {limit} bytes")))
            }
            Compression::None => Ok(bytes.to_vec()),
            Compression::Zstd => {
                use std::io::Read;
                let fail = |err: std::io::Error| CodecError::Decompress(err.to_string());
                let decoder = zstd::stream::read::Decoder::new(bytes).map_err(fail)?;
                let mut out = Vec::new();
                decoder
                    .take(limit as u64 + 1)
                    .read_to_end(&mut out)
                    .map_err(fail)?;
                if out.len() > limit {
                    return Err(CodecError::Decompress(format!("more than {limit} bytes")));
                }
                Ok(out)
            }
        }
    }
}

/// The zstd level worth `bytes`' compression, or none, judged on a few samples of a big page
/// (a small one is compressed at [`ZSTD_LEVEL`]).
fn level_for(bytes: &[u8]) -> Option<i32> {
    if bytes.len() < SAMPLED_FROM {
        return Some(ZSTD_LEVEL);
    }
    let stride = (bytes.len() - SAMPLE_BYTES) / (SAMPLES - 1);
    let (mut sampled, mut compressed) = (0, 0);
    for start in (0..SAMPLES).map(|i| i * stride) {
        let sample = &bytes[start..start + SAMPLE_BYTES];
        sampled += sample.len();
        compressed += zstd::bulk::compress(sample, ZSTD_LEVEL).map_or(sample.len(), |c| c.len());
    }
    let saving = 1.0 - compressed as f64 / sampled as f64;
    if saving < WORTHWHILE_SAVING {
        None
    } else if saving < TEXT_LIKE_SAVING {
        Some(ZSTD_FAST_LEVEL)
    } else {
        Some(ZSTD_LEVEL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_skips_what_does_not_shrink() {
        let text = b"sensor-1|21.5|C|door open; ".repeat(100);
        let (used, small) = Compression::Zstd.compress(text.clone());
        assert_eq!(used, Compression::Zstd);
        assert!(small.len() < text.len() / 5);
        assert_eq!(used.decompress(&small).unwrap(), text);
        let noise: Vec<u8> = (0..64u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        assert_eq!(
            Compression::Zstd.compress(noise.clone()),
            (Compression::None, noise)
        );
    }

    /// `len` pseudo-random bytes (xorshift), the stream going on from `state`.
    fn noise_from(state: &mut u64, len: usize) -> Vec<u8> {
        (0..len)
            .map(|_| {
                *state ^= *state << 13;
                *state ^= *state >> 7;
                *state ^= *state << 17;
                *state as u8
            })
            .collect()
    }

    fn noise(len: usize) -> Vec<u8> {
        noise_from(&mut 0x9e37_79b9_7f4a_7c15, len)
    }

    /// Rows of `text` beside `random` bytes each, `len` bytes in all.
    fn rows(text: &[u8], random: usize, len: usize) -> Vec<u8> {
        let mut state = 0x2545_f491_4f6c_dd1d;
        let mut rows = Vec::new();
        let mut i = 0;
        while rows.len() < len {
            rows.extend_from_slice(text);
            rows.extend_from_slice(format!("{i}|").as_bytes());
            rows.extend(noise_from(&mut state, random));
            i += 1;
        }
        rows
    }

    #[test]
    fn big_pages_are_sampled_for_the_level_worth_their_compression() {
        let page = 2 * SAMPLED_FROM;
        // Photos: nothing to gain.
        assert_eq!(level_for(&noise(page)), None);
        let photos = noise(page);
        assert_eq!(
            Compression::Zstd.compress(photos.clone()),
            (Compression::None, photos)
        );
        // A random payload beside a table name, a title and a column: some gain, at the fast
        // level.
        let blobs = rows(b"blobs|payload|title of a photo of the sea|", 200, page);
        assert_eq!(level_for(&blobs), Some(ZSTD_FAST_LEVEL));
        // Bookmarks: text with a short random id.
        let bookmarks = rows(
            b"bookmarks|https://example.org/some/page|title of the page|",
            8,
            page,
        );
        assert_eq!(level_for(&bookmarks), Some(ZSTD_LEVEL));
        // A small page is not sampled.
        assert_eq!(level_for(&noise(1000)), Some(ZSTD_LEVEL));
        for page in [blobs, bookmarks] {
            let (used, small) = Compression::Zstd.compress(page.clone());
            assert_eq!(used, Compression::Zstd);
            assert_eq!(used.decompress(&small).unwrap(), page);
        }
    }

    #[test]
    fn garbage_does_not_decompress() {
        assert!(Compression::Zstd.decompress(b"not zstd at all").is_err());
        let (used, small) = Compression::Zstd.compress(vec![0; 10_000]);
        assert_eq!(used, Compression::Zstd);
        assert!(used.decompress_at_most(&small, 9_999).is_err());
        assert_eq!(
            used.decompress_at_most(&small, 10_000).unwrap().len(),
            10_000
        );
    }
}
