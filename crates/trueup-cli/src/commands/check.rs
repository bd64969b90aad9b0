//! `trueup check`: run the selected rules and report their findings.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use std::collections::{HashMap, HashSet};

use anyhow::{Context, bail};
use tokio::sync::mpsc;
use trueup_core::distinct::Distinct;
use trueup_core::engine::{self, Event};
use trueup_core::finding::Finding;
use trueup_core::fingerprint;
use trueup_core::load::{LoadedRule, Project, closest};
use trueup_core::store::{self, Baseline, Store};
use trueup_core::text::Escaped;

use crate::ExitStatus;
use crate::args::{CheckArgs, Format};
use crate::printer::Printer;
use crate::render::{HumanRenderer, JsonRenderer, Renderer, Summary};

/// Events buffered between the engine and the output (a batch of findings is one event);
/// bounds memory whatever the findings.
const EVENT_BUFFER: usize = 16;

pub async fn run(
    args: &CheckArgs,
    project_path: &Path,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let project = Project::load(project_path)?;
    let summary = execute(&project, args, printer, &mut |_| {}).await?;
    Ok(status(&summary))
}

/// What a finished run exits with.
pub fn status(summary: &Summary) -> ExitStatus {
    if summary.errored_rules > 0 {
        ExitStatus::Error
    } else if summary.failing_rules > 0 {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    }
}

/// Runs the rules `args` selects, rendering to stdout; `observe` sees every finding too.
pub async fn execute(
    project: &Project,
    args: &CheckArgs,
    printer: &Printer,
    observe: &mut dyn FnMut(&Finding),
) -> anyhow::Result<Summary> {
    let selected = select(project, args)?;
    let rules = engine::prepare(project, &selected)?;
    let concurrency = args
        .concurrency
        .unwrap_or(project.defaults.concurrency)
        .max(1);
    let sources = Arc::new(engine::open_sources(project, &selected, concurrency).await);
    for (name, source) in sources.iter() {
        if let Err(err) = source {
            printer.error(&anyhow::anyhow!(
                "source `{name}` cannot be opened; its rules fail: {err}"
            ));
        }
    }

    let stdout = std::io::stdout();
    let mut renderer: Box<dyn Renderer> = match args.format {
        Format::Human => Box::new(HumanRenderer::new(
            BufWriter::new(anstream::AutoStream::auto(stdout.lock())),
            args.show,
        )),
        Format::Json => Box::new(JsonRenderer::new(BufWriter::with_capacity(
            64 * 1024,
            stdout.lock(),
        ))),
    };
    let mut summary = Summary::new(args.fail_on.unwrap_or(project.defaults.fail_on));
    let baseline = match args.baseline {
        true => {
            let path = project.root.join(store::baseline::FILE);
            let baseline = Baseline::load(&path)?;
            printer.status(format!(
                "baseline {}: {} accepted finding(s)",
                path.display(),
                baseline.len()
            ));
            Some(baseline)
        }
        false => None,
    };
    let mut recorder = match args.no_record {
        true => None,
        false => {
            let store = Store::open_location(&project.state).await.context(
                "the run cannot be recorded (`check --no-record` runs without recording)",
            )?;
            Some(store.begin_run(&rules).await?)
        }
    };
    let mut accepted: HashMap<String, u64> = HashMap::new();
    let mut seen_in_baseline: HashSet<(String, i64)> = HashSet::new();
    let mut distinct = Distinct::default();
    let mut outcomes = Vec::new();
    let started = Instant::now();
    renderer.start(&rules)?;
    let bar = printer.progress(rules.len());

    let (events, mut received) = mpsc::channel(EVENT_BUFFER);
    // The engine runs as a task of its own, so reading rows and writing the output use two
    // cores rather than taking turns on one.
    let detect = {
        let (rules, sources) = (rules.clone(), Arc::clone(&sources));
        let options = engine::RunOptions {
            concurrency: usize::try_from(concurrency).unwrap_or(1),
            split: usize::try_from(args.split.unwrap_or(project.defaults.split))
                .unwrap_or(1)
                .max(1),
        };
        tokio::spawn(async move { engine::run(&rules, &sources, options, &events).await })
    };
    let report = async {
        let mut running: Vec<String> = Vec::new();
        let mut found = 0u64;
        let consumed = async {
            while let Some(event) = received.recv().await {
                match event {
                    Event::Started(rule) => running.push(rule.id.clone()),
                    Event::Findings(batch) => {
                        for finding in batch {
                            found += 1;
                            observe(&finding);
                            let print = fingerprint::of(&finding);
                            if !distinct.first(&finding.rule.id, print) {
                                continue; // a repeated key: counted on its rule
                            }
                            let in_baseline = baseline
                                .as_ref()
                                .is_some_and(|b| b.contains(&finding.rule.id, print));
                            if in_baseline {
                                *accepted.entry(finding.rule.id.clone()).or_default() += 1;
                                seen_in_baseline.insert((finding.rule.id.clone(), print));
                            }
                            renderer.finding(&finding, print, in_baseline)?;
                            if let Some(recorder) = recorder.as_mut() {
                                recorder.add(finding, print).await;
                            }
                            if found.is_multiple_of(4096) {
                                bar.set_message(format!(
                                    "· {found} findings · {}",
                                    Escaped(running.join(", "))
                                ));
                            }
                        }
                        continue;
                    }
                    Event::Finished(mut outcome) => {
                        outcome.repeats = distinct.finish(&outcome.rule.id);
                        outcome.findings = outcome.findings.saturating_sub(outcome.repeats);
                        running.retain(|id| *id != outcome.rule.id);
                        summary.add(
                            &outcome,
                            accepted.get(&outcome.rule.id).copied().unwrap_or(0),
                        );
                        bar.inc(1);
                        bar.suspend(|| renderer.rule_finished(&outcome))?;
                        outcomes.push(outcome);
                    }
                }
                bar.set_message(format!(
                    "· {found} findings · {}",
                    Escaped(running.join(", "))
                ));
            }
            Ok::<_, std::io::Error>(())
        }
        .await;
        // When the output fails (a closed pipe), stop the engine instead of letting it wait
        // for a reader that is gone.
        received.close();
        consumed
    };
    let (detected, reported) = tokio::join!(detect, report);
    detected.context("the engine stopped")?;
    bar.finish_and_clear();
    for source in sources.values().flatten() {
        source.close().await;
    }
    reported?;
    summary.elapsed = started.elapsed();
    renderer.finish(&summary)?;
    std::io::stdout().flush()?;
    if let Some(recorder) = recorder {
        let run = recorder.finish(&outcomes).await?;
        match run {
            1 => printer.status("recorded as run 1 (.trueup/state.db); after the next check, `trueup diff` compares the two"),
            _ => printer.status(format!("recorded as run {run}; `trueup diff` compares it with the run before")),
        }
    }
    if let Some(baseline) = &baseline {
        let ran = |rule: &str| {
            outcomes
                .iter()
                .any(|o| o.rule.id == rule && o.error.is_none())
        };
        let stale = baseline.stale(ran, &seen_in_baseline);
        if stale > 0 {
            printer.status(format!(
                "{stale} accepted finding(s) of the baseline were not found any more: fixed debt; \
                 `trueup baseline accept` after this run drops them"
            ));
        }
    }
    if summary.errored_rules > 0 {
        printer.error(&anyhow::anyhow!(
            "{} of {} could not run; their errors are in the report",
            summary.errored_rules,
            crate::render::plural(summary.rules, "rule")
        ));
    }
    Ok(summary)
}

/// The rules `--rule`, `--tag` and `--source` select, in project order.
fn select<'p>(project: &'p Project, args: &CheckArgs) -> anyhow::Result<Vec<&'p LoadedRule>> {
    check_rule_patterns(project, &args.rules)?;
    for name in &args.sources {
        if !project.sources.contains_key(name) {
            let close = closest(name, project.sources.keys().map(String::as_str))
                .map(|close| format!("; did you mean `{close}`?"))
                .unwrap_or_default();
            bail!(
                "no source is named `{name}` in {}{close}",
                project.file.path.display()
            );
        }
    }
    for tag in &args.tags {
        if !project.rules.iter().any(|r| r.rule.tags.contains(tag)) {
            let mut tags: Vec<&str> = project
                .rules
                .iter()
                .flat_map(|r| r.rule.tags.iter().map(String::as_str))
                .collect();
            tags.sort_unstable();
            tags.dedup();
            let close = closest(tag, tags.iter().copied())
                .map(|close| format!("did you mean `{close}`? "))
                .unwrap_or_default();
            bail!(
                "no rule has the tag `{tag}`; {close}the tags are: {}",
                tags.join(", ")
            );
        }
    }
    let selected: Vec<&LoadedRule> = project
        .rules
        .iter()
        .filter(|r| rule_selected(&args.rules, &r.rule.id))
        .filter(|r| args.tags.is_empty() || r.rule.tags.iter().any(|t| args.tags.contains(t)))
        .filter(|r| args.sources.is_empty() || args.sources.contains(&r.source))
        .collect();
    if selected.is_empty() {
        bail!("the filters select no rule");
    }
    Ok(selected)
}

/// Fails on a `--rule` pattern that matches no rule, suggesting a close id.
pub fn check_rule_patterns(project: &Project, patterns: &[String]) -> anyhow::Result<()> {
    let ids = || project.rules.iter().map(|r| r.rule.id.as_str());
    for pattern in patterns {
        if !ids().any(|id| id_matches(pattern, id)) {
            match closest(pattern, ids()) {
                Some(close) => bail!("no rule matches `--rule {pattern}`; did you mean `{close}`?"),
                None => {
                    bail!("no rule matches `--rule {pattern}`; `trueup compile` lists every rule")
                }
            }
        }
    }
    Ok(())
}

/// Whether `--rule` patterns (none: every rule) select rule `id`.
pub fn rule_selected(patterns: &[String], id: &str) -> bool {
    patterns.is_empty() || patterns.iter().any(|pattern| id_matches(pattern, id))
}

/// `orders.total` matches itself; `orders.*` matches every id starting with `orders.`.
fn id_matches(pattern: &str, id: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => id.starts_with(prefix),
        None => pattern == id,
    }
}
