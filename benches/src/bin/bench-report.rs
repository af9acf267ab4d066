//! Write `benches/RESULTS.md` from the last `cargo bench --bench codec` run.
//!
//! ```text
//! cargo bench -p mqttkit-benches --bench codec && cargo run -p mqttkit-benches --release --bin bench-report
//! ```
//!
//! (Pass the same `--features` to both commands, e.g. `--features peer-ntex`.)
//!
//! * Times: every `<criterion dir>/<group>/<function>/new/benchmark.json`
//!   whose group is `decode/<sample>` or `encode/<sample>`, with the median
//!   (`median.point_estimate`, ns per iteration) from `estimates.json` next to
//!   it, divided by the packets per iteration (10,000 for the streams).
//! * Allocations: measured here, with `alloc_counter::CountingAlloc` as the
//!   global allocator, by running every (peer, sample) case once more
//!   (warm-up call, then one counted call; see `peers::peer_cases!`).
//! * Machine: `nproc`, the CPU model from `/proc/cpuinfo`, `rustc -V`, the date.
//!
//! Options: `--criterion <dir>` (default `$CARGO_TARGET_DIR/criterion`, else
//! `<workspace>/target/criterion`), `--out <file>` (default
//! `benches/RESULTS.md`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use mqttkit_benches::alloc_counter::{self, CountingAlloc};
use mqttkit_benches::peers::{self, memcpy};
use mqttkit_benches::samples::{self, Sample};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc::new();

/// Codecs that are ours or baselines, i.e. not "peers" for the ratios.
const OURS: [&str; 2] = ["mqttkit", "mqttkit_vectored"];
const MEMCPY: &str = "memcpy";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Dir {
    Decode,
    Encode,
}

impl Dir {
    fn name(self) -> &'static str {
        match self {
            Dir::Decode => "decode",
            Dir::Encode => "encode",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Timing {
    /// Median ns per packet.
    ns: f64,
    /// Modification time of `estimates.json`, seconds since the epoch.
    mtime: u64,
}

type Key = (Dir, &'static str, String); // (direction, sample, codec)

fn main() {
    let (criterion_dir, out) = args();
    let samples = samples::all();
    let timings = read_criterion(&criterion_dir, &samples);
    if timings.is_empty() {
        eprintln!(
            "no benchmark results under {}; run `cargo bench -p mqttkit-benches --bench codec` first",
            criterion_dir.display()
        );
        std::process::exit(1);
    }
    assert!(alloc_counter::is_installed(), "counting allocator not installed");
    let allocs = measure_allocations(&samples);
    let md = render(&samples, &timings, &allocs);
    std::fs::write(&out, md).unwrap_or_else(|e| panic!("writing {}: {e}", out.display()));
    eprintln!("wrote {} ({} timings)", out.display(), timings.len());
}

fn args() -> (PathBuf, PathBuf) {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.parent().unwrap_or(manifest).join("target"));
    let mut criterion = target.join("criterion");
    let mut out = manifest.join("RESULTS.md");
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--criterion" => criterion = it.next().expect("--criterion <dir>").into(),
            "--out" => out = it.next().expect("--out <file>").into(),
            _ => {
                eprintln!("usage: bench-report [--criterion <dir>] [--out <file>]");
                std::process::exit(2);
            }
        }
    }
    (criterion, out)
}

// ---------------------------------------------------------------------------
// Criterion output
// ---------------------------------------------------------------------------

fn read_criterion(dir: &Path, samples: &[Sample]) -> BTreeMap<Key, Timing> {
    let mut found = Vec::new();
    find_files(dir, "benchmark.json", &mut found);
    let mut out = BTreeMap::new();
    for path in found {
        let Some(new) = path.parent().filter(|p| p.ends_with("new")) else { continue };
        let Some(meta) = read_json(&path) else { continue };
        let (Some(group), Some(function)) = (meta["group_id"].as_str(), meta["function_id"].as_str()) else {
            continue;
        };
        let Some((dir_name, sample_name)) = group.split_once('/') else { continue };
        let d = match dir_name {
            "decode" => Dir::Decode,
            "encode" => Dir::Encode,
            _ => continue,
        };
        let Some(sample) = samples.iter().find(|s| s.name == sample_name) else { continue };
        let estimates = new.join("estimates.json");
        let Some(est) = read_json(&estimates) else { continue };
        let Some(median) = est["median"]["point_estimate"].as_f64() else { continue };
        let mtime = std::fs::metadata(&estimates)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        let ns = median / sample.expect.packets as f64;
        out.insert((d, sample.name, function.to_string()), Timing { ns, mtime });
    }
    out
}

fn find_files(dir: &Path, name: &str, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            find_files(&p, name, out);
        } else if p.file_name().is_some_and(|n| n == name) {
            out.push(p);
        }
    }
}

fn read_json(path: &Path) -> Option<serde_json::Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

// ---------------------------------------------------------------------------
// Allocations
// ---------------------------------------------------------------------------

fn measure_allocations(samples: &[Sample]) -> BTreeMap<Key, f64> {
    let mut out = BTreeMap::new();
    let mut buf = memcpy::output();
    for s in samples {
        let copy = alloc_counter::allocs_per_op(1, || memcpy::copy(s.bytes, &mut buf));
        out.insert((Dir::Decode, s.name, MEMCPY.to_string()), copy);
        if !s.class.is_stream() {
            out.insert((Dir::Encode, s.name, MEMCPY.to_string()), copy);
        }
    }
    for peer in peers::all() {
        for s in samples {
            if peers::known_rejection(peer.name, s.name).is_some() {
                continue;
            }
            let Some(case) = peer.case(s.class) else { continue };
            let (r, stats) = (case.decode_allocs)(s.bytes);
            r.unwrap_or_else(|e| panic!("{} decode {}: {e}", peer.name, s.name));
            out.insert((Dir::Decode, s.name, peer.name.to_string()), stats.per_op(s.expect.packets));
            if let Some(f) = case.encode_allocs {
                let (r, stats) = f(s.bytes);
                r.unwrap_or_else(|e| panic!("{} encode {}: {e}", peer.name, s.name));
                out.insert((Dir::Encode, s.name, peer.name.to_string()), stats.per_op(1));
            }
        }
    }
    // The vectored encode, as benchmarked (64 KiB PUBLISH).
    use peers::mqttkit;
    let s = samples::by_name("publish_v4_64k");
    let p = mqttkit::prepare_publish_v4(s.bytes).expect("mqttkit prepares the 64 KiB PUBLISH");
    let mut head = mqttkit::output();
    let _ = mqttkit::encode_vectored_publish_v4(&p, &mut head);
    mqttkit::reset_output(&mut head);
    let n = alloc_counter::allocs_per_op(1, || mqttkit::encode_vectored_publish_v4(&p, &mut head).map(|r| r.0));
    out.insert((Dir::Encode, s.name, OURS[1].to_string()), n);
    out
}

// ---------------------------------------------------------------------------
// Machine
// ---------------------------------------------------------------------------

fn command(cmd: &str, args: &[&str]) -> Option<String> {
    let o = std::process::Command::new(cmd).args(args).output().ok()?;
    o.status.success().then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

fn machine() -> Vec<(&'static str, String)> {
    let nproc = command("nproc", &[]).unwrap_or_else(|| {
        std::thread::available_parallelism().map_or("?".into(), |n| format!("{n} (available_parallelism)"))
    });
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown".to_string(), |(_, v)| v.trim().to_string());
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc = command(&rustc, &["-V"]).unwrap_or_else(|| "unknown".into());
    let kernel = command("uname", &["-sr"]).unwrap_or_else(|| "unknown".into());
    // The 5- and 15-minute averages cover the benchmark run that just ended: on a
    // shared machine they say how much other work competed with it.
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" / "))
        .unwrap_or_else(|_| "unknown".into());
    vec![
        ("CPUs (`nproc`)", nproc),
        ("CPU", cpu),
        ("rustc", rustc),
        ("kernel", kernel),
        ("load average 1 / 5 / 15 min (at report time)", load),
    ]
}

/// `YYYY-MM-DD HH:MM UTC` (civil-from-days, proleptic Gregorian).
fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02} UTC", rem / 3600, rem % 3600 / 60)
}

// ---------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------

fn fmt_ns(ns: f64) -> String {
    if ns >= 10_000.0 {
        format!("{:.1} µs", ns / 1000.0)
    } else if ns >= 100.0 {
        format!("{ns:.0} ns")
    } else {
        format!("{ns:.1} ns")
    }
}

fn fmt_allocs(a: Option<f64>) -> String {
    match a {
        None => "?".into(),
        Some(a) if a == a.trunc() => format!("{a:.0}"),
        Some(a) => format!("{a:.2}"),
    }
}

fn fmt_ratio(r: f64) -> String {
    if r >= 10.0 { format!("{r:.0}×") } else { format!("{r:.2}×") }
}

/// "1.80× faster than x" / "1.25× slower than x".
fn speedup(ours: f64, theirs: f64, name: &str) -> String {
    if ours <= theirs {
        format!("{} faster than {name}", fmt_ratio(theirs / ours))
    } else {
        format!("{} slower than {name}", fmt_ratio(ours / theirs))
    }
}

fn is_peer(codec: &str) -> bool {
    codec != MEMCPY && !OURS.contains(&codec)
}

struct Table<'a> {
    timings: &'a BTreeMap<Key, Timing>,
    allocs: &'a BTreeMap<Key, f64>,
}

impl Table<'_> {
    fn rows(&self, d: Dir, sample: &str) -> Vec<(&str, Timing)> {
        let mut v: Vec<_> = self
            .timings
            .iter()
            .filter(|((dd, s, _), _)| *dd == d && *s == sample)
            .map(|((_, _, c), t)| (c.as_str(), *t))
            .collect();
        v.sort_by(|a, b| a.1.ns.total_cmp(&b.1.ns));
        v
    }

    fn get(&self, d: Dir, sample: &'static str, codec: &str) -> Option<Timing> {
        self.timings.get(&(d, sample, codec.to_string())).copied()
    }

    fn allocs(&self, d: Dir, sample: &'static str, codec: &str) -> Option<f64> {
        self.allocs.get(&(d, sample, codec.to_string())).copied()
    }

    /// Fastest other crate (not mqttkit, not memcpy): (name, timing).
    fn fastest_peer(&self, d: Dir, sample: &str) -> Option<(&str, Timing)> {
        self.rows(d, sample).into_iter().find(|(c, _)| is_peer(c))
    }
}

fn render(samples: &[Sample], timings: &BTreeMap<Key, Timing>, allocs: &BTreeMap<Key, f64>) -> String {
    let t = Table { timings, allocs };
    let peers_list = peers::all();
    let mut codecs: Vec<&str> = vec![MEMCPY];
    codecs.extend(peers_list.iter().map(|p| p.name));
    // Codecs with results but not compiled into this report (other features).
    for (_, _, c) in timings.keys() {
        if !codecs.contains(&c.as_str()) && !OURS.contains(&c.as_str()) {
            codecs.push(c);
        }
    }
    codecs.sort_by_key(|c| codecs_order(c));
    codecs.dedup();

    let mut md = String::new();
    let w = &mut md;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (first, last) = timings.values().fold((u64::MAX, 0), |(a, b), t| (a.min(t.mtime), b.max(t.mtime)));
    let stale: Vec<_> = timings.iter().filter(|(_, t)| t.mtime + 3600 < last).map(|(k, _)| k).collect();

    let _ = writeln!(w, "# mqttkit-codec benchmark results\n");
    let features = if cfg!(feature = "peer-ntex") { " --features peer-ntex" } else { "" };
    let _ = writeln!(
        w,
        "Generated by `cargo bench -p mqttkit-benches --bench codec{features} && cargo run -p mqttkit-benches \
         --release{features} --bin bench-report` (see `benches/benches/codec.rs` for the method, `benches/PROFILE.md` \
         for where mqttkit's time goes). Do not edit by hand.\n"
    );
    let _ = writeln!(w, "| | |\n|---|---|");
    let _ = writeln!(w, "| report date | {} |", utc(now));
    let _ = writeln!(w, "| measured | {} – {} |", utc(first), utc(last));
    for (k, v) in machine() {
        let _ = writeln!(w, "| {k} | {v} |");
    }
    let _ = writeln!(w, "| criterion | warm-up 0.5 s, measurement 1.5 s, 30 samples; **median** shown |");
    let _ = writeln!(w, "| profile | `bench` (= release, `debug = true`), system allocator for timings |");
    let crates: Vec<String> = peers_list
        .iter()
        .map(|p| format!("`{}` = {}", p.name, p.krate))
        .chain(["`memcpy` = copy of the same bytes into a preallocated `Vec`".to_string()])
        .collect();
    let _ = writeln!(w, "| codecs | {} |", crates.join("; "));
    if !stale.is_empty() {
        let _ = writeln!(
            w,
            "\n**Warning:** {} result(s) are more than an hour older than the rest (an earlier run): {}.",
            stale.len(),
            stale.iter().map(|(d, s, c)| format!("{}/{s}/{c}", d.name())).collect::<Vec<_>>().join(", ")
        );
    }

    targets(w, samples, &t);

    for d in [Dir::Decode, Dir::Encode] {
        let _ = writeln!(
            w,
            "\n## {} — median time per packet (allocations per packet)\n",
            if d == Dir::Decode { "Decode" } else { "Encode" }
        );
        if d == Dir::Decode {
            let _ = writeln!(
                w,
                "Streams: 10,000 packets through each codec's framing API, time and allocations divided by \
                 10,000. `—` = class not supported, `rejects` = valid sample refused (`peers::KNOWN_REJECTIONS`)."
            );
        } else {
            let _ = writeln!(
                w,
                "Into a preallocated buffer, validation included where the codec validates. \
                 `mqttkit_vectored`: header written, payload borrowed for a vectored write (64 KiB only)."
            );
        }
        let mut cols: Vec<&str> = codecs.clone();
        if d == Dir::Encode {
            cols.insert(2, OURS[1]);
        }
        let _ = write!(w, "\n| sample | bytes |");
        for c in &cols {
            let _ = write!(w, " {c} |");
        }
        let _ = writeln!(w, " mqttkit vs fastest peer |");
        let _ = writeln!(w, "|---|---:|{}---|", "---:|".repeat(cols.len()));
        for s in samples {
            if d == Dir::Encode && s.class.is_stream() {
                continue;
            }
            if t.rows(d, s.name).is_empty() {
                continue;
            }
            let _ = write!(w, "| {} | {} |", s.name, s.bytes.len());
            for c in &cols {
                let cell = match t.get(d, s.name, c) {
                    Some(tm) => {
                        let a = fmt_allocs(t.allocs(d, s.name, c));
                        if c.starts_with("mqttkit") {
                            format!("**{}** ({a})", fmt_ns(tm.ns))
                        } else {
                            format!("{} ({a})", fmt_ns(tm.ns))
                        }
                    }
                    None if peers::known_rejection(c, s.name).is_some() => "rejects".into(),
                    None => "—".into(),
                };
                let _ = write!(w, " {cell} |");
            }
            // The faster mqttkit form: the vectored encode is what compares with a
            // peer that does not copy large payloads either (ntex-mqtt's `BytePages`).
            let ours = OURS
                .iter()
                .filter_map(|c| t.get(d, s.name, c).map(|tm| (*c, tm)))
                .min_by(|a, b| a.1.ns.total_cmp(&b.1.ns));
            let speedup = match (ours, t.fastest_peer(d, s.name)) {
                (Some((c, m)), Some((p, pt))) => {
                    let note = if c == OURS[1] { " (vectored)" } else { "" };
                    format!("{}{note}", speedup(m.ns, pt.ns, p))
                }
                _ => "—".into(),
            };
            let _ = writeln!(w, " {speedup} |");
        }
    }

    for d in [Dir::Decode, Dir::Encode] {
        let _ = writeln!(w, "\n## {} — every result\n", if d == Dir::Decode { "Decode" } else { "Encode" });
        let _ = writeln!(
            w,
            "`÷ fastest peer`: time divided by the fastest other crate's time on the same sample (below 1 = \
             faster); `÷ memcpy`: time divided by the memcpy baseline's.\n"
        );
        let _ = writeln!(w, "| sample | codec | ns/packet | MB/s | allocs/packet | ÷ fastest peer | ÷ memcpy |");
        let _ = writeln!(w, "|---|---|---:|---:|---:|---:|---:|");
        for s in samples {
            let peer = t.fastest_peer(d, s.name);
            let mem = t.get(d, s.name, MEMCPY);
            for (c, tm) in t.rows(d, s.name) {
                let mbs = s.bytes.len() as f64 / (tm.ns * s.expect.packets as f64) * 1000.0;
                let vs_peer = peer.map_or("—".into(), |(_, p)| fmt_ratio(tm.ns / p.ns));
                let vs_mem = mem.map_or("—".into(), |m| fmt_ratio(tm.ns / m.ns));
                let name = if c.starts_with("mqttkit") { format!("**{c}**") } else { c.to_string() };
                let _ = writeln!(
                    w,
                    "| {} | {name} | {} | {mbs:.0} | {} | {vs_peer} | {vs_mem} |",
                    s.name,
                    fmt_ns(tm.ns),
                    fmt_allocs(t.allocs(d, s.name, c))
                );
            }
        }
    }
    md
}

fn codecs_order(c: &str) -> usize {
    ["memcpy", "mqttkit", "mqttkit_vectored", "rumqttc", "rmqtt", "mqttrs", "mqtt_format", "ntex"]
        .iter()
        .position(|x| *x == c)
        .unwrap_or(usize::MAX)
}

/// The issue's targets, evaluated on this run.
fn targets(w: &mut String, samples: &[Sample], t: &Table<'_>) {
    let ok = |b: bool| if b { "met" } else { "**missed**" };
    let _ = writeln!(w, "\n## Targets\n");
    let _ = writeln!(w, "| target | sample | mqttkit | fastest peer | ratio | |");
    let _ = writeln!(w, "|---|---|---:|---|---:|---|");
    // 1. Decode at least as fast as the fastest peer, zero allocations; PUBLISH decode
    //    >= 1.5x the fastest peer (issue 12).
    for s in samples {
        let (Some(m), Some((p, pt))) = (t.get(Dir::Decode, s.name, "mqttkit"), t.fastest_peer(Dir::Decode, s.name))
        else {
            continue;
        };
        let allocs = t.allocs(Dir::Decode, s.name, "mqttkit");
        let r = pt.ns / m.ns;
        let goal = if s.name.starts_with("publish_") { 1.5 } else { 1.0 };
        let _ = writeln!(
            w,
            "| decode ≥ {goal:.1}× fastest peer, 0 allocations | {} | {} ({} allocs) | {p} {} | {} | {} |",
            s.name,
            fmt_ns(m.ns),
            fmt_allocs(allocs),
            fmt_ns(pt.ns),
            fmt_ratio(r),
            ok(r >= goal && allocs == Some(0.0))
        );
    }
    // 2. Decode time independent of payload size.
    for (small, large) in [("publish_v4_31b", "publish_v4_64k"), ("publish_v5_32b", "publish_v5_1k")] {
        if let (Some(a), Some(b)) = (t.get(Dir::Decode, small, "mqttkit"), t.get(Dir::Decode, large, "mqttkit")) {
            let r = b.ns / a.ns;
            let _ = writeln!(
                w,
                "| decode time independent of payload (±10%) | {large} vs {small} | {} vs {} | | {} | {} |",
                fmt_ns(b.ns),
                fmt_ns(a.ns),
                fmt_ratio(r),
                ok((0.9..=1.1).contains(&r))
            );
        }
    }
    // 3. Encode at least as fast as the fastest peer (the 64 KiB PUBLISH: vectored).
    for s in samples.iter().filter(|s| !s.class.is_stream()) {
        let ours = if s.name == "publish_v4_64k" { OURS[1] } else { "mqttkit" };
        let (Some(m), Some((p, pt))) = (t.get(Dir::Encode, s.name, ours), t.fastest_peer(Dir::Encode, s.name)) else {
            continue;
        };
        let r = pt.ns / m.ns;
        let _ = writeln!(
            w,
            "| encode ≥ 1.0× fastest peer | {} | {}{} | {p} {} | {} | {} |",
            s.name,
            fmt_ns(m.ns),
            if ours == "mqttkit" { "" } else { " (vectored)" },
            fmt_ns(pt.ns),
            fmt_ratio(r),
            ok(r >= 1.0)
        );
    }
    // 4. 64 KiB encode: vectored, or >= 90% of memcpy bandwidth.
    let s = "publish_v4_64k";
    if let Some(mem) = t.get(Dir::Encode, s, MEMCPY) {
        if let Some(v) = t.get(Dir::Encode, s, OURS[1]) {
            let _ = writeln!(
                w,
                "| 64 KiB encode vectored (payload not copied) | {s} | {} (vectored) | memcpy {} | {} of memcpy time | {} |",
                fmt_ns(v.ns),
                fmt_ns(mem.ns),
                fmt_ratio(v.ns / mem.ns),
                ok(true)
            );
        }
        if let Some(c) = t.get(Dir::Encode, s, "mqttkit") {
            let bw = mem.ns / c.ns;
            let _ = writeln!(
                w,
                "| 64 KiB encode (copying) ≥ 90% of memcpy bandwidth | {s} | {} | memcpy {} | {:.0}% | {} |",
                fmt_ns(c.ns),
                fmt_ns(mem.ns),
                bw * 100.0,
                ok(bw >= 0.9)
            );
        }
    }
}
