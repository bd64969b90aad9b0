//! The metrics of each schedule's last run and its counters, rendered in Prometheus'
//! text exposition format (version 0.0.4) into a reused `String`: no allocation per line.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::SystemTime;

use super::RunObservation;
use crate::rule::Severity;

/// The last observation per schedule, and counters since the process started.
#[derive(Debug, Default)]
pub struct Metrics {
    schedules: BTreeMap<String, Schedule>,
}

/// One schedule's state.
#[derive(Debug, Default)]
struct Schedule {
    last: Option<RunObservation>,
    /// When the newest run that was not interrupted ended.
    last_success: Option<SystemTime>,
    complete: u64,
    interrupted: u64,
    skipped: u64,
    /// Rule errors by rule, severity, source and cause.
    errors: BTreeMap<(String, Severity, String, String), u64>,
}

/// A metric family: name, type and help, in the order they are rendered.
struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
}

/// Every family [`Metrics::render`] writes, in order (docs/reference/metrics.md lists them).
const FAMILIES: [Family; 12] = [
    Family {
        name: "data_integrity_check_failures",
        kind: "gauge",
        help: "Rules of the last run that alert under their alert-on and are at or above fail-on.",
    },
    Family {
        name: "trueup_rule_findings",
        kind: "gauge",
        help: "Findings of the rule in the last run (one per key; baseline-accepted ones too).",
    },
    Family {
        name: "trueup_rule_new_findings",
        kind: "gauge",
        help: "Findings of the rule in the last run that its previous comparable run did not have.",
    },
    Family {
        name: "trueup_rule_alerting",
        kind: "gauge",
        help: "1 when the rule's last result alerts under its alert-on (new, any or jump), else 0.",
    },
    Family {
        name: "trueup_rule_duration_seconds",
        kind: "gauge",
        help: "How long the rule took in the last run.",
    },
    Family {
        name: "trueup_rule_errors_total",
        kind: "counter",
        help: "Runs in which the rule could not finish, by cause.",
    },
    Family {
        name: "trueup_run_duration_seconds",
        kind: "gauge",
        help: "How long the last run took, opening its sources included.",
    },
    Family {
        name: "trueup_run_errored_rules",
        kind: "gauge",
        help: "Rules of the last run that could not finish.",
    },
    Family {
        name: "trueup_run_last_timestamp_seconds",
        kind: "gauge",
        help: "When the last run ended (Unix time), interrupted or not.",
    },
    Family {
        name: "trueup_run_last_success_timestamp_seconds",
        kind: "gauge",
        help: "When the last run that was not interrupted ended (Unix time).",
    },
    Family {
        name: "trueup_runs_total",
        kind: "counter",
        help: "Runs that ended, by status (complete or interrupted).",
    },
    Family {
        name: "trueup_runs_skipped_total",
        kind: "counter",
        help: "Runs not started because the schedule's previous run was still going.",
    },
];

/// The names of every metric family rendered, in order.
pub fn family_names() -> impl Iterator<Item = &'static str> {
    FAMILIES.iter().map(|f| f.name)
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// Makes `schedule` known before its first run: its counters show as 0.
    pub fn declare(&mut self, schedule: &str) {
        self.schedule(schedule);
    }

    /// Counts a run in and keeps it as its schedule's last.
    pub fn record(&mut self, observation: &RunObservation) {
        let schedule = self.schedule(&observation.schedule);
        match observation.interrupted {
            true => schedule.interrupted += 1,
            false => {
                schedule.complete += 1;
                schedule.last_success = Some(observation.finished_at);
            }
        }
        for rule in &observation.rules {
            if let Some(cause) = &rule.error {
                *schedule
                    .errors
                    .entry((
                        rule.rule.clone(),
                        rule.severity,
                        rule.source.clone(),
                        cause.clone(),
                    ))
                    .or_default() += 1;
            }
        }
        schedule.last = Some(observation.clone());
    }

    /// Counts a run of `schedule` that did not start because its previous one was going.
    pub fn run_skipped(&mut self, schedule: &str) {
        self.schedule(schedule).skipped += 1;
    }

    fn schedule(&mut self, name: &str) -> &mut Schedule {
        if !self.schedules.contains_key(name) {
            self.schedules.insert(name.to_owned(), Schedule::default());
        }
        self.schedules.get_mut(name).expect("inserted above")
    }

    /// Appends the metrics to `out` in the text format. Families come in a fixed order,
    /// schedules and rules sorted; a family with no series is still declared.
    pub fn render(&self, out: &mut String) {
        for family in &FAMILIES {
            out.push_str("# HELP ");
            out.push_str(family.name);
            out.push(' ');
            out.push_str(family.help);
            out.push_str("\n# TYPE ");
            out.push_str(family.name);
            out.push(' ');
            out.push_str(family.kind);
            out.push('\n');
            for (name, schedule) in &self.schedules {
                render_family(out, family.name, name, schedule);
            }
        }
    }
}

/// The series of `family` for one schedule.
fn render_family(out: &mut String, family: &str, name: &str, schedule: &Schedule) {
    let last = schedule.last.as_ref();
    let rules = last.map(|l| l.rules.as_slice()).unwrap_or_default();
    let mut line = |labels: &[(&str, &str)], value: Value| {
        sample(out, family, name, labels, value);
    };
    match family {
        "data_integrity_check_failures" => {
            if let Some(last) = last {
                line(&[], Value::Count(count(last.integrity_failures())));
            }
        }
        "trueup_rule_findings" => {
            for r in rules {
                line(&rule_labels(r), Value::Count(r.findings));
            }
        }
        "trueup_rule_new_findings" => {
            for r in rules {
                if let Some(new) = r.new_findings {
                    line(&rule_labels(r), Value::Count(new));
                }
            }
        }
        "trueup_rule_alerting" => {
            for r in rules {
                line(&rule_labels(r), Value::Count(u64::from(r.alerting)));
            }
        }
        "trueup_rule_duration_seconds" => {
            for r in rules {
                line(&rule_labels(r), Value::Seconds(r.duration.as_secs_f64()));
            }
        }
        "trueup_rule_errors_total" => {
            for ((rule, severity, source, cause), n) in &schedule.errors {
                let labels = [
                    ("rule", rule.as_str()),
                    ("severity", severity.as_str()),
                    ("source", source.as_str()),
                    ("cause", cause.as_str()),
                ];
                line(&labels, Value::Count(*n));
            }
        }
        "trueup_run_duration_seconds" => {
            if let Some(last) = last {
                line(&[], Value::Seconds(last.duration.as_secs_f64()));
            }
        }
        "trueup_run_errored_rules" => {
            if let Some(last) = last {
                let errored = last.rules.iter().filter(|r| r.error.is_some()).count();
                line(&[], Value::Count(count(errored)));
            }
        }
        "trueup_run_last_timestamp_seconds" => {
            if let Some(last) = last {
                line(&[], Value::Seconds(unix_seconds(last.finished_at)));
            }
        }
        "trueup_run_last_success_timestamp_seconds" => {
            if let Some(at) = schedule.last_success {
                line(&[], Value::Seconds(unix_seconds(at)));
            }
        }
        "trueup_runs_total" => {
            line(&[("status", "complete")], Value::Count(schedule.complete));
            line(
                &[("status", "interrupted")],
                Value::Count(schedule.interrupted),
            );
        }
        "trueup_runs_skipped_total" => line(&[], Value::Count(schedule.skipped)),
        _ => {}
    }
}

/// A sample's value.
#[derive(Debug, Clone, Copy)]
enum Value {
    Count(u64),
    Seconds(f64),
}

/// The labels of a rule's series after `schedule`.
fn rule_labels(rule: &super::RuleObservation) -> [(&str, &str); 3] {
    [
        ("rule", rule.rule.as_str()),
        ("severity", rule.severity.as_str()),
        ("source", rule.source.as_str()),
    ]
}

/// One sample line: `name{schedule="…",labels…} value`.
fn sample(out: &mut String, name: &str, schedule: &str, labels: &[(&str, &str)], value: Value) {
    out.push_str(name);
    out.push_str("{schedule=\"");
    escape_label(out, schedule);
    out.push('"');
    for (label, text) in labels {
        out.push(',');
        out.push_str(label);
        out.push_str("=\"");
        escape_label(out, text);
        out.push('"');
    }
    out.push_str("} ");
    // Writing into a String cannot fail.
    let _ = match value {
        Value::Count(n) => write!(out, "{n}"),
        Value::Seconds(s) => write!(out, "{s}"),
    };
    out.push('\n');
}

/// A label value as the text format writes it: backslash, double quote and line feed
/// escaped (`\\`, `\"`, `\n`); everything else as it is (the format is UTF-8).
pub fn escape_label(out: &mut String, text: &str) {
    let mut rest = text;
    while let Some(at) = rest.find(['\\', '"', '\n']) {
        out.push_str(&rest[..at]);
        out.push_str(match rest.as_bytes()[at] {
            b'\\' => "\\\\",
            b'"' => "\\\"",
            _ => "\\n",
        });
        rest = &rest[at + 1..];
    }
    out.push_str(rest);
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// Seconds since the Unix epoch (0 for a time before it).
fn unix_seconds(at: SystemTime) -> f64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::RuleObservation;
    use super::*;

    fn rule(id: &str, findings: u64, error: Option<&str>) -> RuleObservation {
        RuleObservation {
            rule: id.to_owned(),
            severity: Severity::Critical,
            source: "shop".to_owned(),
            findings,
            new_findings: error.is_none().then_some(findings),
            error: error.map(str::to_owned),
            duration: Duration::from_millis(1500),
            alerting: findings > 0 && error.is_none(),
        }
    }

    fn observation(rules: Vec<RuleObservation>, interrupted: bool) -> RunObservation {
        RunObservation {
            schedule: "nightly".to_owned(),
            run: Some(7),
            interrupted,
            finished_at: SystemTime::UNIX_EPOCH + Duration::from_millis(1_764_748_800_250),
            duration: Duration::from_millis(2250),
            fail_on: Severity::High,
            rules,
        }
    }

    fn rendered(metrics: &Metrics) -> String {
        let mut out = String::new();
        metrics.render(&mut out);
        out
    }

    #[test]
    fn a_run_renders_every_family_with_its_values() {
        let mut metrics = Metrics::new();
        metrics.record(&observation(
            vec![
                rule("orders.orphans", 3, None),
                rule("orders.totals", 0, Some("timeout")),
            ],
            false,
        ));
        metrics.run_skipped("nightly");
        let out = rendered(&metrics);
        for line in [
            "# TYPE data_integrity_check_failures gauge",
            "data_integrity_check_failures{schedule=\"nightly\"} 1",
            "trueup_rule_findings{schedule=\"nightly\",rule=\"orders.orphans\",severity=\"critical\",source=\"shop\"} 3",
            "trueup_rule_new_findings{schedule=\"nightly\",rule=\"orders.orphans\",severity=\"critical\",source=\"shop\"} 3",
            "trueup_rule_alerting{schedule=\"nightly\",rule=\"orders.totals\",severity=\"critical\",source=\"shop\"} 0",
            "trueup_rule_duration_seconds{schedule=\"nightly\",rule=\"orders.orphans\",severity=\"critical\",source=\"shop\"} 1.5",
            "trueup_rule_errors_total{schedule=\"nightly\",rule=\"orders.totals\",severity=\"critical\",source=\"shop\",cause=\"timeout\"} 1",
            "trueup_run_duration_seconds{schedule=\"nightly\"} 2.25",
            "trueup_run_errored_rules{schedule=\"nightly\"} 1",
            "trueup_run_last_timestamp_seconds{schedule=\"nightly\"} 1764748800.25",
            "trueup_run_last_success_timestamp_seconds{schedule=\"nightly\"} 1764748800.25",
            "trueup_runs_total{schedule=\"nightly\",status=\"complete\"} 1",
            "trueup_runs_total{schedule=\"nightly\",status=\"interrupted\"} 0",
            "trueup_runs_skipped_total{schedule=\"nightly\"} 1",
        ] {
            assert!(
                out.lines().any(|l| l == line),
                "no line {line:?} in:\n{out}"
            );
        }
        // A failed rule's count of new findings is unknown, so it has no series.
        assert!(
            !out.contains("trueup_rule_new_findings{schedule=\"nightly\",rule=\"orders.totals\"")
        );
        // Every family is declared once, in order.
        let declared: Vec<&str> = out
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .map(|l| l.split(' ').next().unwrap_or_default())
            .collect();
        assert_eq!(declared, family_names().collect::<Vec<_>>());
    }

    #[test]
    fn errors_add_up_and_an_interrupted_run_is_no_success() {
        let mut metrics = Metrics::new();
        metrics.record(&observation(vec![rule("a", 0, Some("query"))], false));
        let mut interrupted = observation(vec![rule("a", 0, Some("query"))], true);
        interrupted.finished_at += Duration::from_secs(60);
        metrics.record(&interrupted);
        let out = rendered(&metrics);
        assert!(out.contains("cause=\"query\"} 2\n"), "{out}");
        assert!(out.contains("trueup_runs_total{schedule=\"nightly\",status=\"interrupted\"} 1\n"));
        assert!(
            out.contains("trueup_run_last_timestamp_seconds{schedule=\"nightly\"} 1764748860.25\n")
        );
        assert!(out.contains(
            "trueup_run_last_success_timestamp_seconds{schedule=\"nightly\"} 1764748800.25\n"
        ));
    }

    #[test]
    fn a_declared_schedule_shows_its_counters_before_its_first_run() {
        let mut metrics = Metrics::new();
        metrics.declare("hourly");
        let out = rendered(&metrics);
        assert!(
            out.contains("trueup_runs_skipped_total{schedule=\"hourly\"} 0\n"),
            "{out}"
        );
        assert!(!out.contains("data_integrity_check_failures{"), "{out}");
    }

    #[test]
    fn label_values_are_escaped_per_the_text_format() {
        let mut out = String::new();
        escape_label(&mut out, "a\\b\"c\nd é");
        assert_eq!(out, "a\\\\b\\\"c\\nd é");
        let mut metrics = Metrics::new();
        let mut odd = rule("x", 1, None);
        odd.source = "sh\"op\n".to_owned();
        let mut observed = observation(vec![odd], false);
        observed.schedule = "night\\ly".to_owned();
        metrics.record(&observed);
        let out = rendered(&metrics);
        assert!(
            out.contains("trueup_rule_findings{schedule=\"night\\\\ly\",rule=\"x\",severity=\"critical\",source=\"sh\\\"op\\n\"} 1\n"),
            "{out}"
        );
        // Every sample is one line.
        assert!(
            out.lines().all(|l| l.starts_with('#') || l.contains("} ")),
            "{out}"
        );
    }

    #[test]
    fn integrity_failures_count_alerting_rules_at_or_above_fail_on() {
        let mut low = rule("low", 5, None);
        low.severity = Severity::Low;
        let quiet = RuleObservation {
            alerting: false,
            ..rule("quiet", 300, None)
        };
        let observed = observation(
            vec![rule("a", 1, None), low, quiet, rule("b", 0, Some("query"))],
            false,
        );
        assert_eq!(observed.integrity_failures(), 1);
    }
}
