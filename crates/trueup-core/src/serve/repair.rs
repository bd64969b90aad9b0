//! The repair a schedule may run after its check (`repair = ["rule-id", …]`): the rules it
//! names that found something are planned from the run just recorded (`plan --from-run`)
//! and applied with their own limits (`max-rows`, no new findings in other rules), exactly
//! as `trueup apply` does; the plan file is kept under `.trueup/plans/`.

use std::io::Write;
use std::sync::Arc;

use super::Service;
use super::log::{Level, Record};
use crate::cancel::Cancel;
use crate::check::Selection;
use crate::repair::{self, ApplyOptions};
use crate::store::RunId;

/// Plans and applies the repairs of `rules` (which found something in `run`), logging what
/// each did; never fails the run: what goes wrong is logged.
pub async fn after_run(
    service: &Arc<Service>,
    schedule: &str,
    run: RunId,
    rules: Vec<String>,
    cancel: &Cancel,
) {
    // The repair use case's futures are not `Send` (they write the plan through a
    // `dyn Write`): they run on a thread of their own, driven by this runtime.
    let (service, schedule, cancel) = (Arc::clone(service), schedule.to_owned(), cancel.clone());
    let runtime = tokio::runtime::Handle::current();
    let done = tokio::task::spawn_blocking(move || {
        runtime.block_on(plan_and_apply(&service, &schedule, run, rules, &cancel));
    });
    let _ = done.await;
}

async fn plan_and_apply(
    service: &Service,
    schedule: &str,
    run: RunId,
    rules: Vec<String>,
    cancel: &Cancel,
) {
    let log = |record: Record| {
        service
            .log
            .log(record.with("schedule", schedule).with("run", run))
    };
    let project = &service.project;
    let dir = project.root.join(".trueup").join("plans");
    let path = dir.join(format!("serve-{schedule}-run-{run}.plan.jsonl"));
    let failed = |what: &str, err: String| {
        log(Record::new(
            Level::Error,
            "repair.failed",
            format!("the repair could not be {what}: {err}"),
        ))
    };
    let file = std::fs::create_dir_all(&dir).and_then(|()| std::fs::File::create(&path));
    let mut file = match file {
        Ok(file) => std::io::BufWriter::new(file),
        Err(err) => return failed("planned", format!("{}: {err}", path.display())),
    };
    let selection = Selection {
        rules,
        ..Selection::default()
    };
    let from = run.to_string();
    let planned = repair::plan(project, &selection, Some(&from), cancel, &mut file).await;
    let planned = match planned.and_then(|s| file.flush().map(|()| s).map_err(Into::into)) {
        Ok(summary) => summary,
        Err(err) => return failed("planned", crate::error::chain(&err)),
    };
    for refusal in &planned.refused {
        log(Record::new(
            Level::Warn,
            "repair.refused",
            format!("not repaired: {}", refusal.reason),
        )
        .with("rule", refusal.rule.as_str()));
    }
    if planned.rules.is_empty() || planned.interrupted {
        return;
    }
    let applied = repair::apply(project, &path, &ApplyOptions::default(), cancel, &mut ()).await;
    let report = match applied {
        Ok(report) => report,
        Err(err) => return failed("applied", crate::error::chain(&err)),
    };
    for rule in &report.rules {
        let record = match &rule.error {
            Some(error) => Record::new(
                Level::Error,
                "repair.failed",
                format!("the repair failed and was rolled back: {error}"),
            ),
            None => Record::new(Level::Info, "repair.applied", "repaired"),
        };
        log(record
            .with("rule", rule.rule.as_str())
            .with("repair", rule.repair)
            .with("repaired", rule.repaired)
            .with("planned", rule.planned)
            .with("rows", rule.rows)
            .with("plan", path.display().to_string()));
    }
    for refusal in &report.refused {
        log(Record::new(
            Level::Warn,
            "repair.refused",
            format!("not repaired: {}", refusal.reason),
        )
        .with("rule", refusal.rule.as_str()));
    }
}
