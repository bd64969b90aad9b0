//! A check run for the commands that run one (`check`, `demo`): the core's use case
//! (`trueup_core::check`) with the CLI's renderers, progress bar and status lines as its sink.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

use indicatif::ProgressBar;
use trueup_core::cancel::Cancel;
use trueup_core::check::{self, CheckOptions, CheckReport, CheckSink, Summary};
use trueup_core::finding::{Finding, RuleSpec};
use trueup_core::load::Project;
use trueup_core::metrics::Collector;
use trueup_core::outcome::{RuleError, RuleOutcome};
use trueup_core::report;
use trueup_core::store::{Store, StoreLocation};
use trueup_core::text::Escaped;

use crate::ExitStatus;
use crate::args::{CheckArgs, CheckFormat};
use crate::output_file::{self, write_to};
use crate::printer::Printer;
use crate::render::{HumanRenderer, JsonRenderer};

/// What a finished run exits with.
pub fn status(report: &CheckReport) -> ExitStatus {
    let summary = &report.summary;
    if report.interrupted {
        ExitStatus::Interrupted
    } else if summary.errored_rules > 0 {
        ExitStatus::Error
    } else if summary.failing_rules > 0 {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    }
}

/// What `check`'s flags ask of the use case.
pub fn options(args: &CheckArgs) -> CheckOptions {
    CheckOptions {
        selection: args.select.selection(),
        concurrency: args.concurrency,
        split: args.split,
        fail_on: args.fail_on,
        baseline: args.baseline,
        record: !args.no_record,
    }
}

/// Runs the rules `args` selects, rendering to stdout; `observe` sees every finding too.
pub async fn execute(
    project: &Project,
    args: &CheckArgs,
    printer: &Printer,
    observe: &mut dyn FnMut(&Finding),
) -> anyhow::Result<CheckReport> {
    // `--output FILE` is refused now, before the run, when it cannot be written.
    let mut file = args
        .output
        .as_deref()
        .map(output_file::create)
        .transpose()?;
    // The report formats render once the run is over, from what this collected.
    let mut collector = report::Collector::new(args.show);
    let stdout = std::io::stdout();
    let renderer: Box<dyn CheckSink> = match (args.format, file.as_mut()) {
        (CheckFormat::Human, None) => Box::new(HumanRenderer::new(
            BufWriter::new(anstream::AutoStream::auto(stdout.lock())),
            args.show,
        )),
        (CheckFormat::Human, Some(file)) => Box::new(HumanRenderer::new(
            anstream::StripStream::new(file as &mut dyn Write),
            args.show,
        )),
        (CheckFormat::Json, None) => Box::new(JsonRenderer::new(BufWriter::with_capacity(
            64 * 1024,
            stdout.lock(),
        ))),
        (CheckFormat::Json, Some(file)) => Box::new(JsonRenderer::new(file)),
        (CheckFormat::Junit | CheckFormat::Markdown, _) => Box::new(&mut collector),
    };
    let mut sink = Output {
        renderer,
        printer,
        bar: ProgressBar::hidden(),
        tally: Tally::default(),
        observe,
        collector: args.metrics_file.as_ref().map(|_| Collector::new()),
    };
    let cancel = Cancel::new();
    let signals = tokio::spawn(stop_on_signals(cancel.clone()));
    let report = check::run(project, &options(args), &cancel, &mut sink).await;
    signals.abort();
    sink.bar.finish_and_clear();
    let metrics = sink.collector.take();
    drop(sink);
    let report = report?;
    std::io::stdout().flush()?;
    let format = match args.format {
        CheckFormat::Junit => Some(report::Format::Junit),
        CheckFormat::Markdown => Some(report::Format::Markdown),
        CheckFormat::Human | CheckFormat::Json => None,
    };
    if let Some(format) = format {
        let mut live = collector.report(&report, args.select.selection().describe());
        compare(project, &mut live, printer).await;
        write_to(file, |out| report::render(&live, format, out))?;
    } else if let Some(file) = file {
        file.commit()?;
    }
    after_run(&report, &project.state, printer);
    if let (Some(path), Some(collector)) = (&args.metrics_file, metrics) {
        trueup_core::metrics::write_run(project, &args.schedule, &report, collector, path).await?;
    }
    Ok(report)
}

/// New and resolved findings against the run before, when this one was recorded complete;
/// a store that cannot tell leaves them out, and says why.
async fn compare(project: &Project, live: &mut report::Report, printer: &Printer) {
    if live.run.id.is_none() || live.run.finished_at.is_none() {
        return;
    }
    let compared = async {
        let store = Store::open_read_only(&project.state).await?;
        let compared = report::compare(&store, live).await;
        store.close().await;
        compared
    };
    if let Err(err) = compared.await {
        printer.status(format!(
            "the report has no new and resolved findings: {}",
            trueup_core::error::chain(&err)
        ));
    }
}

/// The first SIGINT or SIGTERM cancels the run (its queries are cancelled in their
/// databases, what finished is reported); a second one exits at once.
pub(crate) async fn stop_on_signals(cancel: Cancel) {
    signal().await;
    cancel.cancel();
    signal().await;
    std::process::exit(130);
}

/// The next SIGINT or SIGTERM.
async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut interrupt), Ok(mut terminate)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The lines on stderr once the report is written: where the run was recorded, fixed
/// debt in the baseline, rules that could not run.
fn after_run(report: &CheckReport, state: &StoreLocation, printer: &Printer) {
    if report.interrupted {
        let recorded = report
            .run
            .map(|run| format!("; recorded as run {run}, interrupted (diff and baselines skip it)"))
            .unwrap_or_default();
        printer.error(&anyhow::anyhow!(
            "interrupted: {} of {} finished (their findings are above); the queries still \
             running were cancelled{recorded}",
            report.summary.rules,
            crate::render::plural(report.rules, "rule")
        ));
        return;
    }
    match report.run {
        Some(1) => printer.status(format!(
            "recorded as run 1 ({}); after the next check, `trueup diff` compares the two",
            shown_location(state)
        )),
        Some(run) => printer.status(format!(
            "recorded as run {run}; `trueup diff` compares it with the run before"
        )),
        None => {}
    }
    if let Some((_, stale)) = report.baseline
        && stale > 0
    {
        printer.status(format!(
            "{stale} accepted finding(s) of the baseline were not found any more: fixed debt; \
             `trueup baseline accept` after this run drops them"
        ));
    }
    let summary = &report.summary;
    if summary.errored_rules > 0 {
        printer.error(&anyhow::anyhow!(
            "{} of {} could not run; their errors are in the report",
            summary.errored_rules,
            crate::render::plural(summary.rules, "rule")
        ));
    }
}

/// The store as the user can reach it: a file relative to where they stand when it is
/// below it, a PostgreSQL URL without its password.
fn shown_location(state: &StoreLocation) -> String {
    if let StoreLocation::File(path) = state
        && let Ok(here) = std::env::current_dir()
        && let Ok(relative) = path.strip_prefix(&here)
    {
        return relative.display().to_string();
    }
    // The URL the run was recorded at, its `${VAR}`s resolved (shown without its password).
    state.resolve().as_ref().unwrap_or(state).to_string()
}

/// The CLI's sink: the renderer on stdout, the progress bar and status lines on stderr.
struct Output<'a> {
    renderer: Box<dyn CheckSink + 'a>,
    printer: &'a Printer,
    bar: ProgressBar,
    tally: Tally,
    observe: &'a mut dyn FnMut(&Finding),
    /// What `--metrics-file` writes is collected here.
    collector: Option<Collector>,
}

impl Output<'_> {
    /// One message holds the rules done and the findings, so that no frame pairs a new
    /// count of one with an old count of the other (a frame drawn between two updates
    /// showed every rule done beside the findings of all but the last); the bar itself
    /// follows.
    fn show_progress(&self) {
        self.bar.set_message(self.tally.line());
        self.bar.set_position(self.tally.done);
    }
}

/// What the progress bar says: rules done of all, the findings reported so far (one per
/// key, accepted ones too: what the summary counts), and the rules running now.
#[derive(Debug, Default)]
struct Tally {
    rules: u64,
    done: u64,
    found: u64,
    running: Vec<String>,
}

impl Tally {
    fn line(&self) -> String {
        let mut line = format!(
            "{}/{} rules · {}",
            self.done,
            self.rules,
            crate::render::plural(self.found, "finding")
        );
        if !self.running.is_empty() {
            line.push_str(&format!(" · {}", Escaped(self.running.join(", "))));
        }
        line
    }

    fn finished(&mut self, rule: &str) {
        self.running.retain(|id| id != rule);
        self.done += 1;
    }
}

impl CheckSink for Output<'_> {
    fn source_failed(&mut self, source: &str, error: &RuleError) {
        self.printer.error(&anyhow::anyhow!(
            "source `{source}` cannot be opened; its rules fail: {error}"
        ));
    }

    fn baseline_loaded(&mut self, path: &Path, accepted: usize) {
        self.printer.status(format!(
            "baseline {}: {accepted} accepted finding(s)",
            path.display()
        ));
    }

    fn start(&mut self, rules: &[Arc<RuleSpec>]) -> std::io::Result<()> {
        if let Some(collector) = self.collector.as_mut() {
            collector.start(rules)?;
        }
        self.renderer.start(rules)?;
        self.bar = self.printer.progress(rules.len());
        self.tally.rules = rules.len() as u64;
        self.show_progress();
        Ok(())
    }

    fn rule_started(&mut self, rule: &Arc<RuleSpec>) {
        self.tally.running.push(rule.id.clone());
        self.show_progress();
    }

    fn finding(
        &mut self,
        finding: &Finding,
        fingerprint: trueup_core::fingerprint::Fingerprint,
        accepted: bool,
    ) -> std::io::Result<()> {
        self.tally.found += 1;
        (self.observe)(finding);
        if let Some(collector) = self.collector.as_mut() {
            collector.finding(finding, fingerprint, accepted)?;
        }
        self.renderer.finding(finding, fingerprint, accepted)?;
        if self.tally.found.is_multiple_of(4096) {
            self.show_progress();
        }
        Ok(())
    }

    fn rule_finished(&mut self, outcome: &RuleOutcome) -> std::io::Result<()> {
        if let Some(collector) = self.collector.as_mut() {
            collector.rule_finished(outcome)?;
        }
        self.tally.finished(&outcome.rule.id);
        self.show_progress();
        let renderer = &mut self.renderer;
        self.bar.suspend(|| renderer.rule_finished(outcome))?;
        Ok(())
    }

    fn finish(&mut self, summary: &Summary) -> std::io::Result<()> {
        self.bar.finish_and_clear();
        self.renderer.finish(summary)
    }
}

#[cfg(test)]
mod tests {
    use super::Tally;

    #[test]
    fn the_progress_line_counts_a_finished_rule_with_its_findings_in_one_message() {
        let mut tally = Tally {
            rules: 2,
            ..Tally::default()
        };
        assert_eq!(tally.line(), "0/2 rules · 0 findings");
        tally.running.extend(["a".to_owned(), "b".to_owned()]);
        tally.found += 3;
        assert_eq!(tally.line(), "0/2 rules · 3 findings · a, b");
        tally.finished("a");
        assert_eq!(tally.line(), "1/2 rules · 3 findings · b");
        tally.found += 1;
        tally.finished("b");
        // The last frame: every rule done, every finding counted, nothing running.
        assert_eq!(tally.line(), "2/2 rules · 4 findings");
    }

    #[test]
    fn rule_ids_in_the_progress_line_are_escaped() {
        let tally = Tally {
            rules: 1,
            running: vec!["x\u{1b}[2Jy".to_owned()],
            ..Tally::default()
        };
        assert!(!tally.line().contains('\u{1b}'), "{}", tally.line());
    }
}
