//! Gives the memory that big work freed back to the system.
//!
//! glibc's malloc keeps what a thread frees in that thread's arena, for the thread to use
//! again, and gives a page back only when it lies at the top of the arena. ddcp's big work
//! (serving and applying pages of about a megabyte, on the DbActor's thread, tokio's workers
//! and Veilid's) frees buffers in the middle of several arenas, and the process's resident
//! memory grows with the work though what it holds does not: measured with heaptrack on a
//! 1 GiB exchange of 1,000 transactions (benches/large.rs), 62 MiB of heap at the peak in a
//! 104 MiB process. A look every [`EVERY`] gives the freed pages back once [`WORTH_IT`] more
//! lies free; the same exchange then peaks at 86-90 MiB, as fast within the run-to-run noise
//! (docs/benchmarks.md). One arena for all threads would do as much, but costs the serving
//! thread a quarter of its speed (it waits for the arena's lock).
//!
//! A look walks every arena of the allocator (`mallinfo2`), which a process of many threads
//! pays for: a host of a hundred idle databases spent a tenth of its idle CPU on four looks a
//! second (benches/hosting.rs). Memory worth giving back is freed only by work, so a look waits
//! until the process has spent [`WORK_BETWEEN_LOOKS`] of processor time since the last one: a
//! process busy on 40% of a core or more looks every [`EVERY`] as before, a less busy one less
//! often, an idle one every few seconds or less often.
//!
//! glibc 2.33 or later (for `mallinfo2`); other C libraries return memory their own way, and
//! there this does nothing.

use std::time::Duration;

/// How often the free memory is looked at.
pub const EVERY: Duration = Duration::from_millis(250);

/// Processor time the process spends (all its threads) between two looks, at least: about what
/// building or applying a page of a megabyte or two costs, the least work that frees
/// [`WORTH_IT`].
pub const WORK_BETWEEN_LOOKS: Duration = Duration::from_millis(100);

/// Memory newly free in the allocator, since it last gave some back, below which a look does
/// nothing: an idle process is not made to fault pages back in for little.
pub const WORTH_IT: usize = 4 << 20;

/// Starts a thread that, every [`EVERY`] after the process did [`WORK_BETWEEN_LOOKS`] of work,
/// gives the allocator's free memory back to the system when [`WORTH_IT`] more of it lies free
/// than at the last time. The first call starts
/// it, later ones do nothing; it lives as long as the process (it holds nothing).
pub fn give_back_freed_memory() {
    static STARTED: std::sync::Once = std::sync::Once::new();
    if SUPPORTED {
        STARTED.call_once(start_giving_back);
    }
}

fn start_giving_back() {
    let started = std::thread::Builder::new()
        .name("ddcp-memory".into())
        .spawn(|| {
            let mut lookout = Lookout::default();
            loop {
                std::thread::sleep(EVERY);
                if lookout.worked_since_last_look(process_cpu_time())
                    && lookout.worth_giving_back(free_bytes())
                {
                    give_back();
                }
            }
        });
    if let Err(err) = started {
        // Only memory is at stake: ddcp works as before without it.
        tracing::debug!(target: "ddcp", error = %err, "No thread to give freed memory back");
    }
}

/// Whether freed memory is worth giving back. The allocator still counts what it gave back
/// as free (only its pages are gone), so what counts is how much more is free than after the
/// last time; free memory taken up again since lowers that mark.
#[derive(Debug, Default)]
struct Lookout {
    free_after_last: usize,
    cpu_at_last_look: Duration,
}

impl Lookout {
    /// Whether the process spent [`WORK_BETWEEN_LOOKS`] since the last look, given its processor
    /// time so far (`None` when it cannot be read: then every time).
    fn worked_since_last_look(&mut self, cpu: Option<Duration>) -> bool {
        let Some(cpu) = cpu else { return true };
        let worked = cpu.saturating_sub(self.cpu_at_last_look) >= WORK_BETWEEN_LOOKS;
        if worked {
            self.cpu_at_last_look = cpu;
        }
        worked
    }

    fn worth_giving_back(&mut self, free: usize) -> bool {
        self.free_after_last = self.free_after_last.min(free);
        let worth_it = free - self.free_after_last > WORTH_IT;
        if worth_it {
            self.free_after_last = free;
        }
        worth_it
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
const SUPPORTED: bool = true;
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
const SUPPORTED: bool = false;

/// The processor time all the process's threads have spent so far.
fn process_cpu_time() -> Option<Duration> {
    use nix::time::{ClockId, clock_gettime};
    let spent = clock_gettime(ClockId::CLOCK_PROCESS_CPUTIME_ID).ok()?;
    Some(Duration::from(spent))
}

/// The bytes the allocator holds free.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)] // glibc's own call, which takes no pointer and may be made any time.
fn free_bytes() -> usize {
    // SAFETY: mallinfo2 only reads the allocator's state, under its locks, from any thread.
    unsafe { nix::libc::mallinfo2() }.fordblks
}

/// Gives the pages of the allocator's free memory back to the system, in every arena.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)] // as above
fn give_back() {
    // SAFETY: malloc_trim only adjusts the allocator's own state, under its locks; 0 keeps
    // no padding at the top of the main arena.
    unsafe { nix::libc::malloc_trim(0) };
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn free_bytes() -> usize {
    0
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn give_back() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_only_after_enough_work() {
        let mut lookout = Lookout::default();
        let ms = Duration::from_millis;
        assert!(
            !lookout.worked_since_last_look(Some(ms(40))),
            "an idle start"
        );
        assert!(lookout.worked_since_last_look(Some(ms(100))));
        // Counted from the last look, not from the last time asked.
        assert!(!lookout.worked_since_last_look(Some(ms(150))));
        assert!(!lookout.worked_since_last_look(Some(ms(199))));
        assert!(lookout.worked_since_last_look(Some(ms(200))));
        assert!(
            lookout.worked_since_last_look(Some(ms(900))),
            "busy: every time"
        );
        assert!(lookout.worked_since_last_look(None), "unknown: every time");
        assert!(!lookout.worked_since_last_look(Some(ms(950))));
    }

    #[test]
    fn the_process_cpu_time_counts_every_thread() {
        let before = process_cpu_time().unwrap();
        // Another thread spends 60 ms of its own processor time.
        let spin = || {
            use nix::time::{ClockId, clock_gettime};
            let own = || Duration::from(clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).unwrap());
            let mut x = 0u64;
            while own() < Duration::from_millis(60) {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        };
        std::thread::spawn(spin).join().unwrap();
        assert!(process_cpu_time().unwrap() - before >= Duration::from_millis(60));
    }

    #[test]
    fn gives_back_only_what_came_free_since_the_last_time() {
        let mut lookout = Lookout::default();
        assert!(!lookout.worth_giving_back(WORTH_IT), "a little is kept");
        assert!(lookout.worth_giving_back(3 * WORTH_IT));
        assert!(
            !lookout.worth_giving_back(3 * WORTH_IT),
            "given back already, though the allocator still counts it free"
        );
        // Taken up again, then freed again: its pages are back, and worth giving back again.
        assert!(!lookout.worth_giving_back(WORTH_IT / 2));
        assert!(lookout.worth_giving_back(3 * WORTH_IT));
    }

    /// Buffers freed in the middle of an arena (blocks kept between them pin the space around
    /// them) are given back: the process's resident memory falls by most of them. On a thread
    /// of its own, whose arena is carved in order; 64 MiB, so that what the tests running
    /// beside it allocate meanwhile cannot make up the difference.
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn freed_buffers_in_the_middle_are_given_back() {
        const BUFFERS: usize = 640;
        const BUFFER: usize = 100 << 10; // below glibc's threshold for a mapping of its own
        const PIN: usize = 4 << 10; // past glibc's per-thread caches: carved in between
        let (before, after) = std::thread::spawn(|| {
            let mut big = Vec::new();
            let mut pins = Vec::new();
            for _ in 0..BUFFERS {
                big.push(vec![1u8; BUFFER]);
                pins.push(vec![2u8; PIN]);
            }
            drop(big);
            let before = resident_bytes();
            give_back();
            let after = resident_bytes();
            drop(pins);
            (before, after)
        })
        .join()
        .unwrap();
        let freed = BUFFERS * BUFFER;
        assert!(
            before.saturating_sub(after) > freed / 2,
            "{freed} bytes freed; resident before {before}, after {after}"
        );
    }

    /// The process's resident memory, from the kernel's own count (in KiB there).
    fn resident_bytes() -> usize {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let kib: usize = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap();
        kib * 1024
    }
}
