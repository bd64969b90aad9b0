//! Helpers shared by the core's integration tests: fresh databases on every backend the
//! machine offers, and running rules through the real engine.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

#[path = "../../../../tests/support/mysql.rs"]
pub mod mysql;
#[path = "../../../../tests/support/pg.rs"]
pub mod pg;
#[path = "../../../../tests/support/redis.rs"]
pub mod redis;
pub mod repair;

use tokio::sync::mpsc;
use trueup_core::compile::DetectorQuery;
use trueup_core::engine::{self, Event};
use trueup_core::load::{Project, SourceSpec};
use trueup_core::outcome::RuleOutcome;
use trueup_core::source::{RowSink, Source};
use trueup_core::store::{RunId, Store};
use trueup_core::value::Value;

/// A row sink that keeps every row it is handed.
#[derive(Default)]
pub struct Rows(pub Vec<Vec<Value>>);

impl RowSink for Rows {
    fn columns(&mut self, _: Vec<String>) -> trueup_core::Result<()> {
        Ok(())
    }
    async fn row(&mut self, values: Vec<Value>) -> trueup_core::Result<()> {
        self.0.push(values);
        Ok(())
    }
}

/// A database created for one test, on one backend.
pub struct TestDb {
    pub backend: &'static str,
    /// A URL trueup can use as a source (read-only is trueup's business).
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// A fresh, empty SQLite file.
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("test.db");
        TestDb {
            backend: "sqlite",
            url: format!("sqlite://{}", path.display()),
            _dir: Some(dir),
        }
    }

    /// A fresh, empty PostgreSQL database on the test server that `scripts/test` starts;
    /// `None` when there is none (see `pg::admin_url`).
    pub async fn postgres() -> Option<TestDb> {
        let url = pg::fresh_database(&pg::admin_url()?).await;
        Some(TestDb {
            backend: "postgres",
            url,
            _dir: None,
        })
    }

    /// A fresh, empty MariaDB database on the test server that `scripts/test` starts;
    /// `None` when there is none (see `mysql::admin_url`).
    pub async fn mysql() -> Option<TestDb> {
        let url = mysql::fresh_database(&mysql::admin_url()?).await;
        Some(TestDb {
            backend: "mysql",
            url,
            _dir: None,
        })
    }

    /// Runs a script of several statements with write access.
    pub async fn execute(&self, script: &str) {
        match self.backend {
            "sqlite" => {
                let path = self.url.trim_start_matches("sqlite://");
                let options = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true);
                let pool = sqlx::SqlitePool::connect_with(options)
                    .await
                    .expect("open sqlite");
                sqlx::raw_sql(sqlx::AssertSqlSafe(script.to_owned()))
                    .execute(&pool)
                    .await
                    .expect("setup script");
                pool.close().await;
            }
            "mysql" => mysql::execute(&self.url, script).await,
            _ => pg::execute(&self.url, script).await,
        }
    }
}

/// A project in a temp dir: `trueup.toml` with one source `db` (or the name given with
/// [`TestProject::with_source`]), and the given rule files.
pub struct TestProject {
    pub dir: tempfile::TempDir,
}

impl TestProject {
    pub fn new(url: &str, rule_files: &[(&str, &str)]) -> TestProject {
        Self::with_source("db", url, rule_files)
    }

    pub fn with_source(name: &str, url: &str, rule_files: &[(&str, &str)]) -> TestProject {
        let dir = tempfile::tempdir().expect("temp dir");
        let project = format!("rules = [\"rules\"]\n\n[sources.{name}]\nurl = \"{url}\"\n");
        std::fs::write(dir.path().join("trueup.toml"), project).unwrap();
        std::fs::create_dir_all(dir.path().join("rules")).unwrap();
        for (name, text) in rule_files {
            std::fs::write(dir.path().join("rules").join(name), text).unwrap();
        }
        TestProject { dir }
    }

    /// A project with several sources, `(name, url)` each.
    pub fn with_sources(sources: &[(&str, &str)], rule_files: &[(&str, &str)]) -> TestProject {
        let project = Self::with_source(sources[0].0, sources[0].1, rule_files);
        let mut text = std::fs::read_to_string(project.path()).unwrap();
        for (name, url) in &sources[1..] {
            text.push_str(&format!("\n[sources.{name}]\nurl = \"{url}\"\n"));
        }
        std::fs::write(project.path(), text).unwrap();
        project
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("trueup.toml")
    }
}

/// What a run reported: every finding as `(rule id, key text, message)`, and each rule's outcome.
pub struct RunResult {
    pub findings: Vec<(String, String, String)>,
    /// Each finding's detail as JSON, in the order of `findings`.
    pub details: Vec<String>,
    pub outcomes: Vec<RuleOutcome>,
}

impl RunResult {
    /// Asserts that each rule of `expected` ran and found exactly its planted keys.
    pub fn assert_found(&self, expected: &[trueup_shop::ExpectedFindings]) {
        for expected in expected {
            let rule = expected.rule;
            assert_eq!(self.error(rule), None, "{rule} failed");
            let found: std::collections::BTreeSet<String> = self.keys(rule).into_iter().collect();
            let keys: std::collections::BTreeSet<String> = expected
                .keys
                .iter()
                .map(|k| format!("{}={k}", expected.key_column))
                .collect();
            assert!(!keys.is_empty(), "{rule}: the spec plants some");
            assert_eq!(found, keys, "{rule}: findings differ from the planted rows");
        }
    }

    /// The sorted key texts of one rule's findings.
    pub fn keys(&self, rule: &str) -> Vec<String> {
        let mut keys: Vec<String> = self
            .findings
            .iter()
            .filter(|(r, _, _)| r == rule)
            .map(|(_, key, _)| key.clone())
            .collect();
        keys.sort();
        keys
    }

    /// The cause of a rule's error (`timeout`, `plugin-trapped`, …), if it failed.
    pub fn cause(&self, rule: &str) -> Option<&'static str> {
        self.outcomes
            .iter()
            .find(|o| o.rule.id == rule)
            .and_then(|o| o.error.as_ref().map(trueup_core::outcome::RuleError::cause))
    }

    pub fn error(&self, rule: &str) -> Option<String> {
        self.outcomes
            .iter()
            .find(|o| o.rule.id == rule)
            .and_then(|o| o.error.as_ref().map(ToString::to_string))
    }
}

/// Loads the project at `path` and runs all its rules through the engine.
pub async fn run_project(path: &Path) -> RunResult {
    run_and_record(path, None).await.0
}

/// [`run_project`], recording the run in `store` when given; returns the run's id too.
pub async fn run_and_record(path: &Path, store: Option<&Store>) -> (RunResult, Option<RunId>) {
    let project = Project::load(path).unwrap_or_else(|err| match err {
        trueup_core::Error::Invalid(problems) => {
            panic!(
                "{}",
                problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        }
        other => panic!("{other}"),
    });
    let loaded: Vec<_> = project.rules.iter().collect();
    let plan = engine::prepare(&project, &loaded).expect("prepare");
    let sources = trueup_core::source::open_all(&project, &loaded, 2).await;
    let mut recorder = match store {
        Some(store) => Some(store.begin_run(&plan.rules, None).await.expect("begin run")),
        None => None,
    };
    let (events, mut received) = mpsc::channel(64);
    let collect = async {
        let mut result = RunResult {
            findings: Vec::new(),
            details: Vec::new(),
            outcomes: Vec::new(),
        };
        while let Some(event) = received.recv().await {
            match event {
                Event::Findings(batch) => {
                    for f in batch {
                        result
                            .findings
                            .push((f.rule.id.clone(), f.key_text(), f.message()));
                        result.details.push(
                            serde_json::to_string(&f.detail_object()).expect("detail as JSON"),
                        );
                        if let Some(recorder) = recorder.as_mut() {
                            let print = f.fingerprint();
                            recorder.add(f, print).await;
                        }
                    }
                }
                Event::Finished(outcome) => result.outcomes.push(outcome),
                Event::Started(_) => {}
            }
        }
        result
    };
    let options = engine::RunOptions {
        concurrency: 2,
        split: 2,
    };
    let run = async move { engine::run(&plan, &sources, options, &events).await };
    let ((), result) = tokio::join!(run, collect);
    let run = match recorder {
        Some(recorder) => Some(recorder.finish(&result.outcomes).await.expect("finish run")),
        None => None,
    };
    (result, run)
}

/// The bundled e-commerce pack (`rules/ecommerce/`): file names and texts, sorted.
pub fn ecommerce_pack() -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../rules/ecommerce");
    let mut files: Vec<(String, String)> = std::fs::read_dir(dir)
        .expect("rules/ecommerce")
        .map(|e| e.expect("entry").path())
        .map(|p| {
            (
                p.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
                std::fs::read_to_string(&p).expect("rule file"),
            )
        })
        .collect();
    files.sort();
    files
}

/// Opens `url` as trueup opens a source `db`, with one connection.
pub async fn open_source(url: &str) -> Source {
    let spec = SourceSpec {
        name: "db".into(),
        url: url.to_owned(),
        max_connections: None,
        connect_timeout: trueup_core::project::DEFAULT_CONNECT_TIMEOUT,
        path: Default::default(),
        file: None,
    };
    Source::connect(&spec, Path::new(""), 1)
        .await
        .expect("open the source")
}

/// `sql` as a detector query with no key, binds or settings.
pub fn raw_query(sql: &str) -> DetectorQuery {
    DetectorQuery {
        sql: sql.to_owned(),
        binds: Vec::new(),
        key: Vec::new(),
        message: trueup_core::template::Template::parse("x").expect("a template"),
        split: None,
        settings: Vec::new(),
        plugin: None,
        native: None,
        bulk: false,
    }
}
