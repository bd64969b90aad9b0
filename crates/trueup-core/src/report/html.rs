//! The report as one HTML page that needs nothing but itself: styles, SVG charts and the
//! script that sorts its tables are inline, and its Content-Security-Policy lets it load
//! nothing (no fonts, images, styles or scripts from anywhere), so it reads the same
//! offline, mailed as an attachment or printed. Its size does not grow with the findings:
//! per rule it shows the first `show` keys. Data is escaped ([`html_text`]) and never
//! becomes a link, except a runbook that is an `http(s)` URL (a link to click, never loaded).

use std::io::{self, Write};

use super::{Report, RuleReport, html_text as h};
use crate::rule::Severity;
use crate::store::RunId;

/// Styles: readable on screen, and on paper (no buttons, no page break inside a rule).
const STYLE: &str = r#"
:root { --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --bg: #ffffff; --soft: #f6f8fa;
  --critical: #b3261e; --high: #c4470b; --medium: #8a6d00; --low: #1a5fb4; --ok: #1a7f37; --error: #8250df; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 72rem; padding: 1.5rem; color: var(--fg); background: var(--bg);
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
h1 { font-size: 1.6rem; margin: 0 0 .25rem; }
h2 { font-size: 1.2rem; margin: 2rem 0 .75rem; border-bottom: 1px solid var(--line); padding-bottom: .25rem; }
h3 { font-size: 1.05rem; margin: 0 0 .4rem; }
code, .key { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .9em; }
.meta, .muted { color: var(--muted); }
.cards { display: flex; flex-wrap: wrap; gap: .75rem; margin: 1rem 0; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: .6rem 1rem; min-width: 8rem; background: var(--soft); }
.card b { display: block; font-size: 1.5rem; }
.card.bad b { color: var(--critical); }
.card.good b { color: var(--ok); }
table { border-collapse: collapse; width: 100%; margin: .5rem 0; }
th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--soft); white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
th button { all: unset; cursor: pointer; font-weight: 600; }
th button:focus-visible { outline: 2px solid var(--low); }
th[aria-sort="ascending"] button::after { content: " \25B2"; font-size: .7em; }
th[aria-sort="descending"] button::after { content: " \25BC"; font-size: .7em; }
.sev { display: inline-block; padding: 0 .45rem; border-radius: 999px; color: #fff; font-size: .8rem; font-weight: 600; }
.sev.critical { background: var(--critical); } .sev.high { background: var(--high); }
.sev.medium { background: var(--medium); } .sev.low { background: var(--low); }
.state { font-weight: 600; }
.state.fail { color: var(--critical); } .state.error { color: var(--error); }
.state.pass, .state.findings { color: var(--ok); }
tr.fail td:first-child { box-shadow: inset 3px 0 var(--critical); }
tr.error td:first-child { box-shadow: inset 3px 0 var(--error); }
article { border: 1px solid var(--line); border-radius: 8px; padding: 1rem; margin: 1rem 0; break-inside: avoid; }
.error-text { color: var(--error); white-space: pre-wrap; }
svg { display: block; }
svg .axis { stroke: var(--line); stroke-width: 1; }
svg .series { fill: none; stroke: var(--low); stroke-width: 2; }
svg .dot { fill: var(--low); }
svg text { fill: var(--muted); font-size: 11px; font-family: system-ui, sans-serif; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(20rem, 1fr)); gap: 1rem; }
.chart { border: 1px solid var(--line); border-radius: 8px; padding: .5rem .75rem; break-inside: avoid; }
.chart h3 { font-size: .9rem; overflow-wrap: anywhere; }
footer { margin-top: 2rem; color: var(--muted); font-size: .85rem; }
@media print {
  body { max-width: none; padding: 0; font-size: 11pt; }
  th button { cursor: auto; }
  th[aria-sort] button::after { content: ""; }
  a { color: inherit; text-decoration: none; }
}
"#;

/// Sorts a table by the column whose header is clicked (numbers by value, text
/// alphabetically; again: the other way), from each cell's `data-sort` or its text.
const SCRIPT: &str = r#"
(function () {
  "use strict";
  function value(cell, numeric) {
    var text = cell.getAttribute("data-sort");
    if (text === null) { text = cell.textContent; }
    if (!numeric) { return text.toLowerCase(); }
    var number = parseFloat(text);
    return isNaN(number) ? -1 : number;
  }
  function sortable(table) {
    var heads = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads, function (head, column) {
      var button = head.querySelector("button");
      if (!button) { return; }
      button.addEventListener("click", function () {
        var numeric = head.getAttribute("data-type") === "number";
        var ascending = head.getAttribute("aria-sort") !== "ascending";
        Array.prototype.forEach.call(heads, function (other) { other.removeAttribute("aria-sort"); });
        head.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = value(a.cells[column], numeric);
          var y = value(b.cells[column], numeric);
          var order = x < y ? -1 : (x > y ? 1 : 0);
          return ascending ? order : -order;
        });
        rows.forEach(function (row) { body.appendChild(row); });
      });
    });
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), sortable);
  document.documentElement.setAttribute("data-sortable", "ready");
})();
"#;

pub fn render(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let title = match report.run.id {
        Some(id) => format!("trueup report: run {id}"),
        None => "trueup report: a run not recorded".to_owned(),
    };
    let mut page = String::with_capacity(64 * 1024);
    page.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    page.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    // Nothing may be loaded from anywhere: only this page's own styles and script run.
    page.push_str(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'; script-src 'unsafe-inline'\">\n",
    );
    page.push_str(&format!(
        "<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        h(&title)
    ));
    header(report, &title, &mut page);
    page.push_str("<main>\n");
    rules_table(report, &mut page);
    trend(report, &mut page);
    details(report, &mut page);
    page.push_str("</main>\n");
    page.push_str(&format!(
        "<footer>Made by trueup {} · fail-on: {} · the first {} keys of each rule, by fingerprint \
         (<code>trueup show --format json</code> lists every finding).</footer>\n",
        h(env!("CARGO_PKG_VERSION")),
        report.fail_on.as_str(),
        report.show
    ));
    page.push_str(&format!("<script>{SCRIPT}</script>\n</body>\n</html>\n"));
    out.write_all(page.as_bytes())?;
    out.flush()
}

fn header(report: &Report, title: &str, page: &mut String) {
    let run = &report.run;
    page.push_str(&format!(
        "<header>\n<h1>{}</h1>\n<p class=\"meta\">",
        h(title)
    ));
    let mut about = vec![
        format!("<b>{}</b>", super::status_word(run.status)),
        format!("started {}", h(&run.started_at)),
    ];
    if let Some(finished) = &run.finished_at {
        about.push(format!("finished {}", h(finished)));
    }
    if let Some(selection) = &run.selection {
        about.push(format!("selected <code>{}</code>", h(selection)));
    }
    about.push(format!("recorded by trueup {}", h(&run.tool_version)));
    page.push_str(&about.join(" · "));
    page.push_str("</p>\n<div class=\"cards\">\n");
    let totals = &report.totals;
    let tone = |bad: bool| if bad { "bad" } else { "good" };
    let mut cards = vec![
        ("Rules".to_owned(), totals.rules.to_string(), ""),
        ("Findings".to_owned(), totals.findings.to_string(), ""),
    ];
    if let (Some(new), Some(resolved), Some(previous)) =
        (totals.new, totals.resolved, report.compared_with)
    {
        cards.push((
            format!("New since run {previous}"),
            new.to_string(),
            tone(new > 0),
        ));
        cards.push((
            format!("Resolved since run {previous}"),
            resolved.to_string(),
            "",
        ));
    }
    cards.push((
        "Failing rules".to_owned(),
        totals.failing.to_string(),
        tone(totals.failing > 0),
    ));
    cards.push((
        "Could not run".to_owned(),
        totals.errors.to_string(),
        tone(totals.errors > 0),
    ));
    for (label, value, tone) in cards {
        page.push_str(&format!(
            "<div class=\"card {tone}\"><b>{value}</b>{label}</div>\n"
        ));
    }
    page.push_str("</div>\n</header>\n");
}

/// The sortable table of every rule, a sparkline of its trend in each row.
fn rules_table(report: &Report, page: &mut String) {
    page.push_str(
        "<section>\n<h2>Rules</h2>\n<table class=\"sortable\" id=\"rules\">\n<thead><tr>",
    );
    let columns = [
        ("Rule", "text", ""),
        ("Severity", "number", ""),
        ("Findings", "number", "num"),
        ("New", "number", "num"),
        ("Resolved", "number", "num"),
        ("Time", "number", "num"),
        ("Result", "text", ""),
        ("Owner", "text", ""),
    ];
    for (name, kind, class) in columns {
        page.push_str(&format!(
            "<th data-type=\"{kind}\" class=\"{class}\"><button type=\"button\">{name}</button></th>"
        ));
    }
    if report.trend.len() > 1 {
        page.push_str("<th>Trend</th>");
    }
    page.push_str("</tr></thead>\n<tbody>\n");
    let ids = run_ids(report);
    for (at, rule) in report.rules.iter().enumerate() {
        let (new, resolved) = super::compared_cells(rule);
        let state = rule.state();
        let name = if rule.findings > 0 || rule.error.is_some() {
            format!("<a href=\"#rule-{at}\"><code>{}</code></a>", h(&rule.id))
        } else {
            format!("<code>{}</code>", h(&rule.id))
        };
        page.push_str(&format!(
            "<tr class=\"{state}\"><td data-sort=\"{}\">{name}</td>\
             <td data-sort=\"{}\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{new}</td><td class=\"num\">{resolved}</td>\
             <td class=\"num\" data-sort=\"{}\">{}</td>\
             <td data-sort=\"{state}\"><span class=\"state {state}\">{}</span></td><td>{}</td>",
            h(&rule.id),
            rank(rule.severity),
            severity_badge(rule.severity),
            rule.findings,
            rule.duration_ms,
            super::duration_text(rule.duration_ms),
            h(&super::result_text(rule)),
            rule.owner.as_deref().map(h).unwrap_or_default(),
        ));
        if report.trend.len() > 1 {
            page.push_str("<td>");
            page.push_str(&chart(&rule.history, &ids, Size::SPARK, &rule.id));
            page.push_str("</td>");
        }
        page.push_str("</tr>\n");
    }
    page.push_str("</tbody>\n</table>\n</section>\n");
}

/// Findings per run, of every rule together and of each rule that had any.
fn trend(report: &Report, page: &mut String) {
    if report.trend.len() < 2 {
        return;
    }
    let ids = run_ids(report);
    page.push_str(&format!(
        "<section>\n<h2>Findings over the last {} runs</h2>\n<div class=\"charts\">\n",
        report.trend.len()
    ));
    let all: Vec<Option<u64>> = report.trend.iter().map(|r| Some(r.findings)).collect();
    page.push_str("<div class=\"chart\"><h3>All rules</h3>");
    page.push_str(&chart(&all, &ids, Size::CHART, "all rules"));
    page.push_str("</div>\n");
    for rule in report
        .rules
        .iter()
        .filter(|r| r.history.iter().any(|n| n.unwrap_or(0) > 0))
    {
        page.push_str(&format!(
            "<div class=\"chart\"><h3><code>{}</code></h3>",
            h(&rule.id)
        ));
        page.push_str(&chart(&rule.history, &ids, Size::CHART, &rule.id));
        page.push_str("</div>\n");
    }
    page.push_str("</div>\n</section>\n");
}

/// Per rule with findings or an error: what it checks, whom to ask, its first keys.
fn details(report: &Report, page: &mut String) {
    let shown: Vec<(usize, &RuleReport)> = report
        .rules
        .iter()
        .enumerate()
        .filter(|(_, r)| r.findings > 0 || r.error.is_some())
        .collect();
    if shown.is_empty() {
        return;
    }
    page.push_str("<section>\n<h2>Findings</h2>\n");
    for (at, rule) in shown {
        page.push_str(&format!(
            "<article id=\"rule-{at}\">\n<h3><code>{}</code> {} <span class=\"state {}\">{}</span></h3>\n",
            h(&rule.id),
            severity_badge(rule.severity),
            rule.state(),
            h(&super::result_text(rule))
        ));
        if let Some(title) = &rule.title {
            page.push_str(&format!("<p>{}</p>\n", h(title)));
        }
        let mut contacts = Vec::new();
        if let Some(owner) = &rule.owner {
            contacts.push(format!("owner: <b>{}</b>", h(owner)));
        }
        if let Some(runbook) = &rule.runbook {
            contacts.push(format!("runbook: {}", runbook_link(runbook)));
        }
        if !contacts.is_empty() {
            page.push_str(&format!(
                "<p class=\"muted\">{}</p>\n",
                contacts.join(" · ")
            ));
        }
        if let Some(error) = &rule.error {
            page.push_str(&format!("<p class=\"error-text\">{}</p>\n", h(error)));
        }
        if !rule.keys.is_empty() {
            page.push_str(
                "<table class=\"sortable keys\">\n<thead><tr><th data-type=\"text\"><button type=\"button\">Key</button></th>\
                 <th data-type=\"text\"><button type=\"button\">Message</button></th></tr></thead>\n<tbody>\n",
            );
            for sample in &rule.keys {
                page.push_str(&format!(
                    "<tr><td class=\"key\">{}</td><td>{}</td></tr>\n",
                    h(&sample.text),
                    h(&sample.message)
                ));
            }
            page.push_str("</tbody>\n</table>\n");
        }
        let hidden = rule.hidden();
        if hidden > 0 {
            page.push_str(&format!("<p class=\"muted\">… and {hidden} more.</p>\n"));
        }
        page.push_str("</article>\n");
    }
    page.push_str("</section>\n");
}

/// A runbook as a link when it is a web address, else as text: a path in a rule file is
/// relative to the project, not to wherever this page is read.
fn runbook_link(runbook: &str) -> String {
    let web = ["https://", "http://"].iter().any(|scheme| {
        runbook.len() > scheme.len()
            && runbook
                .get(..scheme.len())
                .is_some_and(|start| start.eq_ignore_ascii_case(scheme))
    });
    if web
        && !runbook
            .chars()
            .any(|c| c.is_whitespace() || crate::text::is_unsafe(c))
    {
        format!(
            "<a href=\"{0}\" rel=\"noreferrer noopener\">{0}</a>",
            h(runbook)
        )
    } else {
        format!("<code>{}</code>", h(runbook))
    }
}

fn severity_badge(severity: Severity) -> String {
    format!("<span class=\"sev {0}\">{0}</span>", severity.as_str())
}

/// Critical first when sorted by severity.
fn rank(severity: Severity) -> usize {
    Severity::ALL
        .iter()
        .position(|&s| s == severity)
        .unwrap_or(0)
}

fn run_ids(report: &Report) -> Vec<RunId> {
    report.trend.iter().map(|r| r.id).collect()
}

/// A chart's size in pixels and whether it has axes and labels.
#[derive(Clone, Copy)]
struct Size {
    width: u32,
    height: u32,
    labels: bool,
}

impl Size {
    const SPARK: Size = Size {
        width: 96,
        height: 24,
        labels: false,
    };
    const CHART: Size = Size {
        width: 320,
        height: 120,
        labels: true,
    };
}

/// A line chart of `series` (one value per run of `runs`, `None` a gap) as inline SVG; each
/// point says its run and count when pointed at.
fn chart(series: &[Option<u64>], runs: &[RunId], size: Size, what: &str) -> String {
    let (left, right, top, bottom) = match size.labels {
        true => (36.0, 8.0, 8.0, 20.0),
        false => (2.0, 2.0, 2.0, 2.0),
    };
    let (width, height) = (f64::from(size.width), f64::from(size.height));
    let max = series.iter().flatten().copied().max().unwrap_or(0).max(1);
    let steps = series.len().saturating_sub(1).max(1);
    // Counts and positions are small: as floats they are exact enough to draw.
    #[allow(clippy::cast_precision_loss)]
    let point = |at: usize, value: u64| {
        let x = left + (width - left - right) * at as f64 / steps as f64;
        let y = top + (height - top - bottom) * (1.0 - value as f64 / max as f64);
        (x, y)
    };
    let mut svg = format!(
        "<svg viewBox=\"0 0 {0} {1}\" width=\"{0}\" height=\"{1}\" role=\"img\" aria-label=\"findings of {2} per run\">",
        size.width,
        size.height,
        h(what)
    );
    if size.labels {
        let (x0, y0) = (left, height - bottom);
        svg.push_str(&format!(
            "<line class=\"axis\" x1=\"{x0}\" y1=\"{top}\" x2=\"{x0}\" y2=\"{y0}\"/>\
             <line class=\"axis\" x1=\"{x0}\" y1=\"{y0}\" x2=\"{}\" y2=\"{y0}\"/>\
             <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{max}</text>\
             <text x=\"{}\" y=\"{y0}\" text-anchor=\"end\">0</text>",
            width - right,
            left - 4.0,
            top + 8.0,
            left - 4.0,
        ));
        if let (Some(first), Some(last)) = (runs.first(), runs.last()) {
            svg.push_str(&format!(
                "<text x=\"{left}\" y=\"{}\">run {first}</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">run {last}</text>",
                height - 4.0,
                width - right,
                height - 4.0
            ));
        }
    }
    // One polyline per stretch of runs without a gap.
    let mut stretch: Vec<String> = Vec::new();
    let mut lines = String::new();
    let mut dots = String::new();
    for (at, value) in series.iter().enumerate() {
        match value {
            Some(value) => {
                let (x, y) = point(at, *value);
                stretch.push(format!("{x:.1},{y:.1}"));
                let run = runs.get(at).copied().unwrap_or_default();
                let radius = if size.labels { 3 } else { 1 };
                dots.push_str(&format!(
                    "<circle class=\"dot\" cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"{radius}\"><title>run {run}: {value}</title></circle>"
                ));
            }
            None => polyline(&mut stretch, &mut lines),
        }
    }
    polyline(&mut stretch, &mut lines);
    svg.push_str(&lines);
    svg.push_str(&dots);
    svg.push_str("</svg>");
    svg
}

/// Ends a stretch of points as a polyline.
fn polyline(stretch: &mut Vec<String>, lines: &mut String) {
    if stretch.len() > 1 {
        lines.push_str(&format!(
            "<polyline class=\"series\" points=\"{}\"/>",
            stretch.join(" ")
        ));
    }
    stretch.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_web_runbooks_become_links() {
        assert_eq!(
            runbook_link("https://wiki.example/runbook#orders"),
            "<a href=\"https://wiki.example/runbook#orders\" rel=\"noreferrer noopener\">https://wiki.example/runbook#orders</a>"
        );
        for text in [
            "javascript:alert(1)",
            "runbooks/data.md#step-2",
            "https://x y",
            "HTTPS:",
            // A character of several bytes across the scheme's length: text, not a panic.
            "Seite für Bestellungen",
            "runbooké",
        ] {
            assert!(runbook_link(text).starts_with("<code>"), "{text}");
        }
        assert!(runbook_link("https://a.example/\"><script>").contains("&quot;&gt;&lt;script&gt;"));
    }

    #[test]
    fn a_chart_breaks_its_line_where_a_rule_did_not_run() {
        let svg = chart(
            &[Some(1), Some(3), None, Some(2), Some(0)],
            &[1, 2, 3, 4, 5],
            Size::CHART,
            "r",
        );
        assert_eq!(svg.matches("<polyline").count(), 2, "{svg}");
        assert_eq!(svg.matches("<circle").count(), 4, "{svg}");
        assert!(svg.contains("<title>run 2: 3</title>"), "{svg}");
        // One run: a point, no line; no run: an empty chart.
        assert_eq!(
            chart(&[Some(5)], &[7], Size::SPARK, "r")
                .matches("<polyline")
                .count(),
            0
        );
        assert!(chart(&[], &[], Size::CHART, "r").ends_with("</svg>"));
    }
}
