//! The report as JUnit XML, the format CI servers show natively: one testsuite for the run,
//! one testcase per rule. A rule with findings at or above `fail-on` (that the baseline does
//! not hold) is a failure, a rule that could not run an error; the others pass. The document
//! follows the Apache Ant schema (tests/junit/JUnit.xsd) that Jenkins, GitLab and GitHub
//! reporters read: `<testsuites>` without attributes, each `<testsuite>` with its `id`,
//! `package`, `hostname`, `properties`, `system-out` and `system-err`. Data is escaped for
//! XML ([`html_text`]), control characters written visibly (XML cannot hold them).

use std::io::{self, Write};

use super::{Report, RuleReport, html_text as x};

pub fn render(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let run = &report.run;
    let name = match run.id {
        Some(id) => format!("trueup run {id}"),
        None => "trueup check".to_owned(),
    };
    let failures = report.rules.iter().filter(|r| r.state() == "fail").count();
    let mut xml = String::new();
    xml.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n");
    xml.push_str(&format!(
        "  <testsuite name=\"{}\" package=\"trueup\" id=\"0\" timestamp=\"{}\" hostname=\"localhost\" \
         tests=\"{}\" failures=\"{failures}\" errors=\"{}\" skipped=\"0\" time=\"{}\">\n",
        x(&name),
        // The schema's timestamps have no zone; the store's are UTC.
        x(run.started_at.trim_end_matches('Z')),
        report.rules.len(),
        report.totals.errors,
        seconds(report.totals.rule_time_ms),
    ));
    xml.push_str("    <properties>\n");
    let mut properties = vec![
        ("trueup.status", super::status_word(run.status).to_owned()),
        ("trueup.fail-on", report.fail_on.as_str().to_owned()),
        ("trueup.version", run.tool_version.clone()),
    ];
    if let Some(id) = run.id {
        properties.insert(0, ("trueup.run", id.to_string()));
    }
    if let Some(previous) = report.compared_with {
        properties.push(("trueup.compared-with", previous.to_string()));
    }
    if let Some(selection) = &run.selection {
        properties.push(("trueup.selection", selection.clone()));
    }
    for (name, value) in properties {
        xml.push_str(&format!(
            "      <property name=\"{name}\" value=\"{}\"/>\n",
            x(&value)
        ));
    }
    xml.push_str("    </properties>\n");
    for rule in &report.rules {
        testcase(report, rule, &mut xml);
    }
    xml.push_str(&format!(
        "    <system-out>{}</system-out>\n    <system-err></system-err>\n",
        x(&super::summary_line(report, |n| n))
    ));
    xml.push_str("  </testsuite>\n</testsuites>\n");
    out.write_all(xml.as_bytes())?;
    out.flush()
}

fn testcase(report: &Report, rule: &RuleReport, xml: &mut String) {
    let open = format!(
        "    <testcase name=\"{}\" classname=\"trueup.{}\" time=\"{}\"",
        x(&rule.id),
        rule.severity.as_str(),
        seconds(rule.duration_ms)
    );
    let (element, kind, message) = match (rule.state(), &rule.error) {
        ("error", Some(error)) => ("error", "error", error.clone()),
        ("fail", _) => {
            let mut message = match rule.findings {
                1 => format!("1 {} finding", rule.severity.as_str()),
                n => format!("{n} {} findings", rule.severity.as_str()),
            };
            if let (Some(c), Some(previous)) = (&rule.compared, report.compared_with)
                && super::not_compared(c.change).is_none()
            {
                message.push_str(&format!(" ({} new since run {previous})", c.new));
            }
            if let Some(title) = &rule.title {
                message.push_str(": ");
                message.push_str(title);
            }
            ("failure", rule.severity.as_str(), message)
        }
        _ => {
            xml.push_str(&open);
            xml.push_str("/>\n");
            return;
        }
    };
    xml.push_str(&open);
    xml.push_str(">\n");
    xml.push_str(&format!(
        "      <{element} message=\"{}\" type=\"{kind}\">{}</{element}>\n",
        x(&message),
        body(rule)
    ));
    xml.push_str("    </testcase>\n");
}

/// What a failure or an error says in full: title, owner and runbook, the error, the first
/// keys; each piece of data escaped, one to a line.
fn body(rule: &RuleReport) -> String {
    let mut lines = Vec::new();
    if let Some(title) = &rule.title {
        lines.push(x(title));
    }
    if let Some(owner) = &rule.owner {
        lines.push(format!("owner: {}", x(owner)));
    }
    if let Some(runbook) = &rule.runbook {
        lines.push(format!("runbook: {}", x(runbook)));
    }
    if let Some(error) = &rule.error {
        lines.push(format!("error: {}", x(error)));
    }
    for sample in &rule.keys {
        lines.push(format!("{}  {}", x(&sample.text), x(&sample.message)));
    }
    let hidden = rule.hidden();
    if hidden > 0 {
        lines.push(format!(
            "… and {hidden} more (`trueup show --format json` lists every finding)"
        ));
    }
    lines.join("\n")
}

/// Milliseconds as the decimal seconds JUnit writes: `0.002`.
fn seconds(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}
