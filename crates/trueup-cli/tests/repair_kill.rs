//! `apply` killed with SIGKILL in the middle of a multi-batch apply, through the real binary,
//! at several points: every committed batch is whole and journaled (the rows changed are
//! exactly the rows journaled, a multiple of the batch size), a second apply finishes the
//! rest, and undoing every repair makes the table identical to before. Also SIGINT: the
//! apply stops after the batch it is in and exits 130.

mod common;
#[path = "../../../tests/support/mysql.rs"]
mod mysql;
#[path = "../../../tests/support/pg.rs"]
mod pg;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{in_project, project};
use rustix::process::{Pid, Signal, kill_process};

const BATCH: i64 = 4;

fn rule() -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../rules/ecommerce/order-total-matches-items.toml"
    );
    std::fs::read_to_string(path)
        .unwrap()
        .replace("max-rows = 1000", "max-rows = 100000")
        .replace("source = \"shop\"", "source = \"db\"")
}

enum Db {
    Sqlite(std::path::PathBuf),
    Postgres(String),
    Mysql(String),
}

impl Db {
    fn url(&self) -> String {
        match self {
            Db::Sqlite(path) => format!("sqlite://{}", path.display()),
            Db::Postgres(url) | Db::Mysql(url) => url.clone(),
        }
    }

    /// Each order's total as text, by id.
    async fn totals(&self) -> BTreeMap<i64, String> {
        let sql = "SELECT CAST(id AS BIGINT), CAST(total_amount AS TEXT) FROM orders";
        let rows: Vec<(i64, String)> = match self {
            Db::Sqlite(path) => {
                let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
                    .await
                    .unwrap();
                let rows = sqlx::query_as(sql).fetch_all(&pool).await.unwrap();
                pool.close().await;
                rows
            }
            Db::Postgres(url) => {
                let pool = sqlx::PgPool::connect(url).await.unwrap();
                let rows = sqlx::query_as(sql).fetch_all(&pool).await.unwrap();
                pool.close().await;
                rows
            }
            Db::Mysql(url) => {
                let pool = sqlx::MySqlPool::connect(url).await.unwrap();
                let rows = sqlx::query_as("SELECT id, CAST(total_amount AS CHAR) FROM orders")
                    .fetch_all(&pool)
                    .await
                    .unwrap();
                pool.close().await;
                rows
            }
        };
        rows.into_iter().collect()
    }

    /// Journaled rows of `orders` in committed batches (0 before the journal exists).
    async fn journaled(&self) -> i64 {
        self.poller().await.count().await
    }

    /// A connection kept open for polling the journal while an apply runs.
    async fn poller(&self) -> Poller {
        match self {
            Db::Sqlite(path) => {
                let options = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(path)
                    .read_only(true)
                    .busy_timeout(Duration::from_secs(5));
                Poller::Sqlite(sqlx::SqlitePool::connect_with(options).await.unwrap())
            }
            Db::Postgres(url) => Poller::Postgres(sqlx::PgPool::connect(url).await.unwrap()),
            Db::Mysql(url) => Poller::Mysql(sqlx::MySqlPool::connect(url).await.unwrap()),
        }
    }
}

enum Poller {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
    Mysql(sqlx::MySqlPool),
}

impl Poller {
    async fn count(&self) -> i64 {
        let count =
            |table: &str| format!("SELECT count(*) FROM {table} WHERE table_name = 'orders'");
        match self {
            Poller::Sqlite(pool) => {
                sqlx::query_scalar(sqlx::AssertSqlSafe(count("trueup_journal")))
                    .fetch_one(pool)
                    .await
                    .unwrap_or(0)
            }
            Poller::Postgres(pool) => {
                sqlx::query_scalar(sqlx::AssertSqlSafe(count("trueup.journal")))
                    .fetch_one(pool)
                    .await
                    .unwrap_or(0)
            }
            Poller::Mysql(pool) => sqlx::query_scalar(sqlx::AssertSqlSafe(count("trueup_journal")))
                .fetch_one(pool)
                .await
                .unwrap_or(0),
        }
    }
}

fn start_apply(dir: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_trueup"))
        .arg("--project")
        .arg(dir.join("trueup.toml"))
        .args(["apply", "plan.jsonl", "--batch-size", &BATCH.to_string()])
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start trueup apply")
}

fn signal(child: &Child, signal: Signal) {
    let pid = Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap();
    kill_process(pid, signal).expect("signal trueup");
}

/// Waits until at least `rows` rows are journaled; false when the apply ended first.
async fn wait_for(db: &Db, child: &mut Child, rows: i64) -> bool {
    let started = Instant::now();
    let poller = db.poller().await;
    while poller.count().await < rows {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "apply made no progress"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    true
}

/// The rows changed are exactly the rows journaled, in whole batches.
async fn assert_whole_batches(db: &Db, before: &BTreeMap<i64, String>) -> i64 {
    let now = db.totals().await;
    let changed = before
        .iter()
        .filter(|(id, total)| now.get(id) != Some(total))
        .count();
    let journaled = db.journaled().await;
    assert_eq!(
        i64::try_from(changed).unwrap(),
        journaled,
        "every changed row is journaled, and no journaled batch is missing its change"
    );
    assert_eq!(
        journaled % BATCH,
        0,
        "only whole batches of {BATCH} committed: {journaled}"
    );
    journaled
}

async fn killed_applies_leave_whole_batches(db: Db) {
    let rule = rule();
    let dir = project(&db.url(), &[("totals.toml", &rule)]);
    let project_file = dir.path().join("trueup.toml");
    let before = db.totals().await;
    let plan = dir.path().join("plan.jsonl");
    let (code, out, err) = in_project(&project_file, &["plan", "-o", plan.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}{err}");

    let mut last = 0;
    for point in [BATCH, 3 * BATCH] {
        let mut child = start_apply(dir.path());
        assert!(
            wait_for(&db, &mut child, last + point).await,
            "the apply ended before the kill"
        );
        signal(&child, Signal::KILL);
        child.wait().unwrap();
        let journaled = assert_whole_batches(&db, &before).await;
        assert!(
            journaled > last,
            "the second apply went on where the first stopped"
        );
        last = journaled;
    }

    let (code, out, err) = in_project(
        &project_file,
        &["apply", dir.path().join("plan.jsonl").to_str().unwrap()],
    );
    assert_eq!(code, Some(0), "{out}{err}");
    let (code, out, err) = in_project(&project_file, &["check", "--no-record", "--format", "json"]);
    assert_eq!(
        code,
        Some(0),
        "the rule finds nothing once the apply finished: {out}{err}"
    );

    let (_, out, _) = in_project(&project_file, &["repairs", "--format", "json"]);
    let repairs: serde_json::Value = serde_json::from_str(&out).unwrap();
    let ids: Vec<i64> = repairs
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "apply")
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        ids.len(),
        3,
        "two killed applies and the one that finished: {out}"
    );
    for id in ids {
        let (code, out, err) = in_project(&project_file, &["undo", &id.to_string()]);
        assert_eq!(code, Some(0), "{out}{err}");
    }
    assert_eq!(
        db.totals().await,
        before,
        "undo restores every committed batch"
    );
}

async fn sqlite_shop() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shop.db");
    trueup_shop::create_sqlite(&path, &spec()).await.unwrap();
    (dir, Db::Sqlite(path))
}

fn spec() -> trueup_shop::ShopSpec {
    trueup_shop::ShopSpec {
        orders: 4000,
        problem_rate: 0.2,
        seed: 3,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_apply_leaves_whole_journaled_batches_and_finishes_on_sqlite() {
    let (_dir, db) = sqlite_shop().await;
    killed_applies_leave_whole_batches(db).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_apply_leaves_whole_journaled_batches_and_finishes_on_postgres() {
    let Some(admin) = pg::admin_url() else { return };
    let url = pg::fresh_database(&admin).await;
    trueup_shop::create_postgres(&url, &spec()).await.unwrap();
    killed_applies_leave_whole_batches(Db::Postgres(url)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigint_stops_an_apply_after_its_batch_and_exits_130() {
    let (_dir, db) = sqlite_shop().await;
    let rule = rule();
    let dir = project(&db.url(), &[("totals.toml", &rule)]);
    let project_file = dir.path().join("trueup.toml");
    let before = db.totals().await;
    let plan = dir.path().join("plan.jsonl");
    let (code, out, err) = in_project(&project_file, &["plan", "-o", plan.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}{err}");
    let mut child = start_apply(dir.path());
    assert!(wait_for(&db, &mut child, BATCH).await);
    signal(&child, Signal::INT);
    let output = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(130), "{text}");
    assert!(
        text.contains("interrupted: the batches shown are committed"),
        "{text}"
    );
    assert_whole_batches(&db, &before).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_apply_leaves_whole_journaled_batches_and_finishes_on_mysql() {
    let Some(admin) = mysql::admin_url() else {
        return;
    };
    let url = mysql::fresh_database(&admin).await;
    trueup_shop::create_mysql(&url, &spec()).await.unwrap();
    killed_applies_leave_whole_batches(Db::Mysql(url)).await;
}
