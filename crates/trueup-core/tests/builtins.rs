//! Every built-in detector against real databases, case by case, from the fixture files in
//! `tests/builtins/` at the repository root (one per detector, shared by all backends).

mod support;

use std::path::PathBuf;

use serde::Deserialize;
use support::{TestDb, TestProject, run_project};

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct CaseFile {
    setup: String,
    #[serde(rename = "case")]
    cases: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Case {
    name: String,
    detector: toml::Value,
    expect: Vec<String>,
    /// Where SQLite's answer differs (it has no exact decimals), what it must be there.
    expect_sqlite: Option<Vec<String>>,
}

fn case_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/builtins");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/builtins exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

/// Builds one rule file holding every case of a file as a rule `case-N`.
fn rules_for(cases: &[Case]) -> String {
    let mut text = String::new();
    for (i, case) in cases.iter().enumerate() {
        let mut rule = toml::Table::new();
        rule.insert("id".into(), format!("case-{i}").into());
        rule.insert("title".into(), case.name.clone().into());
        rule.insert("severity".into(), "low".into());
        rule.insert("detector".into(), case.detector.clone());
        let mut file = toml::Table::new();
        file.insert("rule".into(), toml::Value::Array(vec![rule.into()]));
        text.push_str(&toml::to_string(&file).unwrap());
        text.push('\n');
    }
    text
}

async fn check_backend<F: Future<Output = Option<TestDb>>>(db_for: impl Fn() -> F) {
    let mut failures = Vec::new();
    let files = case_files();
    assert!(files.len() >= 8, "one case file per built-in and sql");
    for file in files {
        let parsed: CaseFile = toml::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let Some(db) = db_for().await else { return };
        db.execute(&parsed.setup).await;
        let project = TestProject::new(&db.url, &[("cases.toml", &rules_for(&parsed.cases))]);
        let result = run_project(&project.path()).await;
        for (i, case) in parsed.cases.iter().enumerate() {
            let id = format!("case-{i}");
            let expected = match (&case.expect_sqlite, db.backend) {
                (Some(sqlite), "sqlite") => sqlite,
                _ => &case.expect,
            };
            if let Some(error) = result.error(&id) {
                failures.push(format!(
                    "{} / {}: error: {error}",
                    file.display(),
                    case.name
                ));
            } else if result.keys(&id) != *expected {
                failures.push(format!(
                    "{} / {} [{}]: expected {expected:?}, found {:?}",
                    file.file_name().unwrap().to_string_lossy(),
                    case.name,
                    db.backend,
                    result.keys(&id)
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn builtins_on_sqlite() {
    check_backend(|| async { Some(TestDb::sqlite()) }).await;
}

#[tokio::test]
async fn builtins_on_postgres() {
    check_backend(TestDb::postgres).await;
}
