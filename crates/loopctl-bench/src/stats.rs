//! What every scenario reports: latency percentiles, throughput, ratios, and RSS.

use std::time::Duration;

/// The median of `times` (sorted in place).
pub fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times.get(times.len() / 2).copied().unwrap_or_default()
}

/// Latencies of a run, its wall time, and (where measured) the CPU it took.
#[derive(Debug, Default)]
pub struct Outcome {
    pub latencies: Vec<Duration>,
    pub errors: usize,
    pub wall: Duration,
    pub cpu: Option<CpuSpent>,
}

/// The CPU clocks of this process and of the whole machine, from `/proc` (in clock ticks):
/// the difference of two readings says how much CPU a phase took in the bench process (its
/// servers and clients) and in everything else (the database), and how long the cores sat
/// idle. Idle cores mean the phase waited on something other than CPU.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuClock {
    process: u64,
    busy: u64,
    total: u64,
}

/// What a phase took between two [`CpuClock`] readings, in seconds of CPU.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuSpent {
    pub process_s: f64,
    pub rest_s: f64,
    pub idle_share: f64,
}

impl CpuClock {
    /// Now; zeros where `/proc` cannot be read (the phase then reports no CPU figures).
    pub fn now() -> CpuClock {
        let machine = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let ticks: Vec<u64> = machine
            .lines()
            .next()
            .and_then(|line| line.strip_prefix("cpu "))
            .map(|rest| rest.split_whitespace().filter_map(|n| n.parse().ok()).collect())
            .unwrap_or_default();
        // user nice system idle iowait irq softirq steal (guest time is inside user)
        let at = |i: usize| ticks.get(i).copied().unwrap_or(0);
        let busy = at(0) + at(1) + at(2) + at(5) + at(6) + at(7);
        let own = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        // After the command's closing parenthesis come the state (field 3) and on: utime and
        // stime are fields 14 and 15.
        let fields: Vec<&str> =
            own.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
        let field = |i: usize| fields.get(i).and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
        let process = field(11) + field(12);
        CpuClock { process, busy, total: busy + at(3) + at(4) }
    }

    /// What the machine spent since `self`.
    pub fn spent(self) -> Option<CpuSpent> {
        let now = CpuClock::now();
        let total = now.total.checked_sub(self.total).filter(|t| *t > 0)?;
        let busy = now.busy.saturating_sub(self.busy);
        let process = now.process.saturating_sub(self.process);
        // The kernel counts in USER_HZ, 100 a second on Linux.
        let seconds = |ticks: u64| ticks as f64 / 100.0;
        Some(CpuSpent {
            process_s: seconds(process),
            rest_s: seconds(busy.saturating_sub(process)),
            idle_share: (total - busy.min(total)) as f64 / total as f64,
        })
    }
}

impl Outcome {
    pub fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    /// Prints one line: count, rate, p50/p99/max, errors, and the rate as a share of
    /// `baseline` (a rate measured in the same run) when given.
    pub fn report(&mut self, label: &str, unit: &str, baseline: Option<f64>) -> f64 {
        self.latencies.sort();
        let n = self.latencies.len();
        let at = |p: f64| {
            self.latencies.get(((n as f64 * p) as usize).min(n.saturating_sub(1))).copied().unwrap_or_default()
        };
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let rate = self.rate();
        let share =
            baseline.map(|b| format!("  {:>5.0} % of baseline", rate * 100.0 / b.max(1e-9))).unwrap_or_default();
        println!(
            "{label:<34} {n:>7} {unit}  {rate:>9.0} /s   p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>8.2} ms  errors {}{share}",
            ms(at(0.50)),
            ms(at(0.99)),
            ms(self.latencies.last().copied().unwrap_or_default()),
            self.errors,
        );
        if let Some(cpu) = self.cpu.filter(|_| n > 0) {
            let per_op = |s: f64| s * 1e6 / n as f64;
            println!(
                "{:<34} CPU per {}: {:>6.0} us in this process, {:>6.0} us elsewhere (the database); cores idle {:>3.0} %",
                "",
                unit.trim_end_matches('s'),
                per_op(cpu.process_s),
                per_op(cpu.rest_s),
                cpu.idle_share * 100.0,
            );
        }
        rate
    }
}

/// A process's resident memory, now and at its peak, from `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy)]
pub struct Rss {
    pub now_mb: f64,
    pub peak_mb: f64,
}

impl Rss {
    pub fn of(pid: u32) -> anyhow::Result<Rss> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kb| kb.parse::<f64>().ok())
                .map_or(0.0, |kb| kb / 1024.0)
        };
        Ok(Rss { now_mb: field("VmRSS:"), peak_mb: field("VmHWM:") })
    }

    pub fn of_self() -> anyhow::Result<Rss> {
        Rss::of(std::process::id())
    }
}
