//! `trueup validate`: every check on the project short of running a detector. Stages: parse
//! and structure (always), then, unless `--offline`, the sources: can they be opened, do
//! the tables and columns exist, do the queries prepare and return their keys, and can the
//! sources do more than read (a warning, not a problem).

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

use anstream::println;
use serde::Serialize;
use trueup_core::Error;
use trueup_core::diagnostic::Diagnostic;
use trueup_core::load::Project;
use trueup_core::text::Escaped;

use crate::ExitStatus;
use crate::args::{Format, ValidateArgs};
use crate::printer::{OK, Printer};
use crate::render::plural;

#[derive(Serialize)]
struct Report {
    valid: bool,
    rules: usize,
    files: usize,
    /// Sources that were opened to check tables, columns and queries.
    sources_checked: Vec<String>,
    problems: Vec<Diagnostic>,
    /// What does not make the project invalid: a source that can do more than read.
    warnings: Vec<Diagnostic>,
}

pub async fn run(
    args: &ValidateArgs,
    project_path: &Path,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let report = match Project::load(project_path) {
        Ok(project) => check_project(&project, args.offline, printer).await,
        Err(Error::Invalid(problems)) => Report {
            valid: false,
            rules: 0,
            files: 0,
            sources_checked: Vec::new(),
            problems,
            warnings: Vec::new(),
        },
        Err(err) => return Err(err.into()),
    };
    if args.format == Format::Human {
        printer.warnings(&report.warnings);
    }
    match args.format {
        Format::Json => {
            let mut out = std::io::stdout().lock();
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        }
        Format::Human if report.valid => {
            let checked = match report.sources_checked.as_slice() {
                [] => " (offline: tables and queries not checked)".to_owned(),
                names => format!(
                    " against source {}",
                    names
                        .iter()
                        .map(|n| format!("`{}`", Escaped(n)))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            let (rules, files) = (plural(report.rules, "rule"), plural(report.files, "file"));
            let verb = if report.rules == 1 { "is" } else { "are" };
            println!("{OK}✓{OK:#} {rules} in {files} {verb} valid{checked}");
        }
        Format::Human => {
            printer.diagnostics(&report.problems);
            anyhow::bail!(
                "{} problem(s) found; nothing was run",
                report.problems.len()
            );
        }
    }
    Ok(if report.valid {
        ExitStatus::Success
    } else {
        ExitStatus::Error
    })
}

async fn check_project(project: &Project, offline: bool, printer: &Printer) -> Report {
    let rules: Vec<_> = project.rules.iter().collect();
    let files = rules
        .iter()
        .map(|r| &r.file.path)
        .collect::<BTreeSet<_>>()
        .len();
    // SQL trueup refuses to run fails only its rule in `check`, but is an error here.
    let mut problems: Vec<Diagnostic> = rules.iter().flat_map(|r| r.refused.clone()).collect();
    let mut warnings = trueup_core::validate::literal_passwords(project);
    let mut sources_checked = Vec::new();
    if offline {
        // Plugins need no database: each loads, and speaks this trueup's interface.
        let checks = rules
            .iter()
            .map(|rule| trueup_core::validate::plugin(rule, None));
        problems.extend(
            futures_util::future::join_all(checks)
                .await
                .into_iter()
                .flatten(),
        );
    } else if let Err(Error::Invalid(unset)) = project.resolve_sources(&rules) {
        // An unset variable is the user's to fix before anything connects.
        problems.extend(unset);
    } else {
        printer
            .status("opening sources to check tables, columns and queries (--offline skips this)");
        let sources = trueup_core::source::open_all(project, &rules, 2).await;
        for (name, source) in &sources {
            match source {
                Ok(_) => sources_checked.push(name.clone()),
                Err(err) => {
                    let spec = &project.sources[name];
                    problems.push(
                        project
                            .file
                            .at_path(
                                &spec.path,
                                format!("source `{name}` cannot be opened: {err}"),
                            )
                            .with_hint("use --offline to validate the files alone"),
                    );
                }
            }
        }
        let checks = rules
            .iter()
            .map(|rule| trueup_core::validate::online(rule, &sources));
        problems.extend(
            futures_util::future::join_all(checks)
                .await
                .into_iter()
                .flatten(),
        );
        warnings.extend(trueup_core::validate::privileges(project, &rules, &sources).await);
        for source in sources.values().flatten() {
            source.close().await;
        }
    }
    Report {
        valid: problems.is_empty(),
        rules: rules.len(),
        files,
        sources_checked,
        problems,
        warnings,
    }
}
