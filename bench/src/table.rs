//! The one result table and the statistics behind it.

use std::time::Duration;

/// One line of the table.
#[derive(Debug, Clone)]
pub struct Row {
    pub figure: String,
    pub value: String,
    pub target: String,
    pub ratio: String,
    /// `None` where the row has no target (baselines, growth points).
    pub met: Option<bool>,
}

/// The table, printed once at the end (and each row as it is measured, so a long run shows progress).
#[derive(Debug, Default)]
pub struct Table {
    rows: Vec<Row>,
}

impl Table {
    pub fn add(&mut self, row: Row) {
        eprintln!("  {} = {} {}", row.figure, row.value, row.ratio);
        self.rows.push(row);
    }

    /// A measured figure without a target.
    pub fn info(&mut self, figure: impl Into<String>, value: impl Into<String>, ratio: impl Into<String>) {
        self.add(Row {
            figure: figure.into(),
            value: value.into(),
            target: "—".into(),
            ratio: ratio.into(),
            met: None,
        });
    }

    /// A figure with its target.
    pub fn target(
        &mut self,
        figure: impl Into<String>,
        value: impl Into<String>,
        target: impl Into<String>,
        ratio: impl Into<String>,
        met: bool,
    ) {
        self.add(Row {
            figure: figure.into(),
            value: value.into(),
            target: target.into(),
            ratio: ratio.into(),
            met: Some(met),
        });
    }

    pub fn print(&self) {
        let w = |f: &dyn Fn(&Row) -> &str, title: &str| {
            self.rows.iter().map(|r| f(r).chars().count()).max().unwrap_or(0).max(title.chars().count())
        };
        let wf = w(&|r| &r.figure, "figure");
        let wv = w(&|r| &r.value, "value");
        let wt = w(&|r| &r.target, "target");
        let wr = w(&|r| &r.ratio, "ratio");
        let pad = |s: &str, n: usize| format!("{s}{}", " ".repeat(n.saturating_sub(s.chars().count())));
        println!(
            "| {} | {} | {} | {} | met |",
            pad("figure", wf),
            pad("value", wv),
            pad("target", wt),
            pad("ratio", wr)
        );
        println!("|{}|{}|{}|{}|-----|", "-".repeat(wf + 2), "-".repeat(wv + 2), "-".repeat(wt + 2), "-".repeat(wr + 2));
        for r in &self.rows {
            let met = match r.met {
                Some(true) => "met",
                Some(false) => "MISSED",
                None => "—",
            };
            println!(
                "| {} | {} | {} | {} | {met} |",
                pad(&r.figure, wf),
                pad(&r.value, wv),
                pad(&r.target, wt),
                pad(&r.ratio, wr)
            );
        }
    }
}

/// Sorted samples in microseconds.
#[derive(Debug)]
pub struct Samples(Vec<f64>);

impl Samples {
    pub fn from_durations(d: &[Duration]) -> Samples {
        Samples::from_micros(d.iter().map(|d| d.as_secs_f64() * 1e6).collect())
    }

    pub fn from_micros(mut v: Vec<f64>) -> Samples {
        v.sort_by(f64::total_cmp);
        Samples(v)
    }

    /// The `p`-th percentile (nearest rank), in µs.
    pub fn pct(&self, p: f64) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * self.0.len() as f64).ceil() as usize;
        self.0[rank.clamp(1, self.0.len()) - 1]
    }

    pub fn median(&self) -> f64 {
        self.pct(50.0)
    }
}

/// A duration in µs for the table, in the unit that reads best.
pub fn us(v: f64) -> String {
    if v >= 1_000_000.0 {
        format!("{:.2} s", v / 1e6)
    } else if v >= 1_000.0 {
        format!("{:.2} ms", v / 1e3)
    } else {
        format!("{v:.1} µs")
    }
}

/// A count with thousands separators.
pub fn n(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// `a / b` as "N.NN×".
pub fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 { format!("{:.2}×", a / b) } else { "—".into() }
}

/// CPU time this thread has used so far (Linux scheduler statistics), or `None` where unavailable.
pub fn thread_cpu() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// A field of `/proc/PID/status` in kB (`VmHWM` is the peak resident set, `VmRSS` the current one).
pub fn proc_status_kb(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines().find(|l| l.starts_with(field))?.split_whitespace().nth(1)?.parse().ok()
}

/// CPU time (user + system) of a process so far.
pub fn process_cpu(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // Linux reports in clock ticks of 1/100 s on every platform this runs on (USER_HZ).
    Some(Duration::from_millis(ticks * 10))
}

/// What one or more writes hand to the kernel, summed from `/proc/thread-self/io`: bytes passed to `write`/`pwrite`
/// (`wchar`) and write calls (`syscw`). A redb commit writes whole 4 KiB pages, so its bytes / 4 KiB is the pages
/// it rewrote; a WAL frame (`SQLite`) is a page and a 24-byte header. (`write_bytes`, the page cache dirtied, is not
/// used: an in-place overwrite of a page still under writeback counts far more than it writes.)
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteCost {
    pub calls: u64,
    pub bytes: u64,
    pub samples: u64,
}

/// This thread's `(wchar, syscw)` so far, or `None` where unavailable.
fn io_counters() -> Option<(u64, u64)> {
    let s = std::fs::read_to_string("/proc/thread-self/io").ok()?;
    let field = |name: &str| -> Option<u64> {
        s.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(": ")?.trim().parse().ok())
    };
    Some((field("wchar")?, field("syscw")?))
}

impl WriteCost {
    /// Runs `f` and adds what it wrote (nothing when the counters are unavailable).
    pub fn measure<T>(&mut self, f: impl FnOnce() -> T) -> T {
        let before = io_counters();
        let out = f();
        if let (Some(a), Some(b)) = (before, io_counters()) {
            self.bytes += b.0.saturating_sub(a.0);
            self.calls += b.1.saturating_sub(a.1);
            self.samples += 1;
        }
        out
    }

    /// "B KiB in W write calls (P pages of 4 KiB)", averaged per commit; "not measured" without counters.
    pub fn per_commit(&self) -> String {
        if self.samples == 0 {
            return "not measured (no /proc/thread-self/io)".into();
        }
        let k = self.samples as f64;
        let kib = self.bytes as f64 / k / 1024.0;
        format!("{kib:.1} KiB in {:.1} write calls (≈ {:.1} pages of 4 KiB)", self.calls as f64 / k, kib / 4.0)
    }
}
