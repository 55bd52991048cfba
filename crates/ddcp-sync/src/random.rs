//! Random bytes from the operating system, for keys and nonces.

/// `N` random bytes.
pub fn bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // Linux's getrandom(2) fails only on a kernel without it (before 3.17): not one ddcp runs on.
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    bytes
}
