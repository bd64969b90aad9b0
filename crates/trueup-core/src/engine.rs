//! The detection engine: runs rules concurrently, each against its source with a timeout,
//! and streams what happens as [`Event`]s through a bounded channel. A rule that fails
//! (bad SQL, timeout, lost connection) ends as that rule's error; the others go on.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::mpsc;

use crate::compile::{DetectorQuery, compile};
use crate::finding::{Finding, RuleSpec, Shape};
use crate::load::{LoadedRule, Project};
use crate::source::{QueryError, RowSink, Source};
use crate::value::Value;
use crate::{Error, Result};

/// What the engine reports while it runs.
#[derive(Debug)]
pub enum Event {
    /// A rule's query was sent.
    Started(Arc<RuleSpec>),
    /// A violating row.
    Finding(Finding),
    /// A rule is done, with or without an error.
    Finished(RuleOutcome),
}

/// How one rule's run ended.
#[derive(Debug, Clone)]
pub struct RuleOutcome {
    pub rule: Arc<RuleSpec>,
    pub findings: u64,
    pub elapsed: Duration,
    /// Why the rule could not finish; its findings so far were still reported.
    pub error: Option<String>,
}

/// The open sources of a run, by name; a source that could not be opened keeps its error.
pub type Sources = BTreeMap<String, Result<Source, String>>;

/// Turns loaded rules into runnable ones, compiling each for its source's dialect.
pub fn prepare(project: &Project, rules: &[&LoadedRule]) -> Result<Vec<Arc<RuleSpec>>> {
    rules
        .iter()
        .map(|loaded| {
            let rule = &loaded.rule;
            let spec = &project.sources[&loaded.source];
            let dialect = Source::dialect_of(spec)?;
            let mut query = compile(&rule.detector, dialect)
                .map_err(|e| Error::Other(format!("rule `{}`: {e}", rule.id)))?;
            if dialect == crate::dialect::Dialect::Postgres {
                for (name, value) in &rule.postgres_settings {
                    query.settings.retain(|(n, _)| n != name);
                    query.settings.push((name.clone(), value.clone()));
                }
            }
            Ok(Arc::new(RuleSpec {
                id: rule.id.clone(),
                title: rule.title.clone(),
                severity: rule.severity,
                tags: rule.tags.clone(),
                kind: rule.detector.kind(),
                source: loaded.source.clone(),
                timeout: rule.timeout.unwrap_or(project.defaults.timeout).0,
                columns_used: crate::validate::columns_used(&rule.detector),
                query,
            }))
        })
        .collect()
}

/// Opens every source the rules use, at once; failures are kept per source.
pub async fn open_sources(
    project: &Project,
    rules: &[&LoadedRule],
    max_connections: u32,
) -> Sources {
    let mut names: Vec<&str> = rules.iter().map(|r| r.source.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let opened = futures_util::future::join_all(names.iter().map(|name| async move {
        let spec = &project.sources[*name];
        let pool_size = spec.max_connections.unwrap_or(max_connections);
        let source = Source::connect(spec, &project.root, pool_size)
            .await
            .map_err(|e| crate::error::chain(&e));
        ((*name).to_owned(), source)
    }))
    .await;
    opened.into_iter().collect()
}

/// How the engine runs rules.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    /// How many rules run at once.
    pub concurrency: usize,
    /// How many key ranges a splittable rule (an `aggregate-match` on a single-column
    /// integer key) runs as, each on its own connection; 1 runs it whole.
    pub split: usize,
}

/// Runs `rules`, sending events to `events`, and returns when every rule has finished;
/// findings were streamed on the way. Rules that can be split start first: they are the
/// heaviest, and the small ones fill the gaps beside them.
pub async fn run(
    rules: &[Arc<RuleSpec>],
    sources: &Sources,
    options: RunOptions,
    events: &mpsc::Sender<Event>,
) {
    let mut order: Vec<&Arc<RuleSpec>> = rules.iter().collect();
    order.sort_by_key(|rule| rule.query.split.is_none());
    futures_util::stream::iter(order)
        .for_each_concurrent(options.concurrency.max(1), |rule| async move {
            if events.is_closed() {
                return; // nobody reads the results any more
            }
            let started = Instant::now();
            let _ = events.send(Event::Started(rule.clone())).await;
            let mut emitter = Emitter { rule: rule.clone(), shape: None, findings: 0, events };
            let error = match sources.get(&rule.source) {
                Some(Ok(source)) => match run_rule(source, rule, options.split, &mut emitter).await {
                    Ok(()) => None,
                    Err(QueryError::Timeout(limit)) => Some(format!(
                        "timed out after {}; the query was cancelled (raise `timeout` on the rule to allow more)",
                        crate::duration::HumanDuration(limit)
                    )),
                    Err(QueryError::Failed(err)) => Some(crate::error::chain(&err)),
                },
                Some(Err(err)) => Some(err.clone()),
                None => Some(format!("source `{}` was not opened", rule.source)),
            };
            let outcome = RuleOutcome { rule: rule.clone(), findings: emitter.findings, elapsed: started.elapsed(), error };
            let _ = events.send(Event::Finished(outcome)).await;
        })
        .await;
}

/// Checks that the columns a built-in names exist, then runs its query, whole or as key
/// ranges. On SQLite a misspelt column in double quotes would silently become a string
/// literal, so the check is what keeps a typo from being a wrong answer.
async fn run_rule(
    source: &Source,
    rule: &RuleSpec,
    split: usize,
    emitter: &mut Emitter<'_>,
) -> Result<(), QueryError> {
    for (table, columns) in &rule.columns_used {
        let existing = source.columns(table).await?.ok_or_else(|| {
            Error::Other(format!("source `{}` has no table `{table}`", source.name))
        })?;
        if let Some(missing) = columns.iter().find(|c| !existing.contains(c)) {
            let hint = crate::load::closest(missing, existing.iter().map(String::as_str))
                .map(|close| format!("; did you mean `{close}`?"))
                .unwrap_or_default();
            return Err(
                Error::Other(format!("table `{table}` has no column `{missing}`{hint}")).into(),
            );
        }
    }
    if let Some(plan) = rule.query.split.as_ref().filter(|_| split > 1)
        && let Some((lo, hi)) = source.key_bounds(&plan.bounds_sql).await?
    {
        let queries: Vec<DetectorQuery> = key_ranges(lo, hi, split)
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
            .collect();
        let mut parts: Vec<Emitter<'_>> = queries.iter().map(|_| emitter.part()).collect();
        let results = futures_util::future::join_all(
            queries
                .iter()
                .zip(parts.iter_mut())
                .map(|(query, part)| source.fetch(query, rule.timeout, part)),
        )
        .await;
        emitter.findings += parts.iter().map(|part| part.findings).sum::<u64>();
        return results.into_iter().collect();
    }
    source.fetch(&rule.query, rule.timeout, emitter).await
}

/// `lo..=hi` cut into at most `parts` contiguous inclusive ranges of about equal width.
fn key_ranges(lo: i64, hi: i64, parts: usize) -> Vec<(i64, i64)> {
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

/// Turns a rule's result rows into findings on the event channel.
struct Emitter<'a> {
    rule: Arc<RuleSpec>,
    shape: Option<Arc<Shape>>,
    findings: u64,
    events: &'a mpsc::Sender<Event>,
}

impl<'a> Emitter<'a> {
    /// An emitter for one key range of the same rule.
    fn part(&self) -> Emitter<'a> {
        Emitter {
            rule: self.rule.clone(),
            shape: None,
            findings: 0,
            events: self.events,
        }
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
        self.findings += 1;
        let finding = Finding {
            rule: self.rule.clone(),
            shape,
            values,
        };
        self.events
            .send(Event::Finding(finding))
            .await
            .map_err(|_| Error::Other("the output was closed".to_owned()))
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
