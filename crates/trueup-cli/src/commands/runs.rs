//! `trueup runs`: the recorded runs, newest first.

use std::io::Write;
use std::path::Path;

use trueup_core::store::RunStatus;
use trueup_core::text::Escaped;

use crate::ExitStatus;
use crate::args::{Format, RunsArgs};
use crate::commands::read_store;
use crate::printer::{DIM, ERROR};

pub async fn run(args: &RunsArgs, project: &Path) -> anyhow::Result<ExitStatus> {
    let store = read_store(project).await?;
    let runs = store.runs(args.limit).await?;
    store.close().await;
    let mut out = anstream::stdout().lock();
    match args.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &runs)?;
            writeln!(out)?;
        }
        Format::Human if runs.is_empty() => {
            writeln!(out, "no runs recorded yet: `trueup check` records one")?
        }
        Format::Human => {
            writeln!(
                out,
                "{DIM}   run  started (UTC)         rules   findings  errors  rule set{DIM:#}"
            )?;
            for run in &runs {
                let state = match run.status {
                    RunStatus::Complete => String::new(),
                    RunStatus::Running => {
                        format!("  {ERROR}incomplete{ERROR:#} {DIM}(running, or killed){DIM:#}")
                    }
                    RunStatus::Interrupted => {
                        format!("  {ERROR}incomplete{ERROR:#} {DIM}(interrupted){DIM:#}")
                    }
                    RunStatus::Abandoned => format!(
                        "  {ERROR}incomplete{ERROR:#} {DIM}(abandoned: past its deadline){DIM:#}"
                    ),
                };
                // A filtered check says what it selected.
                let selected = run
                    .selection
                    .as_ref()
                    .map(|s| format!("  {DIM}{}{DIM:#}", Escaped(s)))
                    .unwrap_or_default();
                writeln!(
                    out,
                    "{:>6}  {:<20}  {:>5}  {:>9}  {:>6}  {}{selected}{state}",
                    run.id,
                    // Read back from the store, which another process may have written.
                    Escaped(&run.started_at),
                    run.rules,
                    run.findings,
                    run.errors,
                    Escaped(&run.rules_hash)
                )?;
            }
        }
    }
    Ok(ExitStatus::Success)
}
