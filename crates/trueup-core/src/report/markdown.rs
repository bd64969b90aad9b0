//! The report as Markdown, for a pull request, an issue or a wiki page: a headline, a
//! table of the rules, the trend as a table, and per rule with findings or an error its
//! owner, runbook and first keys. Every piece of data sits in a code span it cannot leave
//! ([`markdown_code`], [`markdown_cell_code`]).

use std::io::{self, Write};

use super::{Report, RuleReport};
use crate::text::{markdown_cell_code, markdown_code};

pub fn render(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let mut text = String::new();
    headline(report, &mut text);
    rules_table(report, &mut text);
    trend_table(report, &mut text);
    for rule in report
        .rules
        .iter()
        .filter(|r| r.findings > 0 || r.error.is_some())
    {
        details(rule, &mut text);
    }
    out.write_all(text.as_bytes())?;
    out.flush()
}

fn headline(report: &Report, out: &mut String) {
    let run = &report.run;
    let title = match run.id {
        Some(id) => format!("run {id}"),
        None => "a run not recorded".to_owned(),
    };
    out.push_str(&format!("## trueup report: {title}\n\n"));
    let mut about = vec![
        format!("**{}**", super::status_word(run.status)),
        format!("started {}", markdown_code(&run.started_at)),
    ];
    if let Some(finished) = &run.finished_at {
        about.push(format!("finished {}", markdown_code(finished)));
    }
    if let Some(selection) = &run.selection {
        about.push(format!("selected {}", markdown_code(selection)));
    }
    about.push(format!("trueup {}", markdown_code(&run.tool_version)));
    out.push_str(&about.join(" · "));
    out.push_str("\n\n");
    out.push_str(&super::summary_line(report, |n| format!("**{n}**")));
    out.push_str("\n\n");
}

fn rules_table(report: &Report, out: &mut String) {
    out.push_str("| rule | severity | findings | new | resolved | time | result |\n");
    out.push_str("|---|---|---:|---:|---:|---:|---|\n");
    for rule in &report.rules {
        let (new, resolved) = super::compared_cells(rule);
        out.push_str(&format!(
            "| {} | {} | {} | {new} | {resolved} | {} | {} |\n",
            markdown_cell_code(&rule.id),
            rule.severity.as_str(),
            rule.findings,
            super::duration_text(rule.duration_ms),
            super::result_text(rule),
        ));
    }
}

/// Runs as columns, rules as rows: the findings of each rule in each run of the trend.
fn trend_table(report: &Report, out: &mut String) {
    if report.trend.len() < 2 {
        return;
    }
    out.push_str(&format!(
        "\n### Findings in the last {} runs\n\n| rule |",
        report.trend.len()
    ));
    for run in &report.trend {
        out.push_str(&format!(" run {} |", run.id));
    }
    out.push_str("\n|---|");
    out.push_str(&"---:|".repeat(report.trend.len()));
    out.push('\n');
    for rule in &report.rules {
        out.push_str(&format!("| {} |", markdown_cell_code(&rule.id)));
        for count in &rule.history {
            match count {
                Some(n) => out.push_str(&format!(" {n} |")),
                None => out.push_str(" – |"),
            }
        }
        out.push('\n');
    }
    out.push_str("| all rules |");
    for run in &report.trend {
        out.push_str(&format!(" {} |", run.findings));
    }
    out.push('\n');
}

fn details(rule: &RuleReport, out: &mut String) {
    out.push_str(&format!(
        "\n### {} · {} · {}\n\n",
        markdown_code(&rule.id),
        rule.severity.as_str(),
        super::result_text(rule)
    ));
    if let Some(title) = &rule.title {
        out.push_str(&format!("{}\n\n", markdown_code(title)));
    }
    let contacts: Vec<String> = [("owner", &rule.owner), ("runbook", &rule.runbook)]
        .into_iter()
        .filter_map(|(label, value)| {
            value
                .as_ref()
                .map(|v| format!("{label}: {}", markdown_code(v)))
        })
        .collect();
    if !contacts.is_empty() {
        out.push_str(&format!("{}\n\n", contacts.join(" · ")));
    }
    if let Some(error) = &rule.error {
        out.push_str(&format!("error: {}\n\n", markdown_code(error)));
    }
    for sample in &rule.keys {
        out.push_str(&format!(
            "- {} — {}\n",
            markdown_code(&sample.text),
            markdown_code(&sample.message)
        ));
    }
    let hidden = rule.hidden();
    if hidden > 0 {
        out.push_str(&format!(
            "- … and {hidden} more (`trueup show --format json` lists every finding)\n"
        ));
    }
}
