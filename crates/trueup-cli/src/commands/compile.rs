//! `trueup compile`: the SQL each rule runs, compiled for its source's dialect, like
//! `dbt compile`. Nothing connects to a source. What comes from rule files is written with
//! its control characters escaped; the SQL keeps its own lines.

use std::io::Write;
use std::path::Path;

use serde::Serialize;
use trueup_core::engine;
use trueup_core::load::Project;
use trueup_core::text::{Escaped, escape_keeping_lines};
use trueup_core::value::Value;

use crate::ExitStatus;
use crate::args::{CompileArgs, Format};
use crate::printer::{BOLD, DIM};
use trueup_core::check::{check_rule_patterns, rule_selected};

#[derive(Serialize)]
struct Compiled<'a> {
    id: &'a str,
    source: &'a str,
    sql: &'a str,
    binds: &'a [Value],
    key: &'a [String],
    /// PostgreSQL settings of the rule's transaction.
    settings: &'a [(String, String)],
    /// The query one key range runs, when the rule is split (`defaults.split` > 1).
    range_sql: Option<&'a str>,
    /// Why trueup refuses to run the rule's SQL, when it does (`sql` is then not run).
    #[serde(skip_serializing_if = "Option::is_none")]
    refused: Option<&'a str>,
}

pub fn run(args: &CompileArgs, project_path: &Path) -> anyhow::Result<ExitStatus> {
    let project = Project::load(project_path)?;
    check_rule_patterns(&project, &args.rules)?;
    let selected: Vec<_> = project
        .rules
        .iter()
        .filter(|r| rule_selected(&args.rules, &r.rule.id))
        .collect();
    let rules = engine::prepare(&project, &selected)?.rules;
    let compiled: Vec<Compiled<'_>> = rules
        .iter()
        .map(|r| Compiled {
            id: &r.id,
            source: &r.source,
            sql: &r.query.sql,
            binds: &r.query.binds,
            key: &r.query.key,
            settings: &r.query.settings,
            range_sql: r.query.split.as_ref().map(|split| split.range_sql.as_str()),
            refused: r.refused.as_deref(),
        })
        .collect();
    let mut out = anstream::stdout().lock();
    match args.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &compiled)?;
            writeln!(out)?;
        }
        Format::Human => {
            for rule in &compiled {
                writeln!(
                    out,
                    "{DIM}-- {BOLD}{}{BOLD:#}{DIM} (source `{}`, key: {}){DIM:#}",
                    Escaped(rule.id),
                    Escaped(rule.source),
                    Escaped(rule.key.join(", "))
                )?;
                if let Some(refused) = rule.refused {
                    writeln!(out, "-- {}\n", trueup_core::text::escape(refused))?;
                    continue;
                }
                for (i, value) in rule.binds.iter().enumerate() {
                    writeln!(
                        out,
                        "{DIM}-- parameter {}: {}{DIM:#}",
                        i + 1,
                        Escaped(value)
                    )?;
                }
                for (name, value) in rule.settings {
                    let (name, value) = (Escaped(name), Escaped(value));
                    writeln!(out, "{DIM}-- SET LOCAL {name} = '{value}'{DIM:#}")?;
                }
                writeln!(out, "{};", escape_keeping_lines(rule.sql.trim_end()))?;
                if let Some(range_sql) = rule.range_sql {
                    writeln!(
                        out,
                        "{DIM}-- with `split` > 1 it runs as key ranges, the last two parameters bounding each:{DIM:#}"
                    )?;
                    writeln!(out, "{};", escape_keeping_lines(range_sql))?;
                }
                writeln!(out)?;
            }
        }
    }
    Ok(match compiled.iter().any(|rule| rule.refused.is_some()) {
        true => ExitStatus::Error,
        false => ExitStatus::Success,
    })
}
