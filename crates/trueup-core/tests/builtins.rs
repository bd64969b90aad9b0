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
    /// Where MySQL cannot take `setup` as written (its `TIMESTAMP` ends in 2038), what it
    /// runs instead: the same rows.
    setup_mysql: Option<String>,
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
        let setup = match (&parsed.setup_mysql, db.backend) {
            (Some(mysql), "mysql") => mysql,
            _ => &parsed.setup,
        };
        db.execute(setup).await;
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

#[tokio::test]
async fn builtins_on_mysql() {
    check_backend(TestDb::mysql).await;
}

/// `unique` with a `key` lists the duplicate rows' keys, in key order and at most 10 (then
/// how many more), in its detail and message; the finding is still keyed by the value.
async fn unique_lists_the_keys_of_duplicate_rows(db: TestDb) {
    let setup = "CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT, tenant TEXT); \
        INSERT INTO customers VALUES (30, 'a@x.io', 'eu'), (4, 'a@x.io', 'us'), (7, 'b@x.io', 'eu'), \
        (9, NULL, 'eu'), (10, NULL, 'eu'), (11, 'c@x.io', NULL);";
    db.execute(setup).await;
    let many: Vec<String> = (100..125)
        .map(|id| format!("({id}, 'many@x.io', 'eu')"))
        .collect();
    db.execute(&format!(
        "INSERT INTO customers VALUES {};",
        many.join(", ")
    ))
    .await;
    db.execute("INSERT INTO customers VALUES (5, 'c@x.io', 'eu');")
        .await;
    let rule = |id: &str, extra: &str| {
        format!(
            "[[rule]]\nid = \"{id}\"\ntitle = \"{id}\"\nseverity = \"low\"\n\n[rule.detector]\n\
             kind = \"unique\"\ntable = \"customers\"\ncolumns = [\"email\"]\n{extra}\n"
        )
    };
    let rules = [
        rule("by-id", "key = [\"id\"]"),
        rule(
            "by-tenant-and-id",
            "key = [\"tenant\", \"id\"]\nwhere = \"id < 100\"",
        ),
        rule("without-key", ""),
    ]
    .join("\n");
    let project = TestProject::new(&db.url, &[("rules.toml", &rules)]);
    let result = run_project(&project.path()).await;
    let found = |rule: &str| {
        let mut found: Vec<(String, String, String)> = result
            .findings
            .iter()
            .zip(&result.details)
            .filter(|((r, _, _), _)| r == rule)
            .map(|((_, key, message), detail)| (key.clone(), message.clone(), detail.clone()))
            .collect();
        found.sort();
        found
    };
    for rule in ["by-id", "by-tenant-and-id", "without-key"] {
        assert_eq!(result.error(rule), None, "{}: {rule}", db.backend);
    }
    let by_id = found("by-id");
    assert_eq!(
        by_id,
        [
            (
                "email=a@x.io".to_owned(),
                "2 rows of customers share email=a@x.io (id: 4, 30)".to_owned(),
                r#"{"duplicate_count":2,"duplicate_keys":"4, 30"}"#.to_owned()
            ),
            (
                "email=c@x.io".to_owned(),
                "2 rows of customers share email=c@x.io (id: 5, 11)".to_owned(),
                r#"{"duplicate_count":2,"duplicate_keys":"5, 11"}"#.to_owned()
            ),
            (
                "email=many@x.io".to_owned(),
                "25 rows of customers share email=many@x.io (id: 100, 101, 102, 103, 104, 105, \
                 106, 107, 108, 109 and 15 more)"
                    .to_owned(),
                r#"{"duplicate_count":25,"duplicate_keys":"100, 101, 102, 103, 104, 105, 106, 107, 108, 109 and 15 more"}"#
                    .to_owned()
            ),
        ],
        "{}",
        db.backend
    );
    // A composite key, NULLs in it shown (and sorted last), and `where` applied to the rows
    // listed too.
    assert_eq!(
        found("by-tenant-and-id"),
        [
            (
                "email=a@x.io".to_owned(),
                "2 rows of customers share email=a@x.io ((tenant, id): (eu, 30), (us, 4))"
                    .to_owned(),
                r#"{"duplicate_count":2,"duplicate_keys":"(eu, 30), (us, 4)"}"#.to_owned()
            ),
            (
                "email=c@x.io".to_owned(),
                "2 rows of customers share email=c@x.io ((tenant, id): (eu, 5), (NULL, 11))"
                    .to_owned(),
                r#"{"duplicate_count":2,"duplicate_keys":"(eu, 5), (NULL, 11)"}"#.to_owned()
            ),
        ],
        "{}",
        db.backend
    );
    // The same findings without `key`, keyed alike: listing keys changes no fingerprint.
    let keys = |rule: &str| found(rule).into_iter().map(|f| f.0).collect::<Vec<_>>();
    assert_eq!(keys("without-key"), keys("by-id"));
    assert!(
        found("without-key")[0].2 == r#"{"duplicate_count":2}"#,
        "{:?}",
        found("without-key")
    );
}

#[tokio::test]
async fn unique_lists_the_keys_of_duplicate_rows_on_sqlite() {
    unique_lists_the_keys_of_duplicate_rows(TestDb::sqlite()).await;
}

#[tokio::test]
async fn unique_lists_the_keys_of_duplicate_rows_on_postgres() {
    if let Some(db) = TestDb::postgres().await {
        unique_lists_the_keys_of_duplicate_rows(db).await;
    }
}

#[tokio::test]
async fn unique_lists_the_keys_of_duplicate_rows_on_mysql() {
    if let Some(db) = TestDb::mysql().await {
        unique_lists_the_keys_of_duplicate_rows(db).await;
    }
}
