//! The `check` use case: select rules, prepare them, open their sources, run them, weigh
//! the findings against the baseline and record the run, handing every event to the
//! caller's [`CheckSink`] (the CLI renders; a scheduler counts and records).

mod select;
mod summary;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;

pub use select::{Selection, check_rule_patterns, rule_selected};
pub use summary::{Summary, millis};

use crate::cancel::Cancel;
use crate::distinct::Distinct;
use crate::engine::{self, Event};
use crate::finding::{Finding, RuleSpec};
use crate::fingerprint::Fingerprint;
use crate::load::Project;
use crate::outcome::{RuleError, RuleOutcome};
use crate::rule::Severity;
use crate::store::{self, Baseline, RunId, Store};
use crate::{Error, Result};

/// Events buffered between the engine and the sink (a batch of findings is one event);
/// bounds memory whatever the findings.
const EVENT_BUFFER: usize = 16;

/// How long an interrupted run waits for a source to cancel its queries.
const CANCEL_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// How a check runs; `None` takes the project's default.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    pub selection: Selection,
    pub concurrency: Option<u32>,
    pub split: Option<u32>,
    pub fail_on: Option<Severity>,
    /// Weigh findings against the project's baseline file.
    pub baseline: bool,
    /// Record the run in the project's state store.
    pub record: bool,
}

/// What a run tells its caller, in order: sources that failed and the baseline first, then
/// `start`, findings and rule events interleaved as they happen, then `finish`. An `Err`
/// from the sink (a closed pipe) stops the run.
pub trait CheckSink {
    /// A source could not be opened; its rules fail with `error`.
    fn source_failed(&mut self, _source: &str, _error: &RuleError) {}
    /// The baseline file was read.
    fn baseline_loaded(&mut self, _path: &std::path::Path, _accepted: usize) {}
    fn start(&mut self, rules: &[Arc<RuleSpec>]) -> std::io::Result<()>;
    /// A rule's first query was sent.
    fn rule_started(&mut self, _rule: &Arc<RuleSpec>) {}
    /// A finding, its fingerprint, and whether the baseline holds it.
    fn finding(
        &mut self,
        finding: &Finding,
        fingerprint: Fingerprint,
        accepted: bool,
    ) -> std::io::Result<()>;
    fn rule_finished(&mut self, outcome: &RuleOutcome) -> std::io::Result<()>;
    fn finish(&mut self, summary: &Summary) -> std::io::Result<()>;
}

/// How a run ended.
#[derive(Debug)]
pub struct CheckReport {
    pub summary: Summary,
    /// The recorded run (none with `record: false`); an interrupted run is recorded as
    /// such, with what finished.
    pub run: Option<RunId>,
    /// The baseline file, when the run used one, and how many of its accepted findings
    /// were not found any more by rules that ran to the end.
    pub baseline: Option<(PathBuf, usize)>,
    /// The run was cancelled: rules still running were stopped (their queries cancelled in
    /// the database) and are not in the summary; the run is recorded as interrupted, never
    /// complete.
    pub interrupted: bool,
    /// How many rules the run had; `summary.rules` of them finished.
    pub rules: usize,
}

/// Runs the rules `options` selects; `cancel` stops it.
pub async fn run<S: CheckSink>(
    project: &Project,
    options: &CheckOptions,
    cancel: &Cancel,
    sink: &mut S,
) -> Result<CheckReport> {
    let selected = options.selection.select(project)?;
    project.resolve_sources(&selected)?;
    if options.record {
        project.state.resolve()?;
    }
    let plan = Arc::new(engine::prepare(project, &selected)?);
    let rules = &plan.rules;
    let concurrency = options
        .concurrency
        .unwrap_or(project.defaults.concurrency)
        .max(1);
    // The run's time includes opening its sources (a source that does not answer is time
    // spent too).
    let started = Instant::now();
    let sources = Arc::new(crate::source::open_all(project, &selected, concurrency).await);
    for (name, source) in sources.iter() {
        if let Err(failure) = source {
            sink.source_failed(name, &failure.error);
        }
    }
    let baseline = match options.baseline {
        true => {
            let path = project.root.join(store::baseline::FILE);
            let baseline = Baseline::load(&path)?;
            sink.baseline_loaded(&path, baseline.len());
            Some((path, baseline))
        }
        false => None,
    };
    let mut recorder =
        match options.record {
            true => {
                let store = Store::open_location(&project.state).await.map_err(|err| {
                    Error::Context {
                    context:
                        "the run cannot be recorded (`check --no-record` runs without recording)"
                            .to_owned(),
                    source: Box::new(err),
                }
                })?;
                Some(
                    store
                        .begin_run(rules, options.selection.describe().as_deref())
                        .await?,
                )
            }
            false => None,
        };

    let mut summary = Summary::new(options.fail_on.unwrap_or(project.defaults.fail_on));
    let mut accepted: HashMap<String, u64> = HashMap::new();
    let mut seen_in_baseline: HashSet<(String, Fingerprint)> = HashSet::new();
    let mut distinct = Distinct::default();
    let mut outcomes = Vec::new();
    sink.start(rules)?;

    let (events, mut received) = mpsc::channel(EVENT_BUFFER);
    // The engine runs as a task of its own, so reading rows and handing them on use two
    // cores rather than taking turns on one.
    let detect = {
        let (plan, sources) = (Arc::clone(&plan), Arc::clone(&sources));
        let run_options = engine::RunOptions {
            concurrency: usize::try_from(concurrency).unwrap_or(1),
            split: usize::try_from(options.split.unwrap_or(project.defaults.split))
                .unwrap_or(1)
                .max(1),
        };
        tokio::spawn(async move { engine::run(&plan, &sources, run_options, &events).await })
    };
    let abort = detect.abort_handle();
    let mut interrupted = false;
    let consumed = async {
        loop {
            let event = tokio::select! {
                biased;
                () = cancel.cancelled() => {
                    interrupted = true;
                    // The queries first, in the database, so that none goes on running
                    // there once trueup has stopped waiting for it.
                    for source in sources.values().flatten() {
                        let _ = tokio::time::timeout(CANCEL_WAIT, source.cancel_running()).await;
                    }
                    abort.abort();
                    break;
                }
                event = received.recv() => event,
            };
            let Some(event) = event else { break };
            match event {
                Event::Started(rule) => sink.rule_started(&rule),
                Event::Findings(batch) => {
                    for finding in batch {
                        let print = finding.fingerprint();
                        if !distinct.first(&finding.rule.id, print) {
                            continue; // a repeated key: counted on its rule
                        }
                        // A table-level finding (stale, too few rows) is never accepted:
                        // when the table is wrong again, it is new again.
                        let in_baseline = !crate::rule::is_table_level(finding.rule.kind)
                            && baseline
                                .as_ref()
                                .is_some_and(|(_, b)| b.contains(&finding.rule.id, print));
                        if in_baseline {
                            *accepted.entry(finding.rule.id.clone()).or_default() += 1;
                            seen_in_baseline.insert((finding.rule.id.clone(), print));
                        }
                        sink.finding(&finding, print, in_baseline)?;
                        if let Some(recorder) = recorder.as_mut() {
                            recorder.add(finding, print).await;
                        }
                    }
                }
                Event::Finished(mut outcome) => {
                    outcome.repeats = distinct.finish(&outcome.rule.id);
                    outcome.findings = outcome.findings.saturating_sub(outcome.repeats);
                    summary.add(
                        &outcome,
                        accepted.get(&outcome.rule.id).copied().unwrap_or(0),
                    );
                    sink.rule_finished(&outcome)?;
                    outcomes.push(outcome);
                }
            }
        }
        Ok::<_, std::io::Error>(())
    }
    .await;
    // When the sink fails (a closed pipe), stop the engine instead of letting it wait for a
    // reader that is gone.
    received.close();
    match detect.await {
        Ok(()) => {}
        Err(err) if err.is_cancelled() => {}
        Err(err) => return Err(Error::Other(format!("the engine stopped: {err}"))),
    }
    for source in sources.values().flatten() {
        source.close().await;
    }
    consumed?;
    summary.elapsed = started.elapsed();
    sink.finish(&summary)?;

    let run = match recorder {
        Some(recorder) if interrupted => Some(recorder.interrupt(&outcomes).await?),
        Some(recorder) => Some(recorder.finish(&outcomes).await?),
        None => None,
    };
    let baseline = baseline.map(|(path, baseline)| {
        let ran = |rule: &str| {
            outcomes
                .iter()
                .any(|o| o.rule.id == rule && o.error.is_none())
        };
        (path, baseline.stale(ran, &seen_in_baseline))
    });
    Ok(CheckReport {
        summary,
        run,
        baseline,
        interrupted,
        rules: rules.len(),
    })
}
