//! `trueup plugin test`: builds the plugin (unless told not to), then runs each case of its
//! `fixtures.toml` through the host `check` uses: a fresh instance, start with the case's
//! config and columns, the rows in batches, finish. What it reports is compared with what
//! the case expects, as a set.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use trueup_core::plugin::{BATCH_ROWS, DEFAULT_MEMORY, DEFAULT_OUTPUT, Limits, Plugin};
use trueup_plugin_sdk::wire::{self, FindingAt, Start, WireFinding};

use super::build::{self, Artifact};
use super::fixtures::{self, Case, Expect, Expected};
use super::report;
use crate::ExitStatus;
use crate::args::{GlobalArgs, PluginTestArgs};
use crate::printer::Printer;
use trueup_core::value::Value;

/// What a case's instance may use: `check`'s defaults, and time enough for a slow machine.
const LIMITS: Limits = Limits {
    time: Duration::from_secs(30),
    memory: DEFAULT_MEMORY,
    output: DEFAULT_OUTPUT,
    from_rule: false,
};

pub fn run(
    args: &PluginTestArgs,
    global: &GlobalArgs,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let path = args
        .fixtures
        .clone()
        .unwrap_or_else(|| args.dir.join("fixtures.toml"));
    let fixtures = match fixtures::read(&path)? {
        Ok(fixtures) => fixtures,
        Err(problems) => {
            printer.diagnostics(&problems);
            bail!(
                "{} has {} problem(s); no case was run",
                path.display(),
                problems.len()
            );
        }
    };
    let wasm = match &args.wasm {
        Some(wasm) => wasm.clone(),
        None if args.no_build => one_plugin(build::artifacts(&args.dir)?, &args.dir)?,
        None => one_plugin(build::build(&args.dir, global, printer)?, &args.dir)?,
    };
    let plugin = Plugin::load(&wasm)?;
    printer.status(format!(
        "testing {} {} ({}) on {}",
        plugin.description.name,
        plugin.description.version,
        super::shown_path(&wasm).display(),
        path.display()
    ));
    let results: Vec<CaseResult> = fixtures
        .cases
        .iter()
        .map(|case| CaseResult::of(case, run_case(&plugin, case)))
        .collect();
    report::print(args.format, &plugin, &path, &results)?;
    Ok(if results.iter().all(CaseResult::passed) {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}

/// The `.wasm` of the plugin in `dir`, of those built there.
pub(super) fn one_plugin(artifacts: Vec<Artifact>, dir: &Path) -> anyhow::Result<PathBuf> {
    let dir = dir
        .canonicalize()
        .with_context(|| format!("cannot find {}", dir.display()))?;
    let names: Vec<&str> = artifacts.iter().map(|a| a.package.as_str()).collect();
    let position = match artifacts.len() {
        1 => Some(0),
        _ => artifacts.iter().position(|a| a.dir == dir),
    };
    match position {
        Some(i) => Ok(artifacts[i].wasm.clone()),
        None => bail!(
            "{} builds {} plugins ({}): test one at a time, from its own folder",
            dir.display(),
            names.len(),
            names.join(", ")
        ),
    }
}

/// A finding the plugin reported, with its row's key.
#[derive(Debug, Clone)]
pub struct Found {
    pub key: Vec<Value>,
    pub message: String,
    pub detail: Vec<(String, Value)>,
}

/// Runs one case: its findings, or the error that stopped it.
fn run_case(plugin: &Plugin, case: &Case) -> Result<Vec<Found>, String> {
    let mut instance = plugin.instantiate(LIMITS).map_err(|e| e.to_string())?;
    instance
        .start(&Start {
            config: serde_json::Value::Object(case.config.clone()),
            columns: case.columns.clone(),
            key: case.key.clone(),
        })
        .map_err(|e| e.to_string())?;
    let key: Vec<usize> = case
        .key
        .iter()
        .filter_map(|k| case.columns.iter().position(|c| c == k))
        .collect();
    let mut found = Vec::new();
    for rows in case.rows.chunks(BATCH_ROWS) {
        let mut batch = wire::Writer::new();
        wire::batch_header(&mut batch, rows.len(), case.columns.len());
        for cell in rows.iter().flatten() {
            batch.value(cell.to_wire());
        }
        let read = |findings: Vec<WireFinding<'_>>| owned(&findings, rows, &key, &case.key);
        found.extend(
            instance
                .check(&batch.buf, read)
                .map_err(|e| e.to_string())??,
        );
    }
    let read = |findings: Vec<WireFinding<'_>>| owned(&findings, &[], &key, &case.key);
    found.extend(instance.finish(read).map_err(|e| e.to_string())??);
    Ok(found)
}

/// The findings of a call, keyed: a finding about row `n` of the batch `rows` gets that
/// row's key. Details named like a key column or an earlier detail are left out, as `check`
/// leaves them out.
fn owned(
    findings: &[WireFinding<'_>],
    rows: &[Vec<Value>],
    key: &[usize],
    key_names: &[String],
) -> Result<Vec<Found>, String> {
    findings
        .iter()
        .map(|finding| {
            let key = match &finding.at {
                FindingAt::Row(n) => {
                    let row = rows.get(*n).ok_or_else(|| {
                        format!(
                            "the plugin returned a finding about row {n} of a batch of {}",
                            rows.len()
                        )
                    })?;
                    key.iter().map(|&i| row[i].clone()).collect()
                }
                FindingAt::Key(values) if values.len() == key.len() => {
                    values.iter().map(|v| Value::from_wire(*v)).collect()
                }
                FindingAt::Key(values) => {
                    return Err(format!(
                        "the plugin returned a finding with {} key value(s); the key has {} column(s)",
                        values.len(),
                        key.len()
                    ));
                }
            };
            let mut detail: Vec<(String, Value)> = Vec::new();
            for (name, value) in &finding.detail {
                if !key_names.iter().any(|k| k == name) && !detail.iter().any(|(n, _)| n == name)
                {
                    detail.push(((*name).to_owned(), Value::from_wire(*value)));
                }
            }
            Ok(Found {
                key,
                message: finding.message.to_owned(),
                detail,
            })
        })
        .collect()
}

/// How a case went.
#[derive(Debug)]
pub struct CaseResult<'a> {
    pub case: &'a Case,
    /// The findings, or the error that stopped the plugin.
    pub outcome: Result<Vec<Found>, String>,
    /// Expected findings nothing matched.
    pub missing: Vec<&'a Expected>,
    /// Findings no expectation matched.
    pub unexpected: Vec<Found>,
}

impl<'a> CaseResult<'a> {
    fn of(case: &'a Case, outcome: Result<Vec<Found>, String>) -> CaseResult<'a> {
        let (missing, unexpected) = match (&case.expect, &outcome) {
            (Expect::Findings(expected), Ok(found)) => compare(expected, found),
            _ => (Vec::new(), Vec::new()),
        };
        CaseResult {
            case,
            outcome,
            missing,
            unexpected,
        }
    }

    pub fn passed(&self) -> bool {
        match (&self.case.expect, &self.outcome) {
            (Expect::Findings(_), Ok(_)) => self.missing.is_empty() && self.unexpected.is_empty(),
            (Expect::Error(wanted), Err(error)) => error.contains(wanted.as_str()),
            _ => false,
        }
    }
}

fn matches(expected: &Expected, found: &Found) -> bool {
    expected.key == found.key
        && expected
            .message
            .as_ref()
            .is_none_or(|message| *message == found.message)
        && expected
            .detail
            .iter()
            .all(|wanted| found.detail.contains(wanted))
}

/// Pairs expectations with findings, as many as can be (a maximum bipartite matching, so
/// that a loose expectation never takes the only finding a precise one matches); returns
/// the expectations and findings left over.
fn compare<'a>(expected: &'a [Expected], found: &[Found]) -> (Vec<&'a Expected>, Vec<Found>) {
    /// Tries to give expectation `e` a finding, moving earlier pairs along if needed.
    fn pair(e: usize, fits: &[Vec<usize>], seen: &mut [bool], owner: &mut [Option<usize>]) -> bool {
        for &f in &fits[e] {
            if !seen[f] {
                seen[f] = true;
                if owner[f].is_none_or(|other| pair(other, fits, seen, owner)) {
                    owner[f] = Some(e);
                    return true;
                }
            }
        }
        false
    }
    let fits: Vec<Vec<usize>> = expected
        .iter()
        .map(|e| {
            (0..found.len())
                .filter(|&f| matches(e, &found[f]))
                .collect()
        })
        .collect();
    let mut owner = vec![None; found.len()];
    let mut missing = Vec::new();
    for (e, expectation) in expected.iter().enumerate() {
        let mut seen = vec![false; found.len()];
        if !pair(e, &fits, &mut seen, &mut owner) {
            missing.push(expectation);
        }
    }
    let unexpected = found
        .iter()
        .zip(&owner)
        .filter(|(_, owner)| owner.is_none())
        .map(|(f, _)| f.clone())
        .collect();
    (missing, unexpected)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(key: i64, message: &str) -> Found {
        Found {
            key: vec![Value::Int(key)],
            message: message.to_owned(),
            detail: Vec::new(),
        }
    }

    fn expected(key: i64, message: Option<&str>) -> Expected {
        Expected {
            key: vec![Value::Int(key)],
            message: message.map(str::to_owned),
            detail: Vec::new(),
        }
    }

    #[test]
    fn a_loose_expectation_does_not_take_the_finding_a_precise_one_needs() {
        let expected = [expected(2, None), expected(2, Some("a"))];
        let found = [found(2, "a"), found(2, "b")];
        let (missing, unexpected) = compare(&expected, &found);
        assert!(missing.is_empty() && unexpected.is_empty());
    }

    #[test]
    fn leftovers_on_both_sides_are_reported() {
        let expected = [expected(1, None), expected(2, Some("a"))];
        let found = [found(2, "b"), found(3, "c")];
        let (missing, unexpected) = compare(&expected, &found);
        assert_eq!(missing.len(), 2);
        assert_eq!(unexpected.len(), 2);
    }
}
