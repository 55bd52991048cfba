//! A deterministic pseudo-random stream (xorshift) for test and benchmark data: every run sees
//! the same bytes.

pub struct Noise(pub u64);

impl Noise {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// `count` words of `words`, separated by spaces.
    pub fn words(&mut self, words: &[&str], count: usize) -> String {
        (0..count)
            .map(|_| words[(self.next() % words.len() as u64) as usize])
            .collect::<Vec<_>>()
            .join(" ")
    }
}
