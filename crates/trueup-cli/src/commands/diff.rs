//! `trueup diff [FROM] [TO]`: what changed between two runs, per rule. Rule ids and keys are
//! data: human output writes them [`Escaped`], Markdown in code spans that they cannot leave
//! ([`markdown_code`], [`markdown_cell_code`]); JSON carries them exactly.

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use trueup_core::store::{Diff, DiffKey, RuleChange, RuleDiff};
use trueup_core::text::{Escaped, markdown_cell_code, markdown_code};

use crate::ExitStatus;
use crate::args::{DiffArgs, DiffFormat};
use crate::commands::read_store;
use crate::printer::{BOLD, DIM, ERROR, OK};

pub async fn run(args: &DiffArgs, project: &Path) -> anyhow::Result<ExitStatus> {
    let store = read_store(project).await?;
    let from = store
        .resolve(args.from.as_deref().unwrap_or("last~1"))
        .await?;
    let to = store.resolve(args.to.as_deref().unwrap_or("last")).await?;
    let diff = store.diff(from, to).await?;
    store.close().await;
    let mut out = anstream::stdout().lock();
    match args.format {
        DiffFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &diff)?;
            writeln!(out)?;
        }
        DiffFormat::Human => out.write_all(human(&diff, args.show).as_bytes())?,
        DiffFormat::Markdown => out.write_all(markdown(&diff, args.show).as_bytes())?,
    }
    Ok(ExitStatus::Success)
}

/// `id=42` or `order_id=7, line=2`, from a stored key object.
pub fn key_text(key: &serde_json::Value) -> String {
    match key.as_object() {
        Some(columns) => columns
            .iter()
            .map(|(name, value)| match value {
                serde_json::Value::String(text) => format!("{name}={text}"),
                serde_json::Value::Null => format!("{name}=NULL"),
                other => format!("{name}={other}"),
            })
            .collect::<Vec<_>>()
            .join(", "),
        None => key.to_string(),
    }
}

/// What a rule's line says about it.
fn summary(rule: &RuleDiff) -> String {
    match rule.change {
        RuleChange::Same => format!(
            "{} new · {} resolved · {} persisting",
            rule.new.len(),
            rule.resolved.len(),
            rule.persisting
        ),
        RuleChange::Added => format!("rule added · {} findings", rule.after),
        RuleChange::Removed => format!("rule removed · had {} findings", rule.before),
        RuleChange::Changed => format!(
            "rule changed · {} findings before, {} after (not compared)",
            rule.before, rule.after
        ),
        RuleChange::Failed => format!(
            "failed in one run · {} findings before, {} after (not compared)",
            rule.before, rule.after
        ),
    }
}

fn keys(list: &[DiffKey], show: usize) -> (Vec<String>, usize) {
    (
        list.iter().take(show).map(|k| key_text(&k.key)).collect(),
        list.len().saturating_sub(show),
    )
}

fn human(diff: &Diff, show: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{BOLD}run {} → run {}{BOLD:#} · {} new · {} resolved · {} persisting\n",
        diff.from.id, diff.to.id, diff.new, diff.resolved, diff.persisting
    );
    for rule in &diff.rules {
        let mark = match rule.change {
            RuleChange::Same if rule.new.is_empty() => format!("{OK}={OK:#}"),
            RuleChange::Same => format!("{ERROR}+{ERROR:#}"),
            _ => format!("{DIM}~{DIM:#}"),
        };
        let _ = writeln!(
            out,
            "{mark} {BOLD}{}{BOLD:#} {DIM}· {}{DIM:#}",
            Escaped(&rule.rule),
            summary(rule)
        );
        for (sign, list) in [("+", &rule.new), ("-", &rule.resolved)] {
            let (shown, hidden) = keys(list, show);
            for key in shown {
                let _ = writeln!(out, "    {sign} {}", Escaped(key));
            }
            if hidden > 0 {
                let _ = writeln!(
                    out,
                    "    {DIM}{sign} … and {hidden} more (--format json lists all){DIM:#}"
                );
            }
        }
    }
    out
}

fn markdown(diff: &Diff, show: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### trueup: run {} → run {}\n",
        diff.from.id, diff.to.id
    );
    let _ = writeln!(
        out,
        "**{}** new · **{}** resolved · {} persisting\n",
        diff.new, diff.resolved, diff.persisting
    );
    let _ = writeln!(
        out,
        "| rule | change | new | resolved | persisting |\n|---|---|---:|---:|---:|"
    );
    for rule in &diff.rules {
        let change = match rule.change {
            RuleChange::Same => "same",
            RuleChange::Added => "added",
            RuleChange::Removed => "removed",
            RuleChange::Changed => "changed",
            RuleChange::Failed => "failed",
        };
        let _ = match rule.change {
            RuleChange::Same => writeln!(
                out,
                "| {} | {change} | {} | {} | {} |",
                markdown_cell_code(&rule.rule),
                rule.new.len(),
                rule.resolved.len(),
                rule.persisting
            ),
            // Not compared: say what each run found instead.
            _ => writeln!(
                out,
                "| {} | {change} ({} → {} findings) | – | – | – |",
                markdown_cell_code(&rule.rule),
                rule.before,
                rule.after
            ),
        };
    }
    for rule in diff
        .rules
        .iter()
        .filter(|r| !r.new.is_empty() || !r.resolved.is_empty())
    {
        let _ = writeln!(out, "\n#### {}\n", markdown_code(&rule.rule));
        for (what, list) in [("new", &rule.new), ("resolved", &rule.resolved)] {
            let (shown, hidden) = keys(list, show);
            for key in shown {
                let _ = writeln!(out, "- {what}: {}", markdown_code(&key));
            }
            if hidden > 0 {
                let _ = writeln!(out, "- … and {hidden} more {what}");
            }
        }
    }
    out
}
