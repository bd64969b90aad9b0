//! `Metrics::render`, what `serve`'s `/metrics` does on every scrape, for a project of many
//! rules: the time of one render into a reused `String`, and its size.
//!
//!     cargo bench -p trueup-core --bench metrics [-- RULES RENDERS]   (defaults: 500 2000)
//!
//! Prints a Markdown table: for RULES rules in one schedule, and for the same rules spread
//! over 10 schedules, the median, 99th percentile and worst time of RENDERS renders, and
//! the bytes rendered. Every rule has a long id and one in ten has an error, so each
//! family has series; label values go through escaping as they would.

use std::time::{Duration, Instant, SystemTime};

use trueup_core::metrics::{Metrics, RuleObservation, RunObservation};
use trueup_core::rule::Severity;

fn observation(schedule: &str, rules: std::ops::Range<usize>) -> RunObservation {
    RunObservation {
        schedule: schedule.to_owned(),
        run: Some(42),
        interrupted: false,
        finished_at: SystemTime::now(),
        duration: Duration::from_millis(12_345),
        fail_on: Severity::High,
        rules: rules
            .map(|i| RuleObservation {
                rule: format!("warehouse.orders-{i:04}.total-matches-items"),
                severity: Severity::ALL[i % 4],
                source: format!("shop-replica-{}", i % 3),
                findings: u64::try_from(i * 37).unwrap(),
                new_findings: Some(u64::try_from(i % 5).unwrap()),
                error: (i % 10 == 0).then(|| "timeout".to_owned()),
                duration: Duration::from_micros(u64::try_from(1000 + i * 17).unwrap()),
                alerting: i % 7 == 0,
            })
            .collect(),
    }
}

/// Median, 99th percentile and worst of `renders` renders, and the bytes of one.
fn measure(metrics: &Metrics, renders: usize) -> (Duration, Duration, Duration, usize) {
    let mut out = String::new();
    metrics.render(&mut out); // warm-up: the String reaches its size once
    let mut times = Vec::with_capacity(renders);
    for _ in 0..renders {
        out.clear();
        let started = Instant::now();
        metrics.render(&mut out);
        times.push(started.elapsed());
        std::hint::black_box(&out);
    }
    times.sort();
    let at = |percent: usize| times[(times.len() - 1) * percent / 100];
    (at(50), at(99), times[times.len() - 1], out.len())
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let rules = args.first().copied().unwrap_or(500);
    let renders = args.get(1).copied().unwrap_or(2000);

    let mut one = Metrics::new();
    one.record(&observation("hourly", 0..rules));
    let mut ten = Metrics::new();
    let per = rules.div_ceil(10);
    for s in 0..10 {
        let range = (s * per).min(rules)..((s + 1) * per).min(rules);
        ten.record(&observation(&format!("schedule-{s}"), range));
    }

    println!("Metrics::render, {rules} rules, {renders} renders into a reused String\n");
    println!("| rules in | median (ms) | p99 (ms) | worst (ms) | bytes |");
    println!("|---|---:|---:|---:|---:|");
    for (name, metrics) in [("1 schedule", &one), ("10 schedules", &ten)] {
        let (median, p99, worst, bytes) = measure(metrics, renders);
        println!(
            "| {name} | {:.3} | {:.3} | {:.3} | {bytes} |",
            median.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
            worst.as_secs_f64() * 1e3
        );
    }
}
