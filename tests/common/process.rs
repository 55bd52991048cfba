//! What a process (a `ddcp serve`) spends, from /proc.

use std::time::Duration;

/// The user and system CPU time process `pid` used so far (/proc/PID/stat, in the 100 Hz
/// ticks Linux reports there).
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command's closing parenthesis: state is field 3, utime 14, stime 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

/// Process `pid`'s resident memory now and at its peak, in KiB.
pub fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Process `pid`'s resident memory now and at its peak, in MiB.
pub fn memory_mib(pid: u32) -> (u64, u64) {
    let (rss, peak) = memory_kib(pid);
    (rss / 1024, peak / 1024)
}
