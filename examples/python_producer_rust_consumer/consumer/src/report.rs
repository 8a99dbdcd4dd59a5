//! What the consumer counts while receiving, and how it prints it.

use std::time::Duration;

#[derive(Default)]
pub struct Report {
    pub count: usize,
    pub bids: usize,
    pub asks: usize,
    pub errors: usize,
    pub elapsed: Duration,
    /// Receive time minus the tick's timestamp, both CLOCK_REALTIME.
    pub latencies_ns: Vec<i64>,
}

impl Report {
    pub fn with_capacity(ticks: usize) -> Report {
        Report { latencies_ns: Vec::with_capacity(ticks), ..Report::default() }
    }

    /// Record a bad tick; describe the first `max_described` of them.
    pub fn bad(&mut self, what: String, max_described: usize) {
        self.errors += 1;
        if self.errors <= max_described {
            eprintln!("consumer: BAD {what}");
        }
    }

    pub fn print(&mut self) {
        let secs = self.elapsed.as_secs_f64();
        let rate = if secs > 0.0 { self.count as f64 / secs } else { 0.0 };
        println!("consumer: received {} ticks ({} BID, {} ASK)", group(self.count as u64), group(self.bids as u64), group(self.asks as u64));
        println!("consumer: elapsed {secs:.3} s (first tick to sentinel), throughput {} msg/s", group(rate as u64));
        self.latencies_ns.sort_unstable();
        let l = &self.latencies_ns;
        if l.is_empty() {
            return;
        }
        println!(
            "consumer: one-way latency (receive time - tick timestamp), {} samples: \
             p50 {} | p90 {} | p99 {} | p99.9 {} | max {}",
            group(l.len() as u64),
            micros(percentile(l, 500)),
            micros(percentile(l, 900)),
            micros(percentile(l, 990)),
            micros(percentile(l, 999)),
            micros(*l.last().unwrap()),
        );
    }

    /// Print the verdict; true when every tick arrived once, in order, intact.
    pub fn verdict(&self, expected: usize, announced: usize) -> bool {
        let mut ok = true;
        if self.errors > 0 {
            eprintln!("consumer: FAIL: {} ticks garbled or out of order", self.errors);
            ok = false;
        }
        if self.count != expected || self.count != announced {
            eprintln!(
                "consumer: FAIL: received {} ticks, expected {expected} (the producer announced {announced})",
                self.count
            );
            ok = false;
        }
        if ok {
            println!("consumer: OK: all {} ticks received once, in order, every field intact", group(self.count as u64));
        }
        ok
    }
}

/// Nearest-rank percentile of sorted samples; `per_mille` 500 is p50, 999 is
/// p99.9. Integer arithmetic: 0.999 * 1000 is not 999 in floating point.
pub fn percentile(sorted: &[i64], per_mille: usize) -> i64 {
    let rank = (per_mille * sorted.len()).div_ceil(1000);
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn micros(ns: i64) -> String {
    format!("{:.2} µs", ns as f64 / 1000.0)
}

/// 1234567 -> "1 234 567", as the seed's table writes numbers.
pub fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let s: Vec<i64> = (1..=1000).collect();
        assert_eq!(percentile(&s, 500), 500);
        assert_eq!(percentile(&s, 999), 999);
        assert_eq!(percentile(&s, 1000), 1000);
        assert_eq!(percentile(&[7], 500), 7);
    }

    #[test]
    fn numbers_are_grouped_by_thousands() {
        assert_eq!(group(500_000), "500 000");
        assert_eq!(group(1_060_000), "1 060 000");
        assert_eq!(group(12), "12");
    }
}
