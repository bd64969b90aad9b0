//! `trueup plan`, `apply`, `undo` and `repairs`: parse, call `trueup_core::repair`, render.

use std::io::Write;
use std::path::{Path, PathBuf};

use trueup_core::cancel::Cancel;
use trueup_core::load::Project;
use trueup_core::repair::{self, ApplyOptions, ApplyReport, PlanSummary};
use trueup_core::text::escape;

use crate::ExitStatus;
use crate::args::{ApplyArgs, Format, PlanArgs, PlanFormat, RepairsArgs, UndoArgs};
use crate::printer::{BOLD, DIM, Printer, WARNING};
use crate::render::plural;

pub async fn plan(args: &PlanArgs, project_path: &Path) -> anyhow::Result<ExitStatus> {
    let project = Project::load(project_path)?;
    let cancel = Cancel::new();
    let signals = tokio::spawn(crate::checking::stop_on_signals(cancel.clone()));
    let selection = args.select.selection();
    // The plan file goes to --output, else to stdout for --format json, else nowhere.
    let mut out: Box<dyn Write> = match (&args.output, args.format) {
        (Some(path), _) => Box::new(std::io::BufWriter::new(create_plan_file(path)?)),
        (None, PlanFormat::Json) => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
        (None, _) => Box::new(std::io::sink()),
    };
    let from_run = args.from_run.as_deref();
    let summary = repair::plan(&project, &selection, from_run, &cancel, &mut out).await?;
    out.flush()?;
    drop(out);
    if let (Some(path), PlanFormat::Json) = (&args.output, args.format) {
        std::io::copy(&mut std::fs::File::open(path)?, &mut std::io::stdout())?;
    }
    signals.abort();
    let mut out = anstream::stdout().lock();
    match args.format {
        PlanFormat::Human => write_plan(&mut out, &summary, args.output.as_deref())?,
        PlanFormat::Sql => write_sql(&mut out, &summary)?,
        PlanFormat::Json => {}
    }
    Ok(if summary.interrupted {
        ExitStatus::Interrupted
    } else if summary.failed() {
        ExitStatus::Error
    } else {
        ExitStatus::Success
    })
}

fn write_plan(
    out: &mut impl Write,
    plan: &PlanSummary,
    file: Option<&Path>,
) -> std::io::Result<()> {
    for rule in &plan.rules {
        let line = &rule.line;
        writeln!(
            out,
            "{BOLD}{}{BOLD:#} · {} · {} of `{}`",
            escape(&line.rule),
            line.strategy,
            plural(
                rule.end.targets,
                match line.strategy.as_str() {
                    "merge-duplicates" => "group",
                    "evict" => "key",
                    _ => "row",
                }
            ),
            escape(&line.table)
        )?;
        if let Some(why) = &rule.end.refused {
            writeln!(out, "  {WARNING}refused:{WARNING:#} {}", escape(why))?;
        }
        for (table, counts) in rule.end.rows.iter().filter(|(_, c)| c.total() > 0) {
            let mut parts = Vec::new();
            for (n, what) in [
                (
                    counts.delete,
                    if line.strategy == "evict" {
                        "evicted"
                    } else {
                        "deleted"
                    },
                ),
                (counts.update, "changed"),
                (counts.insert, "inserted"),
            ] {
                if n > 0 {
                    parts.push(format!("{n} {what}"));
                }
            }
            writeln!(out, "  {}: {}", escape(table), parts.join(", "))?;
        }
        if !rule.sample.is_empty() {
            let keys: Vec<String> = rule.sample.iter().map(key_text).collect();
            let more = rule.end.targets.saturating_sub(rule.sample.len() as u64);
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            writeln!(out, "  keys: {}{more}", keys.join(" "))?;
        }
        if !line.may_affect.is_empty() {
            let rules: Vec<String> = line
                .may_affect
                .iter()
                .map(|r| format!("`{}`", escape(r)))
                .collect();
            writeln!(
                out,
                "  may change the findings of {} (they read a table it changes): apply re-runs them per batch",
                rules.join(", ")
            )?;
        }
        let transaction = if line.strategy == "evict" {
            "one WATCHed MULTI/EXEC"
        } else {
            "one transaction"
        };
        writeln!(out, "  {DIM}each batch runs, in {transaction}:{DIM:#}")?;
        for statement in &line.statements {
            writeln!(out, "    {DIM}{}{DIM:#}", escape(&one_line(statement)))?;
        }
    }
    for refusal in &plan.refused {
        writeln!(
            out,
            "{BOLD}{}{BOLD:#} · {} · not repaired: {}",
            escape(&refusal.rule),
            refusal.strategy.as_deref().unwrap_or("no repair"),
            escape(&refusal.reason)
        )?;
    }
    let targets: u64 = plan.rules.iter().map(|r| r.end.targets).sum();
    write!(
        out,
        "{} to repair, {} not repaired",
        plural(plan.rules.len(), "rule"),
        plural(plan.refused.len(), "rule")
    )?;
    writeln!(
        out,
        " · {} · plan {}",
        plural(targets, "target"),
        &plan.plan_hash[..12]
    )?;
    match file {
        Some(path) => writeln!(
            out,
            "plan written to {}: review it, then `trueup apply {}`",
            path.display(),
            path.display()
        ),
        None => writeln!(
            out,
            "{DIM}write it with --output FILE, then `trueup apply FILE`{DIM:#}"
        ),
    }
}

/// A key as people read it: `42`, `a@example.com`, `(eu, 42)`; text from data escaped.
fn key_text(key: &serde_json::Value) -> String {
    let value = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => escape(s).into_owned(),
        other => escape(&other.to_string()).into_owned(),
    };
    match key {
        serde_json::Value::Array(parts) if parts.len() == 1 => value(&parts[0]),
        serde_json::Value::Array(parts) => {
            format!(
                "({})",
                parts.iter().map(value).collect::<Vec<_>>().join(", ")
            )
        }
        other => value(other),
    }
}

fn one_line(sql: &str) -> String {
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn write_sql(out: &mut impl Write, plan: &PlanSummary) -> std::io::Result<()> {
    writeln!(
        out,
        "-- trueup plan {} (statements per batch; keys are bound parameters)",
        plan.plan_hash
    )?;
    for rule in &plan.rules {
        writeln!(
            out,
            "\n-- {} · {} · {} target(s)",
            escape(&one_line(&rule.line.rule)),
            rule.line.strategy,
            rule.end.targets
        )?;
        for statement in &rule.line.statements {
            writeln!(out, "{};", statement.trim())?;
        }
    }
    for refusal in &plan.refused {
        writeln!(
            out,
            "\n-- {}: not repaired: {}",
            escape(&one_line(&refusal.rule)),
            escape(&one_line(&refusal.reason))
        )?;
    }
    Ok(())
}

/// The plan file at `path`, created or emptied; something there that is not a regular
/// file (a FIFO would block the open, a device would take the plan) is an error naming it.
fn create_plan_file(path: &Path) -> anyhow::Result<std::fs::File> {
    trueup_core::write::refuse_odd_file(path, "plan")?;
    std::fs::File::create(path)
        .map_err(|e| anyhow::anyhow!("cannot write the plan to {}: {e}", path.display()))
}

/// Where `apply` without a plan file keeps the plan it made and applied.
fn plan_path(project: &Project) -> anyhow::Result<PathBuf> {
    let dir = project.root.join(".trueup").join("plans");
    std::fs::create_dir_all(&dir)?;
    let stamp =
        trueup_core::time::iso8601(trueup_core::time::now_millis()).replace([':', ' '], "-");
    Ok(dir.join(format!("{stamp}-{}.plan.jsonl", std::process::id())))
}

pub async fn apply(args: &ApplyArgs, project_path: &Path) -> anyhow::Result<ExitStatus> {
    let project = Project::load(project_path)?;
    let cancel = Cancel::new();
    let signals = tokio::spawn(crate::checking::stop_on_signals(cancel.clone()));
    let path = match &args.plan {
        Some(_) if args.select.selection().describe().is_some() => {
            anyhow::bail!(
                "--rule, --tag and --source select what to plan; a plan file is applied whole \
                 (make a plan of those rules with `trueup plan --rule … -o FILE`)"
            )
        }
        Some(path) => path.clone(),
        None => {
            let path = plan_path(&project)?;
            let mut file = std::io::BufWriter::new(create_plan_file(&path)?);
            let summary =
                repair::plan(&project, &args.select.selection(), None, &cancel, &mut file).await?;
            file.flush()?;
            for refusal in &summary.refused {
                eprintln!(
                    "{}: not repaired: {}",
                    escape(&refusal.rule),
                    escape(&refusal.reason)
                );
            }
            eprintln!(
                "planned {} (kept in {})",
                plural(summary.rules.len(), "rule"),
                path.display()
            );
            path
        }
    };
    let options = ApplyOptions {
        batch_size: usize::try_from(args.batch_size).unwrap_or(500),
        dry_run: args.dry_run,
        max_rows: args.max_rows,
        allow_new_findings: args.allow_new_findings,
    };
    let report = repair::apply(&project, &path, &options, &cancel, &mut ()).await;
    signals.abort();
    let report = report?;
    if let Some(error) = &report.store_error {
        eprintln!(
            "warning: the state store did not record the repair (it is in the source's journal): {}",
            escape(error)
        );
    }
    let mut out = anstream::stdout().lock();
    match args.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        }
        Format::Human => write_applied(&mut out, &report, &path)?,
    }
    Ok(if report.failed() {
        ExitStatus::Error
    } else if report.interrupted {
        ExitStatus::Interrupted
    } else {
        ExitStatus::Success
    })
}

fn write_applied(out: &mut impl Write, report: &ApplyReport, plan: &Path) -> std::io::Result<()> {
    let verb = if report.dry_run {
        "would repair"
    } else {
        "repaired"
    };
    // A batch that failed stops the apply: the rules after it never ran.
    let stopped = report.rules.iter().any(|r| r.error.is_some());
    for rule in &report.rules {
        write!(
            out,
            "{BOLD}{}{BOLD:#} · {} · {verb} {} of {} · {}",
            escape(&rule.rule),
            rule.strategy,
            rule.repaired,
            rule.planned,
            plural(
                rule.rows,
                if rule.strategy == "evict" {
                    "key"
                } else {
                    "row"
                }
            )
        )?;
        if !rule.reached && rule.planned > 0 && stopped {
            writeln!(out, " · not run: the apply stopped before it")?;
            continue;
        }
        match rule.repair {
            Some(id) if rule.rows > 0 => writeln!(
                out,
                " journaled as repair {id} of source `{}`",
                escape(&rule.source)
            )?,
            _ => writeln!(out)?,
        }
        for (why, n) in &rule.skipped {
            let what = match why {
                repair::Skip::Changed => "changed since the plan (left as they are)",
                repair::Skip::Gone => "gone since the plan",
                repair::Skip::Resolved => "no longer violate the rule",
                repair::Skip::AlreadyApplied => "already repaired by an earlier apply of this plan",
                repair::Skip::SourceChanged => {
                    "their authoritative row changed since the plan (nothing copied)"
                }
            };
            writeln!(out, "  skipped {n}: {what}")?;
        }
        for found in &rule.new_findings {
            writeln!(
                out,
                "  {WARNING}gave{WARNING:#} {} new {} to `{}`, e.g. {}",
                found.count,
                if found.count == 1 {
                    "finding"
                } else {
                    "findings"
                },
                escape(&found.rule),
                found.sample.first().map(key_text).unwrap_or_default()
            )?;
        }
        if let Some(error) = &rule.error {
            writeln!(out, "  {WARNING}stopped:{WARNING:#} {}", escape(error))?;
        }
    }
    for refusal in report.not_repaired.iter().filter(|r| r.error) {
        writeln!(
            out,
            "{BOLD}{}{BOLD:#} · {WARNING}not planned:{WARNING:#} {}",
            escape(&refusal.rule),
            escape(&refusal.reason)
        )?;
    }
    for refusal in &report.refused {
        writeln!(
            out,
            "{BOLD}{}{BOLD:#} · {} · {WARNING}not applied:{WARNING:#} {}",
            escape(&refusal.rule),
            refusal.strategy.as_deref().unwrap_or("no repair"),
            escape(&refusal.reason)
        )?;
    }
    if report.rules.iter().all(|r| r.repaired == 0) && !report.failed() {
        writeln!(
            out,
            "nothing to repair: every planned row is repaired, changed or gone"
        )?;
    }
    if report.dry_run {
        // Redis has no rollback: a dry run of cache keys only reads them.
        let what = if report.rules.iter().all(|r| r.strategy == "evict") {
            "nothing was written"
        } else {
            "everything was rolled back"
        };
        writeln!(
            out,
            "dry run: {what}; `trueup apply {}` to apply",
            plan.display()
        )?;
    } else if report.interrupted {
        writeln!(
            out,
            "interrupted: the batches shown are committed and journaled; apply the plan again to finish"
        )?;
    }
    Ok(())
}

pub async fn undo(
    args: &UndoArgs,
    project_path: &Path,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let project = Project::load(project_path)?;
    let cancel = Cancel::new();
    let signals = tokio::spawn(crate::checking::stop_on_signals(cancel.clone()));
    let source = repair::find_source(&project, args.source.as_deref(), args.repair).await?;
    let report = repair::undo(&project, &source, args.repair, args.force, &cancel).await;
    signals.abort();
    let report = report?;
    if let Some(error) = &report.store_error {
        eprintln!(
            "warning: the state store did not record the undo (it is in the source's journal): {}",
            escape(error)
        );
    }
    let mut out = anstream::stdout().lock();
    if args.format == Format::Json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        for conflict in &report.conflicts {
            writeln!(
                out,
                "  {} {}: {}",
                escape(&conflict.table),
                key_text(&conflict.key),
                conflict.what
            )?;
        }
        if report.complete && report.undoable {
            writeln!(
                out,
                "undid repair {} of source `{}`: {} restored (journaled as repair {}, which `trueup undo {}` would undo)",
                report.repair,
                escape(&report.source),
                plural(report.restored, "row"),
                report.undo,
                report.undo
            )?;
        } else if report.complete {
            let expired = match report.expired {
                0 => String::new(),
                n => format!(
                    ", {} not restored: their expiry passed since the eviction",
                    plural(n, "key")
                ),
            };
            writeln!(
                out,
                "undid repair {} of source `{}`: {} restored with their expiry{expired} (journaled as repair {})",
                report.repair,
                escape(&report.source),
                plural(report.restored, "key"),
                report.undo,
            )?;
        }
    }
    if !report.complete {
        let why = if report.interrupted {
            "interrupted: the batches restored so far are committed; run undo again to finish"
                .to_owned()
        } else {
            // An eviction's undo restores cache keys, a journal page at a time.
            let (unit, part) = match report.undoable {
                true => ("row", "batch"),
                false => ("key", "page"),
            };
            format!(
                "refused: {} changed since repair {} (listed above); nothing of that {part} was restored. \
                 `--force` restores them anyway, overwriting those changes",
                plural(report.conflicts.len(), unit),
                report.repair
            )
        };
        printer.error(&anyhow::anyhow!(why));
        return Ok(if report.interrupted {
            ExitStatus::Interrupted
        } else {
            ExitStatus::Error
        });
    }
    Ok(ExitStatus::Success)
}

pub async fn repairs(args: &RepairsArgs, project_path: &Path) -> anyhow::Result<ExitStatus> {
    let project = Project::load(project_path)?;
    let listed = repair::list(&project, args.source.as_deref()).await?;
    let mut out = anstream::stdout().lock();
    let mut status = ExitStatus::Success;
    let mut all = Vec::new();
    for (source, repairs) in listed {
        match repairs {
            Ok(repairs) => all.extend(repairs),
            Err(e) => {
                eprintln!(
                    "source `{source}`: {}",
                    escape(&trueup_core::error::chain(&e))
                );
                status = ExitStatus::Error;
            }
        }
    }
    if args.format == Format::Json {
        serde_json::to_writer_pretty(&mut out, &all)?;
        writeln!(out)?;
        return Ok(status);
    }
    if all.is_empty() && status == ExitStatus::Success {
        writeln!(out, "no repairs yet")?;
    }
    for r in &all {
        let undone = match (r.undone_by, r.undoes) {
            (Some(by), _) => format!(" · undone by {by}"),
            (None, Some(of)) => format!(" · undoes {of}"),
            _ => String::new(),
        };
        writeln!(
            out,
            "{:>4}  {}  {:<6} {:<8} {:>7}  {}  {}@{}  plan {}{undone}",
            r.id,
            escape(&r.started_at),
            r.kind,
            escape(&r.status),
            plural(r.rows, "row"),
            escape(&r.source),
            escape(r.user.as_deref().unwrap_or("?")),
            escape(r.host.as_deref().unwrap_or("?")),
            escape(r.plan_hash.get(..12).unwrap_or(&r.plan_hash)),
        )?;
        writeln!(out, "      {DIM}{}{DIM:#}", escape(&r.rules.join(", ")))?;
    }
    Ok(status)
}
