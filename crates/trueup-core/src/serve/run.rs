//! One occurrence of a schedule, under its lease: the check use case with a metrics
//! collector as its sink, the lease renewed while it goes, the observation counted in the
//! metrics, a webhook message queued when it found something new or a rule failed, and the
//! run recorded in `schedule_runs`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::log::{Level, Record};
use super::scheduler::expiry_millis;
use super::{Schedule, Service};
use crate::cancel::Cancel;
use crate::check::{self, CheckOptions, CheckSink, Summary};
use crate::finding::{Finding, RuleSpec};
use crate::fingerprint::Fingerprint;
use crate::metrics::Collector;
use crate::outcome::RuleOutcome;
use crate::store::ScheduledEnd;

/// The longest error message a webhook message carries per rule.
const ERROR_CHARS: usize = 500;

/// Runs occurrence `due` (Unix milliseconds) of `schedule`, whose lease this replica holds.
/// `takeover`: another replica started it and died.
pub async fn occurrence(service: Arc<Service>, schedule: Arc<Schedule>, due: i64, takeover: bool) {
    let started = crate::time::now_millis();
    let name = schedule.name.as_str();
    let log = |record: Record| service.log.log(record.with("schedule", name));
    let record_id = match service
        .store
        .begin_scheduled(name, due, &service.replica, started)
        .await
    {
        Ok(id) => Some(id),
        Err(err) => {
            log(Record::new(
                Level::Warn,
                "store.failed",
                format!(
                    "the scheduled run cannot be listed in /runs: {}",
                    crate::error::chain(&err)
                ),
            ));
            None
        }
    };
    log(Record::new(
        Level::Info,
        "run.started",
        match takeover {
            true => "run started (taken over from a replica that stopped renewing its lease)",
            false => "run started",
        },
    )
    .with("due", crate::time::iso8601(due))
    .with("due_ms", due)
    .with("drift_ms", started - due)
    .with("takeover", takeover));

    let cancel = Cancel::new();
    let lost = Arc::new(AtomicBool::new(false));
    let keeper = tokio::spawn(keep_lease(
        Arc::clone(&service),
        Arc::clone(&schedule),
        due,
        cancel.clone(),
        Arc::clone(&lost),
    ));
    let options = CheckOptions {
        selection: schedule.selection.clone(),
        record: true,
        ..CheckOptions::default()
    };
    let mut sink = Sink {
        collector: Collector::new(),
        errors: BTreeMap::new(),
    };
    let result = check::run(&service.project, &options, &cancel, &mut sink).await;
    keeper.abort();
    let stopping = service.shutdown.is_cancelled();
    let lost = lost.load(Ordering::SeqCst);

    let (end_status, run, findings, errors, error) = match result {
        Err(err) => {
            let text = crate::error::chain(&err);
            log(Record::new(
                Level::Error,
                "run.failed",
                format!("the run failed: {text}"),
            ));
            (Some("failed"), None, None, None, Some(text))
        }
        Ok(report) => {
            let summary = &report.summary;
            let (findings, errored) = (summary.findings, summary.errored_rules);
            let observed = crate::metrics::observe(
                &service.project,
                name,
                &report,
                sink.collector,
                Some(&service.store),
            )
            .await;
            match observed {
                Ok(observation) => {
                    if let Ok(mut metrics) = service.metrics.lock() {
                        metrics.record(&observation);
                    }
                    let repairable = &service.project.schedules[schedule.index].repair;
                    let to_repair: Vec<String> = observation
                        .rules
                        .iter()
                        .filter(|r| r.findings > 0 && r.error.is_none())
                        .filter(|r| repairable.contains(&r.rule))
                        .map(|r| r.rule.clone())
                        .collect();
                    if let (Some(run), false, false) =
                        (report.run, to_repair.is_empty(), report.interrupted)
                    {
                        super::repair::after_run(&service, name, run, to_repair, &cancel).await;
                    }
                    if let Some(notifier) = &schedule.notifier
                        && !report.interrupted
                        && crate::notify::worth_telling(&observation)
                    {
                        let errors = &sink.errors;
                        notifier.send(crate::notify::message(&observation, &|rule| {
                            errors.get(rule).cloned()
                        }));
                    }
                }
                Err(err) => log(Record::new(
                    Level::Error,
                    "metrics.failed",
                    format!(
                        "the run's metrics could not be worked out: {}",
                        crate::error::chain(&err)
                    ),
                )),
            }
            let status = match report.interrupted {
                true => "interrupted",
                false => "complete",
            };
            log(Record::new(
                match report.interrupted || errored > 0 {
                    true => Level::Warn,
                    false => Level::Info,
                },
                "run.finished",
                format!("run {status}"),
            )
            .with("run", report.run)
            .with("status", status)
            .with("rules", report.rules)
            .with("finished_rules", summary.rules)
            .with("findings", findings)
            .with("failed_rules", errored)
            .with(
                "duration_ms",
                u64::try_from(summary.elapsed.as_millis()).unwrap_or(u64::MAX),
            ));
            (
                Some(status),
                report.run,
                i64::try_from(findings).ok(),
                i64::try_from(errored).ok(),
                None,
            )
        }
    };
    if let (Some(id), Some(status)) = (record_id, end_status) {
        let end = ScheduledEnd {
            run,
            status,
            findings,
            errors,
            error: error.as_deref(),
        };
        if let Err(err) = service.store.finish_scheduled(id, &end).await {
            log(Record::new(
                Level::Warn,
                "store.failed",
                format!(
                    "the scheduled run's end cannot be recorded: {}",
                    crate::error::chain(&err)
                ),
            ));
        }
    }
    // A lost lease is another replica's now. A run stopped by this replica's shutdown is
    // handed back for another replica to take over; any other end is done.
    if !lost {
        let done = !(stopping && end_status == Some("interrupted"));
        let now = crate::time::now_millis();
        if let Err(err) = service
            .store
            .release(name, due, &service.replica, done, now)
            .await
        {
            log(Record::new(
                Level::Warn,
                "lease.failed",
                format!(
                    "the lease could not be released; it expires on its own: {}",
                    crate::error::chain(&err)
                ),
            ));
        }
    }
}

/// Renews the lease every third of its expiry while the run goes; cancels the run when the
/// service stops, or when the lease is lost (another replica took the schedule over after
/// this one could not renew in time).
async fn keep_lease(
    service: Arc<Service>,
    schedule: Arc<Schedule>,
    due: i64,
    cancel: Cancel,
    lost: Arc<AtomicBool>,
) {
    let every = service.lease_expiry / 3;
    let mut renewed = crate::time::now_millis();
    loop {
        tokio::select! {
            () = service.shutdown.cancelled() => {
                cancel.cancel();
                return;
            }
            () = tokio::time::sleep(every) => {}
        }
        let now = crate::time::now_millis();
        let expires = now.saturating_add(expiry_millis(&service));
        match service
            .store
            .renew(&schedule.name, due, &service.replica, expires)
            .await
        {
            Ok(true) => renewed = now,
            Ok(false) => {
                lost.store(true, Ordering::SeqCst);
                service.log.log(
                    Record::new(
                        Level::Error,
                        "lease.lost",
                        "the lease was lost (another replica took the schedule over); the run is cancelled",
                    )
                    .with("schedule", schedule.name.as_str()),
                );
                cancel.cancel();
                return;
            }
            Err(err) => {
                service.log.log(
                    Record::new(
                        Level::Warn,
                        "lease.failed",
                        format!(
                            "the lease could not be renewed: {}",
                            crate::error::chain(&err)
                        ),
                    )
                    .with("schedule", schedule.name.as_str()),
                );
                if now - renewed >= expiry_millis(&service) {
                    lost.store(true, Ordering::SeqCst);
                    cancel.cancel();
                    return;
                }
            }
        }
    }
}

/// The metrics collector, keeping each failed rule's message for the webhook (one per
/// rule, cut short: memory stays O(rules)).
struct Sink {
    collector: Collector,
    errors: BTreeMap<String, String>,
}

impl CheckSink for Sink {
    fn start(&mut self, rules: &[Arc<RuleSpec>]) -> std::io::Result<()> {
        self.collector.start(rules)
    }

    fn finding(
        &mut self,
        finding: &Finding,
        fingerprint: Fingerprint,
        accepted: bool,
    ) -> std::io::Result<()> {
        self.collector.finding(finding, fingerprint, accepted)
    }

    fn rule_finished(&mut self, outcome: &RuleOutcome) -> std::io::Result<()> {
        if let Some(error) = &outcome.error {
            let text: String = error.to_string().chars().take(ERROR_CHARS).collect();
            self.errors.insert(outcome.rule.id.clone(), text);
        }
        self.collector.rule_finished(outcome)
    }

    fn finish(&mut self, summary: &Summary) -> std::io::Result<()> {
        self.collector.finish(summary)
    }
}
