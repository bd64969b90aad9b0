//! The plan file: JSON Lines (a header, per rule a `rule` line, its `target` lines and a
//! `rule_end` line, then an `end` line with the SHA-256 of everything before it), written
//! with its hash and read back line by line, each line bounded, so that an edited, cut or
//! foreign file is an error naming its line.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

use crate::repair::spec::Refusal;
use crate::{Error, Result};

/// The plan file format this trueup writes and reads.
pub const FORMAT: u32 = 1;

/// The first line of a plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Header {
    pub trueup_plan: u32,
    pub tool_version: String,
    pub created_at: String,
    pub selection: Option<String>,
    /// The recorded run whose findings the plan repairs, when it was made from one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_run: Option<i64>,
}

/// A rule's line: what its repair does and to which table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RuleLine {
    pub index: usize,
    pub rule: String,
    pub rule_hash: String,
    pub source: String,
    /// The source's URL without its password: a plan applies to the database it was made on.
    pub database: String,
    pub strategy: String,
    pub table: String,
    pub key: Vec<String>,
    /// The table's columns and types as the plan saw them.
    pub columns: Vec<crate::repair::catalog::Column>,
    /// What each batch runs, keys as bound parameters.
    pub statements: Vec<String>,
    pub max_rows: Option<u64>,
    /// Other rules that read a table this repair changes: `apply` re-runs them in each
    /// batch and refuses a batch that gives them new findings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub may_affect: Vec<String>,
}

/// A target: one row by key and image hash, or a merge's group and its rows (survivor first).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TargetLine {
    pub r: usize,
    pub key: Json,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rows: Vec<(Json, String)>,
    /// A `copy-from` target's change: `insert`, `update` or `delete`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<String>,
    /// A `copy-from` target's values from the authoritative side, by the repaired side's
    /// column names: what `insert` and `update` write, and what `apply` expects to read
    /// there again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Json>,
}

/// How many rows each table loses, gains or changes.
pub type RowCounts = BTreeMap<String, TableCounts>;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct TableCounts {
    #[serde(default)]
    pub delete: u64,
    #[serde(default)]
    pub update: u64,
    #[serde(default)]
    pub insert: u64,
}

impl TableCounts {
    pub fn total(&self) -> u64 {
        self.delete + self.update + self.insert
    }
}

/// A rule's counts, after its targets; `refused` when it will not be applied after all.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RuleEnd {
    pub index: usize,
    pub targets: u64,
    pub rows: RowCounts,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    /// When `refused` is only that the rows exceed the rule's `max-rows`: how many rows, so
    /// that `apply --max-rows N --yes` with a large enough N applies it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub over_max_rows: Option<u64>,
}

impl RuleEnd {
    /// Why the rule will not be applied with `max_rows` (the `--max-rows` given), if not.
    pub fn refusal(&self, max_rows: Option<u64>) -> Option<&str> {
        match (self.over_max_rows, max_rows) {
            (Some(total), Some(max)) if total <= max => None,
            _ => self.refused.as_deref(),
        }
    }
}

/// The last line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct End {
    pub rules: usize,
    pub targets: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(in crate::repair) enum Line {
    Rule(RuleLine),
    Target(TargetLine),
    RuleEnd(RuleEnd),
    Refused(Refusal),
    End(End),
}

/// Writes lines and hashes them.
pub(in crate::repair) struct PlanWriter<'w> {
    pub(in crate::repair) out: &'w mut dyn Write,
    pub(in crate::repair) hash: Sha256,
}

impl PlanWriter<'_> {
    pub(in crate::repair) fn line(&mut self, line: &Line) -> Result<()> {
        let mut text = serde_json::to_string(line).map_err(|e| Error::Other(e.to_string()))?;
        text.push('\n');
        self.hash.update(text.as_bytes());
        self.out.write_all(text.as_bytes())?;
        Ok(())
    }

    /// Appends the lines of another writer's output (a spool), as they were written.
    pub(in crate::repair) fn append(&mut self, lines: impl BufRead) -> Result<()> {
        for line in lines.split(b'\n') {
            let mut line = line?;
            line.push(b'\n');
            self.hash.update(&line);
            self.out.write_all(&line)?;
        }
        Ok(())
    }
}

/// A plan file read back: its header, rules and counts (its targets stay in the file).
#[derive(Debug, Clone)]
pub struct PlanFile {
    pub header: Header,
    pub rules: Vec<RuleLine>,
    pub ends: Vec<RuleEnd>,
    pub refused: Vec<Refusal>,
    pub hash: String,
    pub targets: u64,
}

fn bad_plan(path: &std::path::Path, line: usize, why: impl std::fmt::Display) -> Error {
    Error::Mismatch(format!("{}:{line}: {why}", path.display()))
}

/// Reads a plan file's header, rules and counts, checking its `end` line's hash. A plan
/// edited by hand, cut short or written by another format is an error naming the line.
pub fn read(path: &std::path::Path) -> Result<PlanFile> {
    let mut lines = Lines::open(path)?;
    let header_text = match lines.next() {
        Some(line) => line?.1,
        None => return Err(bad_plan(path, 1, "the file is empty, not a plan")),
    };
    let header: Header = serde_json::from_str(&header_text)
        .map_err(|_| bad_plan(path, 1, "this is not a trueup plan (no plan header)"))?;
    if header.trueup_plan != FORMAT {
        return Err(bad_plan(
            path,
            1,
            format!(
                "plan format {} is not the one this trueup reads ({FORMAT})",
                header.trueup_plan
            ),
        ));
    }
    let mut hash = Sha256::new();
    hash.update(header_text.as_bytes());
    hash.update(b"\n");
    let mut plan = PlanFile {
        header,
        rules: Vec::new(),
        ends: Vec::new(),
        refused: Vec::new(),
        hash: String::new(),
        targets: 0,
    };
    let mut number = 1;
    for line in lines {
        let text;
        (number, text) = line?;
        let line: Line = serde_json::from_str(&text)
            .map_err(|e| bad_plan(path, number, format!("not a plan line: {e}")))?;
        if let Line::End(end) = line {
            let actual = crate::value::hex(&hash.finalize());
            if actual != end.sha256 {
                return Err(bad_plan(
                    path,
                    number,
                    "the plan was changed after trueup wrote it (its SHA-256 does not match): make a new plan",
                ));
            }
            plan.hash = actual;
            return Ok(plan);
        }
        hash.update(text.as_bytes());
        hash.update(b"\n");
        match line {
            Line::Rule(rule) => plan.rules.push(rule),
            Line::RuleEnd(end) => plan.ends.push(end),
            Line::Refused(refusal) => plan.refused.push(refusal),
            Line::Target(_) => plan.targets += 1,
            Line::End(_) => unreachable!("handled above"),
        }
    }
    Err(bad_plan(
        path,
        number,
        "the plan ends before its `end` line: it was cut short",
    ))
}

fn open(path: &std::path::Path) -> Result<std::fs::File> {
    crate::read::open_regular(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })
}

/// The targets of a plan (already checked by [`read`]), in file order, one at a time.
pub fn targets(path: &std::path::Path) -> Result<impl Iterator<Item = Result<TargetLine>>> {
    let path_buf = path.to_owned();
    Ok(Lines::open(path)?.skip(1).filter_map(move |line| {
        let (number, text) = match line {
            Ok(line) => line,
            Err(e) => return Some(Err(e)),
        };
        match serde_json::from_str::<Line>(&text) {
            Ok(Line::Target(target)) => Some(Ok(target)),
            Ok(_) => None,
            Err(e) => Some(Err(bad_plan(&path_buf, number, e))),
        }
    }))
}

/// The longest line a plan file may have (a merge's group lists all its rows on one).
const LINE_LIMIT: u64 = crate::read::TEXT_LIMIT;

/// A plan file's lines with their numbers, each read up to [`LINE_LIMIT`]: a longer line
/// (a file that is no plan, or a hostile one) is an error naming it, never memory spent.
struct Lines {
    reader: std::io::BufReader<std::fs::File>,
    path: std::path::PathBuf,
    number: usize,
    done: bool,
}

impl Lines {
    fn open(path: &std::path::Path) -> Result<Lines> {
        Ok(Lines {
            reader: std::io::BufReader::new(open(path)?),
            path: path.to_owned(),
            number: 0,
            done: false,
        })
    }
}

impl Iterator for Lines {
    type Item = Result<(usize, String)>;

    fn next(&mut self) -> Option<Self::Item> {
        use std::io::Read;
        if self.done {
            return None;
        }
        self.number += 1;
        let mut text = String::new();
        let read = (&mut self.reader).take(LINE_LIMIT + 1).read_line(&mut text);
        let failed = |why: String| Some(Err(bad_plan(&self.path, self.number, why)));
        match read {
            Ok(0) => {
                self.done = true;
                None
            }
            Ok(n) if n as u64 > LINE_LIMIT => {
                self.done = true;
                failed(format!(
                    "the line is longer than {}, the most a plan line may be",
                    crate::size::ByteSize(LINE_LIMIT)
                ))
            }
            Ok(_) => {
                if text.ends_with('\n') {
                    text.pop();
                    if text.ends_with('\r') {
                        text.pop();
                    }
                }
                Some(Ok((self.number, text)))
            }
            Err(e) => {
                self.done = true;
                failed(e.to_string())
            }
        }
    }
}
