//! The detection engine: runs rules concurrently, each against its source with a timeout,
//! and streams what happens as [`Event`]s through a bounded channel. A rule that fails
//! (bad SQL, timeout, lost connection) ends as that rule's error; the others go on.

mod plugin_sink;
mod prepare;

pub use plugin_sink::{FindingSink, PluginSink};
pub use prepare::{Loaded, Plan, prepare};

use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::mpsc;

use crate::compile::DetectorQuery;
use crate::finding::{Finding, RuleSpec, Shape, TwoSources};
use crate::outcome::{RuleError, RuleOutcome};
use crate::plugin::Limits;

use crate::source::{QueryError, RowSink, Sources, rule_error as describe};
use crate::value::Value;
use crate::{Error, Result};

/// What the engine reports while it runs.
#[derive(Debug)]
pub enum Event {
    /// A rule's query was sent.
    Started(Arc<RuleSpec>),
    /// Violating rows, in the order the query returned them: batched, so that handing
    /// findings to the output costs one wake-up per batch rather than per row.
    Findings(Vec<Finding>),
    /// A rule is done, with or without an error.
    Finished(RuleOutcome),
}

/// How the engine runs rules.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    /// How many queries run at once.
    pub concurrency: usize,
    /// How many key ranges a splittable rule (an `aggregate-match` on a single-column
    /// integer key) runs as, each its own query; 1 runs it whole.
    pub split: usize,
}

/// Runs `rules`, sending events to `events`, and returns when every rule has finished;
/// findings were streamed on the way.
///
/// Each rule is first planned (its columns checked, a splittable rule cut into key ranges),
/// then its queries join one queue, at most `concurrency` running at once. The parts of
/// split rules go first: they are the heaviest, and the small queries fill the gaps beside
/// them, so no connection idles while another still has a long way to go.
///
/// The stream closures take indices, not references, so that the future is `Send` and can
/// be spawned (closures taking references defeat the compiler's proof of it).
pub async fn run(
    plan: &Plan,
    sources: &Sources,
    options: RunOptions,
    events: &mpsc::Sender<Event>,
) {
    let (rules, plugins) = (&plan.rules, &plan.plugins);
    let concurrency = options.concurrency.max(1);
    // Each plan with the time it took; a rule whose source could not be opened took the
    // time that trying took too, so that its report says how long it waited, not 0 ms.
    let (spent, plans): (Vec<Duration>, Vec<Result<Vec<DetectorQuery>, RuleError>>) =
        futures_util::stream::iter(0..rules.len())
            .map(|index| async move {
                let started = Instant::now();
                let plan = queries(&rules[index], sources, options.split).await;
                let waited = match sources.get(&rules[index].source) {
                    Some(Err(failure)) => failure.elapsed,
                    _ => Duration::ZERO,
                };
                (waited + started.elapsed(), plan)
            })
            .buffered(concurrency)
            .unzip()
            .await;

    let progress: Vec<Mutex<Progress>> = plans
        .iter()
        .map(|plan| {
            Mutex::new(Progress {
                parts_left: plan.as_ref().map_or(0, Vec::len),
                ..Progress::default()
            })
        })
        .collect();
    // (rule, query) indices.
    let mut queue: Vec<(usize, usize)> = Vec::new();
    for (index, plan) in plans.iter().enumerate() {
        match plan {
            Ok(queries) => queue.extend((0..queries.len()).map(|query| (index, query))),
            Err(error) => {
                let _ = events.send(Event::Started(rules[index].clone())).await;
                let outcome = RuleOutcome {
                    rule: rules[index].clone(),
                    findings: 0,
                    repeats: 0,
                    elapsed: spent[index],
                    error: Some(error.clone()),
                };
                let _ = events.send(Event::Finished(outcome)).await;
            }
        }
    }
    queue.sort_by_key(|(index, _)| {
        plans[*index]
            .as_ref()
            .map_or(true, |queries| queries.len() < 2)
    });

    futures_util::stream::iter(queue)
        .for_each_concurrent(concurrency, |(index, query)| {
            let (rule, progress) = (&rules[index], &progress[index]);
            let query = match &plans[index] {
                Ok(queries) => &queries[query],
                Err(_) => unreachable!("only planned rules are queued"),
            };
            async move {
                if events.is_closed() {
                    return; // nobody reads the results any more
                }
                let first = {
                    let mut state = progress.lock().expect("progress lock");
                    state.started.get_or_insert_with(Instant::now);
                    !std::mem::replace(&mut state.announced, true)
                };
                if first {
                    let _ = events.send(Event::Started(rule.clone())).await;
                }
                let mut emitter = Emitter {
                    rule: rule.clone(),
                    shape: None,
                    findings: 0,
                    batch: Vec::new(),
                    batch_started: Instant::now(),
                    events,
                };
                let error = match (sources.get(&rule.source), &plugins[index]) {
                    (Some(Ok(_)), Some(Err(err))) => Some(err.clone()),
                    (Some(Ok(source)), Some(Ok(plugin))) => {
                        let call = query
                            .plugin
                            .as_ref()
                            .expect("a plugin rule's query names it");
                        let mut sink = PluginSink::new(
                            plugin.clone(),
                            rule.clone(),
                            call.config.clone(),
                            Limits::of_rule(&call.limits, rule.timeout),
                            &mut emitter,
                        );
                        match source.fetch(query, rule.timeout, &mut sink).await {
                            Ok(()) => sink.finish().await.err().map(|e| RuleError::from_error(&e)),
                            // The query streams while the plugin checks: the deadline
                            // covered both.
                            Err(QueryError::Timeout(limit)) => Some(RuleError::Timeout {
                                limit,
                                with_plugin: true,
                            }),
                            Err(err) => Some(describe(err)),
                        }
                    }
                    (Some(Ok(source)), None) => match (&rule.two_sources, &rule.right_source) {
                        (Some(two), Some(right)) => match sources.get(right) {
                            Some(Ok(right)) => {
                                let timeout = rule.timeout;
                                match two {
                                    TwoSources::Reconcile(d) => {
                                        crate::reconcile::run(
                                            d,
                                            source,
                                            right,
                                            timeout,
                                            &mut emitter,
                                        )
                                        .await
                                    }
                                    TwoSources::Cache(d) => {
                                        crate::cache::run(d, source, right, timeout, &mut emitter)
                                            .await
                                    }
                                }
                                .err()
                            }
                            Some(Err(failure)) => Some(failure.error.clone()),
                            None => {
                                Some(RuleError::Other(format!("source `{right}` was not opened")))
                            }
                        },
                        _ => source
                            .fetch(query, rule.timeout, &mut emitter)
                            .await
                            .err()
                            .map(describe),
                    },
                    (Some(Err(failure)), _) => Some(failure.error.clone()),
                    (None, _) => Some(not_opened(rule)),
                };
                // The findings before an error are reported too.
                let _ = emitter.flush().await;
                let finished = {
                    let mut state = progress.lock().expect("progress lock");
                    state.findings += emitter.findings;
                    if state.error.is_none() {
                        state.error = error;
                    }
                    state.parts_left -= 1;
                    (state.parts_left == 0).then(|| RuleOutcome {
                        rule: rule.clone(),
                        findings: state.findings,
                        repeats: 0,
                        elapsed: state.started.map(|s| s.elapsed()).unwrap_or_default(),
                        error: state.error.take(),
                    })
                };
                if let Some(outcome) = finished {
                    let _ = events.send(Event::Finished(outcome)).await;
                }
            }
        })
        .await;
}

/// Where a rule's queries are while they run.
#[derive(Debug, Default)]
struct Progress {
    started: Option<Instant>,
    announced: bool,
    parts_left: usize,
    findings: u64,
    error: Option<RuleError>,
}

fn not_opened(rule: &RuleSpec) -> RuleError {
    RuleError::Other(format!("source `{}` was not opened", rule.source))
}

/// The queries a rule runs as: one, or one per key range of a split rule. Checks first that
/// the columns a built-in names exist: on SQLite a misspelt column in double quotes would
/// silently become a string literal, so the check is what keeps a typo from being a wrong
/// answer. A source that could not be opened fails the rule here.
async fn queries(
    rule: &RuleSpec,
    sources: &Sources,
    split: usize,
) -> Result<Vec<DetectorQuery>, RuleError> {
    if let Some(refused) = &rule.refused {
        return Err(RuleError::Refused(refused.clone()));
    }
    let source = match sources.get(&rule.source) {
        Some(Ok(source)) => source,
        Some(Err(failure)) => return Err(failure.error.clone()),
        None => return Err(not_opened(rule)),
    };
    if let Some(right) = &rule.right_source
        && let Some(Err(failure)) = sources.get(right)
    {
        return Err(failure.error.clone());
    }
    let failed = |err: Error| RuleError::from_error(&err);
    for (table, columns) in &rule.columns_used {
        let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
        let problems = source
            .schema_problems(table, &columns)
            .await
            .map_err(failed)?;
        if let Some(problem) = problems.first() {
            let hint = problem.hint().map(|h| format!("; {h}")).unwrap_or_default();
            return Err(RuleError::Configuration(format!("{problem}{hint}")));
        }
    }
    // A freshness column that holds no timestamps would never fire (SQLite) or fail with an
    // operator error (PostgreSQL): say what is wrong with it instead.
    if let Some(column) = &rule.timestamp_column
        && let Some(problem) = source
            .timestamp_problem(column, rule.timeout)
            .await
            .map_err(describe)?
    {
        return Err(RuleError::Configuration(problem));
    }
    let bounds = match rule.query.split.as_ref().filter(|_| split > 1) {
        Some(plan) => source
            .key_bounds(&plan.bounds_sql)
            .await
            .map_err(failed)?
            .map(|b| (plan, b)),
        None => None,
    };
    Ok(match bounds {
        Some((plan, (lo, hi))) => key_ranges(lo, hi, split)
            .into_iter()
            .map(|(from, to)| {
                let mut binds = rule.query.binds.clone();
                binds.extend([Value::Int(from), Value::Int(to)]);
                DetectorQuery {
                    sql: plan.range_sql.clone(),
                    binds,
                    split: None,
                    ..rule.query.clone()
                }
            })
            .collect(),
        None => vec![rule.query.clone()],
    })
}

/// `lo..=hi` cut into at most `parts` contiguous inclusive ranges of about equal width.
pub(crate) fn key_ranges(lo: i64, hi: i64, parts: usize) -> Vec<(i64, i64)> {
    let (lo_wide, hi_wide) = (i128::from(lo), i128::from(hi));
    let count = (hi_wide - lo_wide + 1).clamp(1, i128::try_from(parts.max(1)).unwrap_or(1));
    let width = (hi_wide - lo_wide + 1) / count;
    let narrow = |x: i128| i64::try_from(x).unwrap_or(i64::MAX);
    (0..count)
        .map(|k| {
            let start = lo_wide + k * width;
            let end = if k == count - 1 {
                hi_wide
            } else {
                start + width - 1
            };
            (narrow(start), narrow(end))
        })
        .collect()
}

/// Findings handed to the output at once, at most; and the longest a finding waits for its
/// batch to fill while a slow query trickles.
const FINDINGS_BATCH: usize = 256;
const FINDINGS_BATCH_WAIT: Duration = Duration::from_millis(50);

/// Turns a rule's result rows into findings on the event channel.
struct Emitter<'a> {
    rule: Arc<RuleSpec>,
    shape: Option<Arc<Shape>>,
    findings: u64,
    batch: Vec<Finding>,
    batch_started: Instant,
    events: &'a mpsc::Sender<Event>,
}

impl Emitter<'_> {
    async fn flush(&mut self) -> Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(FINDINGS_BATCH));
        self.events
            .send(Event::Findings(batch))
            .await
            .map_err(|_| Error::Other("the output was closed".to_owned()))
    }
}

impl FindingSink for Emitter<'_> {
    async fn finding(&mut self, finding: Finding) -> Result<()> {
        self.findings += 1;
        if self.batch.is_empty() {
            self.batch_started = Instant::now();
        }
        self.batch.push(finding);
        if self.batch.len() >= FINDINGS_BATCH || self.batch_started.elapsed() >= FINDINGS_BATCH_WAIT
        {
            self.flush().await?;
        }
        Ok(())
    }
}

impl RowSink for Emitter<'_> {
    fn columns(&mut self, names: Vec<String>) -> Result<()> {
        self.shape = Some(Arc::new(Shape::new(names, &self.rule.query)?));
        Ok(())
    }

    async fn row(&mut self, values: Vec<Value>) -> Result<()> {
        let shape = self
            .shape
            .clone()
            .ok_or_else(|| Error::Other("row before columns".to_owned()))?;
        let finding = Finding {
            rule: self.rule.clone(),
            shape,
            values,
            message: None,
        };
        self.finding(finding).await
    }
}

#[cfg(test)]
mod tests {
    use super::key_ranges;

    #[test]
    fn key_ranges_cover_every_key_once() {
        assert_eq!(key_ranges(1, 10, 2), [(1, 5), (6, 10)]);
        assert_eq!(key_ranges(1, 10, 3), [(1, 3), (4, 6), (7, 10)]);
        assert_eq!(key_ranges(5, 5, 4), [(5, 5)]);
        assert_eq!(key_ranges(1, 2, 4), [(1, 1), (2, 2)]);
        assert_eq!(
            key_ranges(i64::MIN, i64::MAX, 2),
            [(i64::MIN, -1), (0, i64::MAX)]
        );
    }
}
