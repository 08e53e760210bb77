//! What every scenario reports: latency percentiles, throughput, ratios, and RSS.

use std::time::Duration;

/// The median of `times` (sorted in place).
pub fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times.get(times.len() / 2).copied().unwrap_or_default()
}

/// Latencies of a run and its wall time.
#[derive(Debug, Default)]
pub struct Outcome {
    pub latencies: Vec<Duration>,
    pub errors: usize,
    pub wall: Duration,
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
