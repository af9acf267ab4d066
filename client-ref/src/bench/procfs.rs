//! CPU time and resident memory of a process, read from Linux's `/proc`: the broker's
//! (`--broker-pid`) and the generator's own.

use std::time::Duration;

/// One reading of a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// CPU time (user + system) of all its threads so far.
    pub cpu: Duration,
    /// Resident set size in KiB.
    pub rss_kib: u64,
    /// CPU time of each thread (id, time), where schedstat is available.
    pub threads: Vec<(u32, Duration)>,
}

impl Sample {
    /// The largest share of `wall` one thread spent on the CPU since `earlier` (1.0: a
    /// thread busy all the time), if threads were read.
    pub fn busiest_thread_since(&self, earlier: &Self, wall: Duration) -> Option<f64> {
        if wall.is_zero() || self.threads.is_empty() {
            return None;
        }
        let before = |tid: u32| earlier.threads.iter().find(|(t, _)| *t == tid).map_or(Duration::ZERO, |(_, d)| *d);
        let busiest = self.threads.iter().map(|&(tid, cpu)| cpu.saturating_sub(before(tid))).max()?;
        Some(busiest.as_secs_f64() / wall.as_secs_f64())
    }
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
    let threads = threads_cpu(pid).unwrap_or_default();
    let cpu = if threads.is_empty() { stat_cpu(pid)? } else { threads.iter().map(|(_, d)| *d).sum() };
    Some(Sample { cpu, rss_kib, threads })
}

/// The generator's own process.
pub fn own() -> Option<Sample> {
    sample(std::process::id())
}

fn threads_cpu(pid: u32) -> Option<Vec<(u32, Duration)>> {
    let mut threads = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
        let Some(tid) = task.file_name().to_str().and_then(|t| t.parse::<u32>().ok()) else { continue };
        // A thread may exit between listing and reading.
        let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) else { continue };
        if let Some(run) = text.split_whitespace().next().and_then(|v| v.parse::<u64>().ok()) {
            threads.push((tid, Duration::from_nanos(run)));
        }
    }
    Some(threads)
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
        let busiest = second.busiest_thread_since(&first, start.elapsed()).expect("schedstat");
        assert!(busiest > 0.0 && busiest <= 1.5, "{busiest}");
    }

    #[test]
    fn the_busiest_thread_counts_new_threads_whole() {
        let at = |threads: Vec<(u32, u64)>| Sample {
            cpu: Duration::ZERO,
            rss_kib: 1,
            threads: threads.into_iter().map(|(t, ms)| (t, Duration::from_millis(ms))).collect(),
        };
        let before = at(vec![(1, 500), (2, 100)]);
        let after = at(vec![(1, 900), (2, 200), (3, 700)]);
        assert_eq!(after.busiest_thread_since(&before, Duration::from_secs(1)), Some(0.7));
        assert_eq!(after.busiest_thread_since(&before, Duration::ZERO), None);
    }
}
