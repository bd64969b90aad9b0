//! `trueup show RUN`: one recorded run, its rules and their first findings.

use std::io::Write;
use std::path::Path;

use serde::Serialize;
use trueup_core::store::{RunRule, RunSummary, StoredFinding};
use trueup_core::text::Escaped;

use crate::ExitStatus;
use crate::args::{Format, ShowArgs};
use crate::commands::read_store;
use crate::printer::{BOLD, DIM, ERROR};

#[derive(Serialize)]
struct Shown {
    run: RunSummary,
    rules: Vec<RunRule>,
    findings: Vec<StoredFinding>,
}

pub async fn run(args: &ShowArgs, project: &Path) -> anyhow::Result<ExitStatus> {
    let store = read_store(project).await?;
    let id = store.resolve(&args.run).await?;
    let limit = match args.format {
        Format::Json => None,
        Format::Human => Some(i64::try_from(args.show).unwrap_or(i64::MAX)),
    };
    let shown = Shown {
        run: store.run(id).await?,
        rules: store.run_rules(id).await?,
        findings: store.findings(id, limit).await?,
    };
    store.close().await;
    let mut out = anstream::stdout().lock();
    if args.format == Format::Json {
        serde_json::to_writer_pretty(&mut out, &shown)?;
        writeln!(out)?;
        return Ok(ExitStatus::Success);
    }
    let run = &shown.run;
    let finished = match &run.finished_at {
        Some(at) => format!("finished {at}"),
        None => format!("{ERROR}incomplete{ERROR:#} (still running, or killed)"),
    };
    writeln!(
        out,
        "{BOLD}run {}{BOLD:#} · started {} · {finished} · trueup {}",
        run.id, run.started_at, run.tool_version
    )?;
    writeln!(
        out,
        "{} rules · {} findings · {} errors · rule set {}\n",
        run.rules, run.findings, run.errors, run.rules_hash
    )?;
    for rule in &shown.rules {
        writeln!(
            out,
            "{BOLD}{}{BOLD:#} {DIM}· {} · {} findings · {} ms{DIM:#}",
            Escaped(&rule.rule),
            rule.severity,
            rule.findings,
            rule.duration_ms
        )?;
        if let Some(error) = &rule.error {
            writeln!(out, "    {ERROR}{}{ERROR:#}", Escaped(error))?;
        }
        for finding in shown.findings.iter().filter(|f| f.rule == rule.rule) {
            writeln!(
                out,
                "    {}  {DIM}{}{DIM:#}",
                Escaped(super::diff::key_text(&finding.key)),
                Escaped(&finding.message)
            )?;
        }
    }
    Ok(ExitStatus::Success)
}
