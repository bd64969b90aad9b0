//! Whether a rule's result alerts, by its `alert-on`: new findings, any finding, or a count
//! that jumps above the rule's recent history (a z-score over its last recorded runs).

use crate::rule::AlertOn;

/// How many of a rule's recent runs `jump` weighs a count against.
pub const JUMP_WINDOW: u32 = 10;

/// The fewest recorded runs `jump` needs; with fewer, a rule alerts as `new` does.
pub const JUMP_MIN_RUNS: usize = 3;

/// How many standard deviations above the recent mean a count must be to jump.
pub const JUMP_Z: f64 = 3.0;

/// What one rule's run says, as its alert weighs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleResult {
    /// Findings the run reported (one per key), accepted ones too.
    pub findings: u64,
    /// Of them, findings the baseline accepted.
    pub accepted: u64,
    /// Findings the previous comparable run did not have; `None` when unknown (the rule
    /// failed, or the run was interrupted and cannot be compared).
    pub new: Option<u64>,
}

/// Whether `result` alerts under `alert_on`, given the rule's finding counts in its recent
/// recorded runs (newest first, the run itself not among them).
pub fn alerting(alert_on: AlertOn, result: RuleResult, history: &[u64]) -> bool {
    match alert_on {
        AlertOn::New => result.new.is_some_and(|new| new > 0),
        AlertOn::Any => result.findings > result.accepted,
        AlertOn::Jump => match jumped(result.findings, history) {
            Some(jumped) => jumped,
            None => alerting(AlertOn::New, result, history),
        },
    }
}

/// Whether `count` lies more than [`JUMP_Z`] standard deviations above the mean of the
/// newest [`JUMP_WINDOW`] counts of `history`; `None` with fewer than [`JUMP_MIN_RUNS`].
///
/// The deviation is at least the square root of the mean (the spread of a count that
/// varies by chance alone) and at least 1: a history of equal counts does not make every
/// change a jump (300, 300, 300 then 310 is not one; then 3,000 is). Only a rise alerts:
/// a fall is findings resolved, which a repair does.
pub fn jumped(count: u64, history: &[u64]) -> Option<bool> {
    let window = usize::try_from(JUMP_WINDOW).unwrap_or(usize::MAX);
    let recent = &history[..history.len().min(window)];
    if recent.len() < JUMP_MIN_RUNS {
        return None;
    }
    Some(z_score(count, recent) > JUMP_Z)
}

/// How many deviations `count` lies above the mean of `counts` (not empty), with the
/// deviation floored as [`jumped`] says.
pub fn z_score(count: u64, counts: &[u64]) -> f64 {
    let n = as_f64(u64::try_from(counts.len()).unwrap_or(u64::MAX));
    let mean = counts.iter().map(|&c| as_f64(c)).sum::<f64>() / n;
    let variance = counts
        .iter()
        .map(|&c| (as_f64(c) - mean).powi(2))
        .sum::<f64>()
        / n;
    let deviation = variance.sqrt().max(mean.sqrt()).max(1.0);
    (as_f64(count) - mean) / deviation
}

/// A count as a float: exact below 2^53, which no count of findings reaches.
#[allow(clippy::cast_precision_loss)]
fn as_f64(count: u64) -> f64 {
    count as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(findings: u64, new: Option<u64>) -> RuleResult {
        RuleResult {
            findings,
            accepted: 0,
            new,
        }
    }

    #[test]
    fn new_alerts_on_new_findings_only() {
        assert!(alerting(AlertOn::New, result(300, Some(1)), &[]));
        assert!(!alerting(AlertOn::New, result(300, Some(0)), &[300, 300]));
        // Unknown (the rule failed): no alert on a guess.
        assert!(!alerting(AlertOn::New, result(5, None), &[]));
    }

    #[test]
    fn any_alerts_on_any_finding_the_baseline_did_not_accept() {
        assert!(alerting(AlertOn::Any, result(300, Some(0)), &[300; 5]));
        assert!(!alerting(AlertOn::Any, result(0, Some(0)), &[]));
        let accepted = RuleResult {
            findings: 4,
            accepted: 4,
            new: Some(0),
        };
        assert!(!alerting(AlertOn::Any, accepted, &[]));
    }

    #[test]
    fn a_backlog_of_300_jumps_when_it_becomes_3000() {
        let history = [300, 298, 305, 301, 299, 300];
        // New findings alone do not make a jump: the backlog churns.
        assert!(!alerting(AlertOn::Jump, result(302, Some(7)), &history));
        assert!(!alerting(AlertOn::Jump, result(320, Some(20)), &history));
        assert!(alerting(AlertOn::Jump, result(3000, Some(2700)), &history));
        // A fall is findings resolved, not an alert.
        assert!(!alerting(AlertOn::Jump, result(0, Some(0)), &history));
    }

    #[test]
    fn a_flat_history_does_not_make_every_change_a_jump() {
        assert_eq!(jumped(310, &[300, 300, 300]), Some(false));
        assert_eq!(jumped(3000, &[300, 300, 300]), Some(true));
        // From nothing: the floor of 1 makes 4 findings a jump, 3 not.
        assert_eq!(jumped(3, &[0, 0, 0, 0]), Some(false));
        assert_eq!(jumped(4, &[0, 0, 0, 0]), Some(true));
    }

    #[test]
    fn too_little_history_alerts_as_new() {
        assert_eq!(jumped(3000, &[300, 300]), None);
        assert!(alerting(
            AlertOn::Jump,
            result(3000, Some(2700)),
            &[300, 300]
        ));
        assert!(!alerting(AlertOn::Jump, result(3000, Some(0)), &[300, 300]));
    }

    #[test]
    fn only_the_newest_runs_count() {
        // Old runs of 3,000 are past the window: the recent 300s are the rule's normal.
        let mut history = vec![300; JUMP_WINDOW as usize];
        history.extend([3000; 20]);
        assert_eq!(jumped(3000, &history), Some(true));
        assert!(z_score(300, &history[..JUMP_WINDOW as usize]).abs() < 1e-9);
    }
}
