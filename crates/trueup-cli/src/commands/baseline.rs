//! `trueup baseline accept [RUN]`: accept a run's findings into the committed baseline.

use std::path::Path;

use crate::ExitStatus;
use crate::args::{BaselineArgs, BaselineCommand};
use crate::commands::{baseline_path, read_store};
use crate::printer::Printer;

pub async fn run(
    args: &BaselineArgs,
    project: &Path,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    match &args.command {
        BaselineCommand::Accept { run } => {
            let store = read_store(project).await?;
            let id = store.resolve(run).await?;
            let path = baseline_path(project);
            let done = store.accept(id, &path).await?;
            store.close().await;
            printer.status(format!(
                "accepted {} finding(s) of run {id} into {}{}; commit it, and `check --baseline` fails only on new findings",
                done.accepted,
                path.display(),
                match done.kept {
                    0 => String::new(),
                    kept => format!(" (kept {kept} line(s) of rules the run did not run)"),
                }
            ));
            if !done.table_level.is_empty() {
                printer.status(format!(
                    "not accepted: the findings of {} are about whole tables (freshness, \
                     row count) and stay findings until the table is right again",
                    done.table_level.join(", ")
                ));
            }
            if !done.failed_rules.is_empty() {
                printer.status(format!(
                    "warning: these rules failed in run {id}, their old lines were kept: {}",
                    done.failed_rules.join(", ")
                ));
            }
            Ok(ExitStatus::Success)
        }
    }
}
