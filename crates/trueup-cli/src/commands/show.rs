//! `trueup show RUN`: one recorded run, its rules and their first findings (`--format json`:
//! every finding, streamed from the store).

use std::io::Write;
use std::path::Path;

use futures_util::TryStreamExt;
use serde::Serialize;
use trueup_core::store::{RunId, RunRule, RunStatus, RunSummary, Store, StoredFinding};
use trueup_core::text::Escaped;

use crate::ExitStatus;
use crate::args::{Format, ShowArgs};
use crate::commands::read_store;
use crate::printer::{BOLD, DIM, ERROR};
use crate::render::{contacts, plural};

/// What `--format json` writes: the run, its rules, then every finding.
#[derive(Serialize)]
struct Shown<'a> {
    run: &'a RunSummary,
    rules: &'a [RunRule],
    /// Empty here: the findings are streamed into the document's last array.
    findings: [StoredFinding; 0],
}

pub async fn run(args: &ShowArgs, project: &Path) -> anyhow::Result<ExitStatus> {
    let store = read_store(project).await?;
    let id = store.resolve(&args.run).await?;
    let (run, rules) = (store.run(id).await?, store.run_rules(id).await?);
    let mut out = anstream::stdout().lock();
    if args.format == Format::Json {
        let written = json(&store, id, &run, &rules, &mut out).await;
        store.close().await;
        written?;
        return Ok(ExitStatus::Success);
    }
    // The first keys of each rule in one pass over the stored batches, not numbered by a
    // sort in SQL: the same findings (without their details, which are not shown), in a
    // second at a million findings where the sort took most of a minute.
    let findings = store.first_findings(id, args.show).await?;
    store.close().await;
    human(&run, &rules, &findings, &mut out)?;
    Ok(ExitStatus::Success)
}

/// The JSON document, exactly as if it were serialized whole, written finding by finding
/// as the store hands them over: memory does not grow with the findings.
async fn json(
    store: &Store,
    id: RunId,
    run: &RunSummary,
    rules: &[RunRule],
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
    let head = serde_json::to_string_pretty(&Shown {
        run,
        rules,
        findings: [],
    })?;
    let head = head
        .strip_suffix("[]\n}")
        .expect("the findings are the last member");
    out.write_all(head.as_bytes())?;
    out.write_all(b"[")?;
    let mut findings = std::pin::pin!(store.stream_findings(id, None));
    let (mut written, mut buffer) = (0u64, Vec::new());
    while let Some(finding) = findings.try_next().await? {
        out.write_all(if written == 0 { b"\n" } else { b",\n" })?;
        written += 1;
        buffer.clear();
        serde_json::to_writer_pretty(&mut buffer, &finding)?;
        // An element of the findings array, two levels deep: each of its lines indented
        // by four spaces (a JSON string holds no raw line break).
        for (n, line) in buffer.split(|&b| b == b'\n').enumerate() {
            out.write_all(if n == 0 { b"    " } else { b"\n    " })?;
            out.write_all(line)?;
        }
    }
    out.write_all(if written == 0 {
        b"]\n}\n"
    } else {
        b"\n  ]\n}\n"
    })?;
    out.flush()?;
    Ok(())
}

fn human(
    run: &RunSummary,
    rules: &[RunRule],
    findings: &[StoredFinding],
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let finished = match &run.finished_at {
        Some(at) => format!("finished {at}"),
        None => match run.status {
            RunStatus::Interrupted => format!("{ERROR}incomplete{ERROR:#} (interrupted)"),
            RunStatus::Abandoned => {
                format!("{ERROR}incomplete{ERROR:#} (abandoned: past its deadline)")
            }
            _ => format!("{ERROR}incomplete{ERROR:#} (still running, or killed)"),
        },
    };
    writeln!(
        out,
        "{BOLD}run {}{BOLD:#} · started {} · {finished} · trueup {}",
        run.id, run.started_at, run.tool_version
    )?;
    writeln!(
        out,
        "{} · {} · {} · rule set {}\n",
        plural(run.rules, "rule"),
        plural(run.findings, "finding"),
        plural(run.errors, "error"),
        run.rules_hash
    )?;
    for rule in rules {
        writeln!(
            out,
            "{BOLD}{}{BOLD:#} {DIM}· {} · {} · {} ms{DIM:#}",
            Escaped(&rule.rule),
            rule.severity,
            plural(rule.findings, "finding"),
            rule.duration_ms
        )?;
        if (rule.findings > 0 || rule.error.is_some())
            && let Some(contacts) = contacts(rule.owner.as_deref(), rule.runbook.as_deref())
        {
            writeln!(out, "    {DIM}{contacts}{DIM:#}")?;
        }
        if let Some(error) = &rule.error {
            writeln!(out, "    {ERROR}{}{ERROR:#}", Escaped(error))?;
        }
        for finding in findings.iter().filter(|f| f.rule == rule.rule) {
            writeln!(
                out,
                "    {}  {DIM}{}{DIM:#}",
                Escaped(super::diff::key_text(&finding.key)),
                Escaped(&finding.message)
            )?;
        }
    }
    Ok(())
}
