//! Memory that does not grow with findings: the commands that read a whole recorded run
//! (`show --format json`, `baseline accept`) stream it. Peak RSS of the real binary,
//! measured by GNU time (`/usr/bin/time -f %M`, from wait4): a size, not a timing.

use std::path::Path;
use std::process::{Command, Stdio};

/// Findings in the recorded run: enough that collecting them (about 2.4 KiB each before
/// streaming) would pass the bound by far, few enough for a debug build to be quick.
const FINDINGS: u32 = 60_000;
/// The bound on each command's peak RSS, in KiB. Collecting `show` and `baseline accept`
/// peaked at ~145 MiB here; streaming, they stay under 50 MiB.
const BOUND_KIB: u64 = 100 * 1024;

/// Runs trueup with `args` and returns its peak RSS in KiB.
fn peak_kib(project: &Path, args: &[&str]) -> u64 {
    let time = Path::new("/usr/bin/time");
    assert!(
        time.exists(),
        "this test measures memory with GNU time: apt-get install time"
    );
    let report = project.with_file_name("time.txt");
    let status = Command::new(time)
        .args(["-f", "%M", "-o"])
        .arg(&report)
        .arg(env!("CARGO_BIN_EXE_trueup"))
        .arg("--quiet")
        .arg("--project")
        .arg(project)
        .args(args)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.code().is_some_and(|c| c <= 1), "{args:?}: {status}");
    let text = std::fs::read_to_string(&report).unwrap();
    text.lines()
        .last()
        .and_then(|line| line.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak RSS in {text:?}"))
}

#[test]
fn reading_a_large_run_takes_bounded_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir(dir.join("rules")).unwrap();
    // The rows come from the query itself, between the bounds a table holds.
    let bounds = |lo: u32, hi: u32| {
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            let url = format!("sqlite://{}?mode=rwc", dir.join("data.db").display());
            let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "DROP TABLE IF EXISTS bounds; CREATE TABLE bounds (lo INTEGER, hi INTEGER); \
                 INSERT INTO bounds VALUES ({lo}, {hi})"
            )))
            .execute(&pool)
            .await
            .unwrap();
            pool.close().await;
        });
    };
    bounds(1, FINDINGS);
    std::fs::write(
        dir.join("trueup.toml"),
        "rules = [\"rules\"]\n[sources.db]\nurl = \"sqlite://data.db\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("rules/many.toml"),
        "[[rule]]\nid = \"many\"\ntitle = \"One finding per row\"\nseverity = \"low\"\n\
         [rule.detector]\nkind = \"sql\"\nkey = [\"id\"]\n\
         query = \"WITH RECURSIVE n(i) AS (SELECT lo FROM bounds UNION ALL SELECT i + 1 FROM n, bounds WHERE i < hi) \
         SELECT i AS id, 'a detail that is not short, for row ' || i AS note FROM n\"\n",
    )
    .unwrap();
    let project = dir.join("trueup.toml");
    peak_kib(&project, &["check", "--format", "json"]);

    for args in [
        &["show", "last", "--format", "json"][..],
        &["baseline", "accept"],
    ] {
        let peak = peak_kib(&project, args);
        assert!(
            peak < BOUND_KIB,
            "{args:?} peaked at {peak} KiB over {FINDINGS} findings (bound {BOUND_KIB} KiB)"
        );
    }
    let baseline = std::fs::read_to_string(dir.join("trueup.baseline.jsonl")).unwrap();
    assert_eq!(baseline.lines().count(), FINDINGS as usize);
}
