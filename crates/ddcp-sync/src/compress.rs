//! Compression of change pages. Chosen by measurement (benches/protocol.rs): zstd at a low level
//! shrinks realistic changesets well for little CPU; a page that does not shrink goes as is.

use super::codec::CodecError;

/// The largest page a peer may make us decompress or reassemble: a bound on what a hostile
/// peer can make us allocate. It also bounds the largest single value that replicates.
pub const MAX_PAGE_BYTES: usize = 256 << 20;

/// zstd level: 3 is zstd's default balance; higher levels cost much CPU for little gain here.
const ZSTD_LEVEL: i32 = 3;

/// How a page's changes are compressed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Compression {
    /// Sent as is.
    None,
    #[default]
    /// zstd, level 3.
    Zstd,
}

impl Compression {
    /// Compresses `bytes`; returns the compression actually used (none when it would not help).
    pub fn compress(self, bytes: Vec<u8>) -> (Compression, Vec<u8>) {
        match self {
            Compression::None => (Compression::None, bytes),
            Compression::Zstd => match zstd::bulk::compress(&bytes, ZSTD_LEVEL) {
                Ok(small) if small.len() < bytes.len() => (Compression::Zstd, small),
                _ => (Compression::None, bytes),
            },
        }
    }

    /// Undoes [`Compression::compress`], refusing output over [`MAX_PAGE_BYTES`]. Memory
    /// grows with the output actually produced, never with what the input claims.
    pub fn decompress(self, bytes: &[u8]) -> Result<Vec<u8>, CodecError> {
        match self {
            Compression::None => Ok(bytes.to_vec()),
            Compression::Zstd => {
                use std::io::Read;
                let fail = |err: std::io::Error| CodecError::Decompress(err.to_string());
                let decoder = zstd::stream::read::Decoder::new(bytes).map_err(fail)?;
                let mut out = Vec::new();
                decoder
                    .take(MAX_PAGE_BYTES as u64 + 1)
                    .read_to_end(&mut out)
                    .map_err(fail)?;
                if out.len() > MAX_PAGE_BYTES {
                    return Err(CodecError::Decompress(format!(
                        "more than {MAX_PAGE_BYTES} bytes"
                    )));
                }
                Ok(out)
            }
        }
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

    #[test]
    fn garbage_does_not_decompress() {
        assert!(Compression::Zstd.decompress(b"not zstd at all").is_err());
    }
}
