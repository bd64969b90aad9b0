//! What `trueup plugin test` prints: per case ✓ or ✗ with what differs (human), or one JSON
//! document. Findings are written the way `expect` writes them, so that one the plugin
//! rightly reports can be pasted into the fixture: as TOML strings on one line, control
//! characters in TOML escapes. Case names and the plugin's errors are written escaped.

use std::io::Write;
use std::path::Path;

use anstream::println;
use serde_json::{Value, json};
use trueup_core::plugin::Plugin;
use trueup_core::text::Escaped;

use trueup_core::value::Value as Cell;

use super::cell::Fixture;
use super::fixtures::{Expect, Expected};
use super::test::{CaseResult, Found};
use crate::args::Format;
use crate::printer::{ERROR, OK};
use crate::render::plural;

pub fn print(
    format: Format,
    plugin: &Plugin,
    fixtures: &Path,
    results: &[CaseResult<'_>],
) -> anyhow::Result<()> {
    let passed = results.iter().filter(|r| r.passed()).count();
    match format {
        Format::Json => {
            let report = json!({
                "plugin": {
                    "name": plugin.description.name,
                    "version": plugin.description.version,
                    "path": super::shown_path(&plugin.path),
                },
                "fixtures": fixtures,
                "passed": passed == results.len(),
                "cases": results.iter().map(case_json).collect::<Vec<_>>(),
                "summary": {
                    "cases": results.len(),
                    "passed": passed,
                    "failed": results.len() - passed,
                },
            });
            let mut out = std::io::stdout().lock();
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        }
        Format::Human => {
            for result in results {
                human(result);
            }
            println!();
            let failed = results.len() - passed;
            if failed == 0 {
                println!("{OK}{}{OK:#} passed", plural(passed, "case"));
            } else {
                println!(
                    "{ERROR}{failed} of {} failed{ERROR:#}, {passed} passed",
                    plural(results.len(), "case")
                );
            }
        }
    }
    Ok(())
}

fn human(result: &CaseResult<'_>) {
    let name = Escaped(&result.case.name);
    let mark = if result.passed() {
        format!("{OK}✓{OK:#}")
    } else {
        format!("{ERROR}✗{ERROR:#}")
    };
    match (&result.case.expect, &result.outcome) {
        (Expect::Findings(_), Ok(found)) => {
            println!("{mark} {name} · {}", plural(found.len(), "finding"));
            for expected in &result.missing {
                println!("    missing     {}", expected_toml(expected));
            }
            for found in &result.unexpected {
                println!("    unexpected  {}", found_toml(found));
            }
        }
        (Expect::Findings(_), Err(error)) => {
            println!("{mark} {name}");
            println!("    the plugin failed: {}", Escaped(error));
        }
        (Expect::Error(_), Err(error)) if result.passed() => {
            println!("{mark} {name} · refused: {}", Escaped(error));
        }
        (Expect::Error(wanted), Err(error)) => {
            println!("{mark} {name}");
            println!(
                "    expected an error containing {}",
                Escaped(format_args!("{wanted:?}"))
            );
            println!("    got: {}", Escaped(error));
        }
        (Expect::Error(wanted), Ok(found)) => {
            println!("{mark} {name}");
            println!(
                "    expected an error containing {}, but the plugin ran and reported {}",
                Escaped(format_args!("{wanted:?}")),
                plural(found.len(), "finding")
            );
        }
    }
}

fn case_json(result: &CaseResult<'_>) -> Value {
    let (findings, error) = match &result.outcome {
        Ok(found) => (Some(found.iter().map(found_json).collect::<Vec<_>>()), None),
        Err(error) => (None, Some(error)),
    };
    let expected_error = match &result.case.expect {
        Expect::Error(wanted) => Some(wanted),
        Expect::Findings(_) => None,
    };
    json!({
        "name": result.case.name,
        "passed": result.passed(),
        "findings": findings,
        "error": error,
        "expected_error": expected_error,
        "missing": result.missing.iter().map(|e| expected_json(e)).collect::<Vec<_>>(),
        "unexpected": result.unexpected.iter().map(found_json).collect::<Vec<_>>(),
    })
}

fn found_json(found: &Found) -> Value {
    json!({
        "key": found.key,
        "message": found.message,
        "detail": detail_json(&found.detail),
    })
}

fn expected_json(expected: &Expected) -> Value {
    let mut value = json!({ "key": expected.key });
    if let Some(message) = &expected.message {
        value["message"] = message.clone().into();
    }
    if !expected.detail.is_empty() {
        value["detail"] = detail_json(&expected.detail);
    }
    value
}

fn detail_json(detail: &[(String, Cell)]) -> Value {
    Value::Object(
        detail
            .iter()
            .map(|(name, cell)| (name.clone(), json!(cell)))
            .collect(),
    )
}

/// `{ key = [..], message = "..", detail = { .. } }`, as `expect` writes it.
fn found_toml(found: &Found) -> String {
    finding_toml(&found.key, Some(&found.message), &found.detail)
}

fn expected_toml(expected: &Expected) -> String {
    finding_toml(&expected.key, expected.message.as_deref(), &expected.detail)
}

fn finding_toml(key: &[Cell], message: Option<&str>, detail: &[(String, Cell)]) -> String {
    let key: Vec<String> = key.iter().map(|cell| Fixture(cell).to_string()).collect();
    let mut text = format!("{{ key = [{}]", key.join(", "));
    if let Some(message) = message {
        text.push_str(&format!(", message = {}", super::toml_string(message)));
    }
    if !detail.is_empty() {
        let fields: Vec<String> = detail
            .iter()
            .map(|(name, cell)| format!("{} = {}", toml_key(name), Fixture(cell)))
            .collect();
        text.push_str(&format!(", detail = {{ {} }}", fields.join(", ")));
    }
    text.push_str(" }");
    text
}

/// `name` as a TOML key: bare when it can be.
fn toml_key(name: &str) -> String {
    let bare = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if bare {
        name.to_owned()
    } else {
        super::toml_string(name)
    }
}
