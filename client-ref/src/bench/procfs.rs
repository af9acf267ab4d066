//! CPU time and resident memory of a process, read from Linux's `/proc`: the broker's
//! (`--broker-pid`) and the generator's own.

use std::time::Duration;

/// One reading of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// CPU time (user + system) of all its threads so far.
    pub cpu: Duration,
    /// Resident set size in KiB.
    pub rss_kib: u64,
}

/// Read `/proc/PID`: `None` if the process does not exist (or this is not Linux).
///
/// CPU time is the sum of the threads' scheduler run times (`task/*/schedstat`,
/// nanoseconds), which resolves the few milliseconds a broker spends at a low message
/// rate; where schedstat is missing it falls back to `stat`'s utime + stime (clock ticks,
/// 10 ms). Threads that exited between two samples are missing from the first method.
pub fn sample(pid: u32) -> Option<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib = parse_status_rss(&status)?;
    let cpu = schedstat_cpu(pid).or_else(|| stat_cpu(pid))?;
    Some(Sample { cpu, rss_kib })
}

/// The generator's own process.
pub fn own() -> Option<Sample> {
    sample(std::process::id())
}

fn schedstat_cpu(pid: u32) -> Option<Duration> {
    let mut nanos: u64 = 0;
    let mut any = false;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
        // A thread may exit between listing and reading.
        let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) else { continue };
        if let Some(run) = text.split_whitespace().next().and_then(|v| v.parse::<u64>().ok()) {
            nanos = nanos.saturating_add(run);
            any = true;
        }
    }
    any.then(|| Duration::from_nanos(nanos))
}

/// Clock ticks per second of `stat`'s times (USER_HZ, 100 on Linux).
const USER_HZ: u64 = 100;

fn stat_cpu(pid: u32) -> Option<Duration> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let ticks = parse_stat_ticks(&text)?;
    Some(Duration::from_millis(ticks.saturating_mul(1000 / USER_HZ)))
}

/// utime + stime from `/proc/PID/stat` (fields 14 and 15; the command name in
/// parentheses may contain spaces, so fields are counted after its closing parenthesis).
fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let after = stat.get(stat.rfind(')')? + 1..)?;
    let mut fields = after.split_whitespace();
    // Fields after the name start at field 3 (state); utime is field 14.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime.saturating_add(stime))
}

fn parse_status_rss(status: &str) -> Option<u64> {
    let value = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    value.trim().trim_end_matches("kB").trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_spaces_in_the_name() {
        let stat = "1234 (my broker) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 4 0 100 1000 200";
        assert_eq!(parse_stat_ticks(stat), Some(300));
        assert_eq!(parse_stat_ticks("garbage"), None);
    }

    #[test]
    fn parses_rss() {
        assert_eq!(parse_status_rss("Name:\tx\nVmRSS:\t   12345 kB\nThreads:\t4\n"), Some(12345));
        assert_eq!(parse_status_rss("Name:\tx\n"), None);
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn samples_this_process() {
        let first = own().expect("/proc/self");
        // Burn a little CPU so that the counter moves.
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(30) {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        let second = own().expect("/proc/self");
        assert!(second.cpu > first.cpu, "{first:?} then {second:?}");
        assert!(second.rss_kib > 0);
    }
}
