//! `fixtures.toml`: named cases, each a config, a query's columns and rows, and what the
//! plugin must report on them (or the error it must refuse the config with). Every problem
//! in the file is reported at once, at its line and column.

use std::path::Path;

use anyhow::Context;
use serde::Deserialize;
use toml::Spanned;
use trueup_core::diagnostic::{Diagnostic, SourceFile};
use trueup_core::load::parse_diagnostic;

use trueup_core::value::Value;

/// The cases of a fixture file.
#[derive(Debug)]
pub struct Fixtures {
    pub cases: Vec<Case>,
}

#[derive(Debug)]
pub struct Case {
    pub name: String,
    pub config: serde_json::Map<String, serde_json::Value>,
    pub key: Vec<String>,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
    pub expect: Expect,
}

/// What a case must end with.
#[derive(Debug)]
pub enum Expect {
    /// Exactly these findings, in any order.
    Findings(Vec<Expected>),
    /// An error (from start, a batch or finish) containing this text.
    Error(String),
}

/// A finding a case expects: its key, and its message and details when given.
#[derive(Debug)]
pub struct Expected {
    pub key: Vec<Value>,
    pub message: Option<String>,
    /// Details the finding must have (it may have more).
    pub detail: Vec<(String, Value)>,
}

/// The file as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSpec {
    #[serde(default)]
    case: Vec<Spanned<CaseSpec>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct CaseSpec {
    name: Spanned<String>,
    #[serde(default)]
    config: serde_json::Map<String, serde_json::Value>,
    key: Spanned<Vec<Spanned<String>>>,
    columns: Spanned<Vec<String>>,
    #[serde(default)]
    rows: Vec<Spanned<Vec<Spanned<toml::Value>>>>,
    expect: Option<Vec<ExpectedSpec>>,
    expect_error: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectedSpec {
    key: Spanned<Vec<Spanned<toml::Value>>>,
    message: Option<String>,
    detail: Option<Spanned<toml::Table>>,
}

/// Reads the fixture file at `path`: `Err` only when it cannot be read; `Ok(Err(_))` holds
/// every problem in it.
pub fn read(path: &Path) -> anyhow::Result<Result<Fixtures, Vec<Diagnostic>>> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read {}: a plugin's cases live there (`trueup plugin new` writes an example)",
            path.display()
        )
    })?;
    Ok(parse(&SourceFile {
        path: path.to_owned(),
        text,
    }))
}

fn parse(file: &SourceFile) -> Result<Fixtures, Vec<Diagnostic>> {
    let spec: FileSpec =
        toml::from_str(&file.text).map_err(|err| vec![parse_diagnostic(file, &err)])?;
    if spec.case.is_empty() {
        return Err(vec![Diagnostic::in_file(
            &file.path,
            "no cases: write at least one `[[case]]` with its config, columns, rows and expect",
        )]);
    }
    let mut problems = Vec::new();
    let mut cases: Vec<Case> = Vec::new();
    for case in spec.case {
        let span = case.span();
        let case = case.into_inner();
        let mut problem = |span: std::ops::Range<usize>, message: String| {
            problems.push(file.at_span(span, message));
        };
        if cases.iter().any(|c| c.name == *case.name.get_ref()) {
            problem(
                case.name.span(),
                format!("a second case named `{}`", case.name.get_ref()),
            );
        }
        if case.columns.get_ref().is_empty() {
            problem(case.columns.span(), "`columns` is empty".to_owned());
        }
        if case.key.get_ref().is_empty() {
            problem(
                case.key.span(),
                "`key` is empty: name the columns that identify a row".to_owned(),
            );
        }
        for name in case.key.get_ref() {
            if !case.columns.get_ref().contains(name.get_ref()) {
                problem(
                    name.span(),
                    format!("the key column `{}` is not in `columns`", name.get_ref()),
                );
            }
        }
        let width = case.columns.get_ref().len();
        let mut rows = Vec::with_capacity(case.rows.len());
        for row in &case.rows {
            if row.get_ref().len() != width {
                problem(
                    row.span(),
                    format!(
                        "this row has {} value(s); `columns` names {width}",
                        row.get_ref().len()
                    ),
                );
            }
            rows.push(cells(row.get_ref(), &mut problem));
        }
        let expect = match (case.expect, case.expect_error) {
            (Some(_), Some(_)) => {
                problem(
                    span,
                    "a case has `expect` or `expect-error`, not both".to_owned(),
                );
                Expect::Findings(Vec::new())
            }
            (_, Some(error)) => Expect::Error(error),
            (expected, None) => Expect::Findings(
                expected
                    .unwrap_or_default()
                    .into_iter()
                    .map(|e| {
                        let key = cells(e.key.get_ref(), &mut problem);
                        if key.len() != case.key.get_ref().len() {
                            problem(
                                e.key.span(),
                                format!(
                                    "this key has {} value(s); the case's `key` has {} column(s)",
                                    key.len(),
                                    case.key.get_ref().len()
                                ),
                            );
                        }
                        let (detail_span, detail) = e
                            .detail
                            .map(|d| (d.span(), d.into_inner()))
                            .unwrap_or_default();
                        let detail = detail
                            .into_iter()
                            .map(|(name, value)| {
                                let cell = super::cell::parse(&value).unwrap_or_else(|message| {
                                    problem(
                                        detail_span.clone(),
                                        format!("detail `{name}`: {message}"),
                                    );
                                    Value::Null
                                });
                                (name, cell)
                            })
                            .collect();
                        Expected {
                            key,
                            message: e.message,
                            detail,
                        }
                    })
                    .collect(),
            ),
        };
        cases.push(Case {
            name: case.name.into_inner(),
            config: case.config,
            key: case
                .key
                .into_inner()
                .into_iter()
                .map(Spanned::into_inner)
                .collect(),
            columns: case.columns.into_inner(),
            rows,
            expect,
        });
    }
    if problems.is_empty() {
        Ok(Fixtures { cases })
    } else {
        Err(problems)
    }
}

/// The cells of a row or key; a value that is none is a problem at its place.
fn cells(
    values: &[Spanned<toml::Value>],
    problem: &mut impl FnMut(std::ops::Range<usize>, String),
) -> Vec<Value> {
    values
        .iter()
        .map(|value| {
            super::cell::parse(value.get_ref()).unwrap_or_else(|message| {
                problem(value.span(), message);
                Value::Null
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Result<Fixtures, Vec<String>> {
        parse(&SourceFile {
            path: "fixtures.toml".into(),
            text: text.to_owned(),
        })
        .map_err(|problems| problems.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn every_kind_of_value_reads_and_shows_as_written() {
        let fixtures = parsed(
            r#"
            [[case]]
            name = "values"
            key = ["a"]
            columns = ["a", "b", "c", "d", "e", "f", "g", "h", "i"]
            rows = [[1, 2.5, "x", true, 2026-01-31T12:00:00, { null = true }, { decimal = "-12.50" }, { bytes = "00ff" }, { timestamp = "2026-01-31 12:00:00+00" }]]
            "#,
        )
        .unwrap();
        let shown: Vec<String> = fixtures.cases[0].rows[0]
            .iter()
            .map(|value| super::super::cell::Fixture(value).to_string())
            .collect();
        assert_eq!(
            shown,
            [
                "1",
                "2.5",
                "\"x\"",
                "true",
                "2026-01-31T12:00:00",
                "{ null = true }",
                "{ decimal = \"-12.50\" }",
                "{ bytes = \"00ff\" }",
                "{ timestamp = \"2026-01-31 12:00:00+00\" }",
            ]
        );
    }

    #[test]
    fn every_problem_is_reported_at_its_place() {
        let problems = parsed(
            r#"[[case]]
name = "one"
key = ["id"]
columns = ["id", "text"]
rows = [[1, "a"], [2], [3, { bytes = "xyz" }]]
expect = [{ key = [1, 2] }]
"#,
        )
        .unwrap_err();
        let heads: Vec<&str> = problems.iter().map(|p| p.lines().next().unwrap()).collect();
        assert_eq!(
            heads,
            [
                "fixtures.toml:5:19: this row has 1 value(s); `columns` names 2",
                "fixtures.toml:5:28: `xyz` is not hex: write two hex digits per byte, e.g. \"00ff\"",
                "fixtures.toml:6:19: this key has 2 value(s); the case's `key` has 1 column(s)",
            ]
        );
    }
}
