//! `trueup diff [FROM] [TO]`: what changed between two runs, per rule. Rule ids and keys are
//! data: human output writes them [`Escaped`], Markdown in code spans that they cannot leave
//! ([`markdown_code`], [`markdown_cell_code`]); JSON carries them exactly. Keys are read from
//! the store as they are written: human and Markdown read the first `--show` of each rule,
//! JSON all of them, one at a time.

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use futures_util::{StreamExt, TryStreamExt};
use serde::Serialize;
use trueup_core::store::{Diff, RuleChange, RuleDiff, Side, Store};
use trueup_core::text::{Escaped, markdown_cell_code, markdown_code};

use crate::ExitStatus;
use crate::args::{DiffArgs, DiffFormat};
use crate::commands::read_store;
use crate::printer::{BOLD, DIM, ERROR, OK, Printer};
use crate::render::plural;

pub async fn run(args: &DiffArgs, project: &Path, printer: &Printer) -> anyhow::Result<ExitStatus> {
    let store = read_store(project).await?;
    let to = store.resolve(args.to.as_deref().unwrap_or("last")).await?;
    let from = match args.from.as_deref() {
        Some(from) => store.resolve(from).await?,
        // Runs of the same selection compare; say which one that is.
        None => {
            let from = store.previous_like(to).await?;
            let selection = store.run(to).await?.selection;
            printer.status(format!(
                "comparing run {to} with run {from}, the newest complete run before it of {}",
                selection.map_or_else(
                    || "every rule".to_owned(),
                    |s| format!("the same selection (`{}`)", Escaped(s))
                )
            ));
            from
        }
    };
    let diff = store.diff(from, to).await?;
    let mut out = std::io::BufWriter::new(anstream::stdout().lock());
    let written = match args.format {
        DiffFormat::Json => json(&store, &diff, &mut out).await,
        DiffFormat::Human => {
            let text = human(&diff, &shown(&store, &diff, args.show).await?);
            out.write_all(text.as_bytes()).map_err(Into::into)
        }
        DiffFormat::Markdown => {
            let text = markdown(&diff, &shown(&store, &diff, args.show).await?);
            out.write_all(text.as_bytes()).map_err(Into::into)
        }
    };
    store.close().await;
    written?;
    out.flush()?;
    Ok(ExitStatus::Success)
}

/// Per rule, the text of its first `show` new and resolved keys.
async fn shown(store: &Store, diff: &Diff, show: usize) -> anyhow::Result<Vec<[Vec<String>; 2]>> {
    let mut shown = Vec::with_capacity(diff.rules.len());
    for rule in &diff.rules {
        let mut sides: [Vec<String>; 2] = Default::default();
        for (side, keys) in [Side::New, Side::Resolved].into_iter().zip(&mut sides) {
            *keys = store
                .diff_keys(rule, side)
                .take(show)
                .map_ok(|k| key_text(&k.key))
                .try_collect()
                .await?;
        }
        shown.push(sides);
    }
    Ok(shown)
}

/// The JSON serde writes pretty for the whole diff, its keys written as they are read:
/// `{"from", "to", "new", "resolved", "persisting", "rules": [{"rule", "change", "before",
/// "after", "persisting", "new": [{"fingerprint", "key"}], "resolved": [...]}]}`.
async fn json(store: &Store, diff: &Diff, out: &mut impl Write) -> anyhow::Result<()> {
    writeln!(out, "{{")?;
    field(out, 1, "from", &diff.from)?;
    field(out, 1, "to", &diff.to)?;
    field(out, 1, "new", &diff.new)?;
    field(out, 1, "resolved", &diff.resolved)?;
    field(out, 1, "persisting", &diff.persisting)?;
    write!(out, "  \"rules\": [")?;
    for (i, rule) in diff.rules.iter().enumerate() {
        write!(out, "{}\n    {{\n", if i == 0 { "" } else { "," })?;
        field(out, 3, "rule", &rule.rule)?;
        field(out, 3, "change", &rule.change)?;
        field(out, 3, "before", &rule.before)?;
        field(out, 3, "after", &rule.after)?;
        field(out, 3, "persisting", &rule.persisting)?;
        for (side, name, end) in [(Side::New, "new", ","), (Side::Resolved, "resolved", "")] {
            write!(out, "      \"{name}\": [")?;
            let mut keys = std::pin::pin!(store.diff_keys(rule, side));
            let mut first = true;
            while let Some(key) = keys.try_next().await? {
                write!(out, "{}\n        ", if first { "" } else { "," })?;
                pretty(out, 4, &key)?;
                first = false;
            }
            writeln!(out, "{}]{end}", if first { "" } else { "\n      " })?;
        }
        write!(out, "    }}")?;
    }
    writeln!(
        out,
        "{}]\n}}",
        if diff.rules.is_empty() { "" } else { "\n  " }
    )?;
    Ok(())
}

/// One `"name": value,` line of an object `depth` deep.
fn field(
    out: &mut impl Write,
    depth: usize,
    name: &str,
    value: &impl Serialize,
) -> anyhow::Result<()> {
    write!(out, "{}\"{name}\": ", "  ".repeat(depth))?;
    pretty(out, depth, value)?;
    writeln!(out, ",")?;
    Ok(())
}

/// `value` as serde writes it pretty, indented to sit `depth` deep (JSON text holds no raw
/// line breaks but those between its parts).
fn pretty(out: &mut impl Write, depth: usize, value: &impl Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    out.write_all(
        text.replace('\n', &format!("\n{}", "  ".repeat(depth)))
            .as_bytes(),
    )?;
    Ok(())
}

pub use trueup_core::store::key_text;

/// What a rule's line says about it.
fn summary(diff: &Diff, rule: &RuleDiff) -> String {
    match rule.change {
        RuleChange::Same => format!(
            "{} new · {} resolved · {} persisting",
            rule.new, rule.resolved, rule.persisting
        ),
        RuleChange::Added => format!("rule added · {}", plural(rule.after, "finding")),
        RuleChange::Removed => format!("rule removed · had {}", plural(rule.before, "finding")),
        RuleChange::NotRunBefore => format!(
            "not run in run {} (not selected) · {} now",
            diff.from.id,
            plural(rule.after, "finding")
        ),
        RuleChange::NotRunAfter => format!(
            "not run in run {} (not selected) · had {}",
            diff.to.id,
            plural(rule.before, "finding")
        ),
        RuleChange::Changed => format!(
            "rule changed · {} before, {} after (not compared)",
            plural(rule.before, "finding"),
            rule.after
        ),
        RuleChange::Failed => format!(
            "failed in one run · {} before, {} after (not compared)",
            plural(rule.before, "finding"),
            rule.after
        ),
    }
}

/// How many of a rule's `count` keys were not shown.
fn hidden(count: u64, shown: &[String]) -> u64 {
    count.saturating_sub(shown.len() as u64)
}

fn human(diff: &Diff, shown: &[[Vec<String>; 2]]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{BOLD}run {} → run {}{BOLD:#} · {} new · {} resolved · {} persisting\n",
        diff.from.id, diff.to.id, diff.new, diff.resolved, diff.persisting
    );
    for (rule, [new, resolved]) in diff.rules.iter().zip(shown) {
        let mark = match rule.change {
            RuleChange::Same if rule.new == 0 => format!("{OK}={OK:#}"),
            RuleChange::Same => format!("{ERROR}+{ERROR:#}"),
            _ => format!("{DIM}~{DIM:#}"),
        };
        let _ = writeln!(
            out,
            "{mark} {BOLD}{}{BOLD:#} {DIM}· {}{DIM:#}",
            Escaped(&rule.rule),
            summary(diff, rule)
        );
        for (sign, count, keys) in [("+", rule.new, new), ("-", rule.resolved, resolved)] {
            for key in keys {
                let _ = writeln!(out, "    {sign} {}", Escaped(key));
            }
            let hidden = hidden(count, keys);
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

fn markdown(diff: &Diff, shown: &[[Vec<String>; 2]]) -> String {
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
        "| rule | compared | new | resolved | persisting |\n|---|---|---:|---:|---:|"
    );
    for rule in &diff.rules {
        // Whether the counts compare the same rule in both runs, or why they do not.
        let change = match rule.change {
            RuleChange::Same => "yes",
            RuleChange::Added => "added",
            RuleChange::Removed => "removed",
            RuleChange::Changed => "changed",
            RuleChange::Failed => "failed",
            RuleChange::NotRunBefore => "not run in the first",
            RuleChange::NotRunAfter => "not run in the second",
        };
        let _ = match rule.change {
            RuleChange::Same => writeln!(
                out,
                "| {} | {change} | {} | {} | {} |",
                markdown_cell_code(&rule.rule),
                rule.new,
                rule.resolved,
                rule.persisting
            ),
            // Not compared: say what each run found instead.
            _ => writeln!(
                out,
                "| {} | no: {change} ({} → {}) | – | – | – |",
                markdown_cell_code(&rule.rule),
                rule.before,
                plural(rule.after, "finding")
            ),
        };
    }
    for (rule, [new, resolved]) in diff
        .rules
        .iter()
        .zip(shown)
        .filter(|(r, _)| r.new > 0 || r.resolved > 0)
    {
        let _ = writeln!(out, "\n#### {}\n", markdown_code(&rule.rule));
        for (what, count, keys) in [
            ("new", rule.new, new),
            ("resolved", rule.resolved, resolved),
        ] {
            for key in keys {
                let _ = writeln!(out, "- {what}: {}", markdown_code(key));
            }
            let hidden = hidden(count, keys);
            if hidden > 0 {
                let _ = writeln!(out, "- … and {hidden} more {what}");
            }
        }
    }
    out
}
