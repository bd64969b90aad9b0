//! `trueup rules`: the project's rules, one a line (id, severity, kind, source, tags, owner),
//! selected by `--rule`, `--tag` and `--source` as `check` selects them. Nothing connects.

use std::io::Write;
use std::path::Path;

use serde::Serialize;
use trueup_core::load::Project;
use trueup_core::text::escape;

use crate::ExitStatus;
use crate::args::{Format, RulesArgs};
use crate::printer::DIM;

#[derive(Serialize)]
struct Listed<'a> {
    id: &'a str,
    title: &'a str,
    severity: &'a str,
    kind: &'a str,
    source: &'a str,
    tags: &'a [String],
    owner: Option<&'a str>,
}

pub fn run(args: &RulesArgs, project_path: &Path) -> anyhow::Result<ExitStatus> {
    let project = Project::load(project_path)?;
    let listed: Vec<Listed<'_>> = args
        .select
        .selection()
        .select(&project)?
        .into_iter()
        .map(|loaded| {
            let rule = &loaded.rule;
            Listed {
                id: &rule.id,
                title: &rule.title,
                severity: rule.severity.as_str(),
                kind: rule.detector.kind(),
                source: &loaded.source,
                tags: &rule.tags,
                owner: rule.owner.as_deref(),
            }
        })
        .collect();
    let mut out = anstream::stdout().lock();
    match args.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &listed)?;
            writeln!(out)?;
        }
        Format::Human => write_table(&mut out, &listed)?,
    }
    Ok(ExitStatus::Success)
}

/// One line a rule, in columns as wide as their widest cell; text from rule files escaped.
fn write_table(out: &mut impl Write, listed: &[Listed<'_>]) -> std::io::Result<()> {
    let header = ["id", "severity", "kind", "source", "tags", "owner"];
    let rows: Vec<[String; 6]> = listed
        .iter()
        .map(|rule| {
            [
                escape(rule.id).into_owned(),
                rule.severity.to_owned(),
                rule.kind.to_owned(),
                escape(rule.source).into_owned(),
                escape(&rule.tags.join(", ")).into_owned(),
                escape(rule.owner.unwrap_or("-")).into_owned(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &[&str]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell}{}", " ".repeat(width - cell.chars().count())))
            .collect();
        padded.join("  ").trim_end().to_owned()
    };
    writeln!(out, "{DIM}{}{DIM:#}", line(&header))?;
    for row in &rows {
        writeln!(out, "{}", line(&row.each_ref().map(String::as_str)))?;
    }
    Ok(())
}
