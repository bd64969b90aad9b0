//! Memory that does not grow with findings: the commands that read a whole recorded run
//! (`show --format json`, `baseline accept`, `diff`) stream it. Peak RSS of the real binary,
//! measured by GNU time (`/usr/bin/time -f %M`, from wait4): a size, not a timing.

use std::path::Path;
use std::process::Command;

/// Findings in the recorded run: enough that collecting them (about 2.4 KiB each before
/// streaming) would pass the bound by far, and that `diff` reads each run's fingerprints in
/// two slices (65,536 a slice), few enough for a debug build to be quick.
const FINDINGS: u32 = 70_000;
/// The bound on each command's peak RSS, in KiB. Collecting `show` and `baseline accept`
/// peaked at ~145 MiB here; streaming, they stay under 50 MiB.
const BOUND_KIB: u64 = 100 * 1024;
/// The bound on `diff`'s peak RSS, in KiB, when every finding of both runs changed.
/// Holding the new and resolved keys, `diff --format json` peaked at 139 MiB at 60k
/// findings; streaming them, about 40 MiB at 70k.
const DIFF_BOUND_KIB: u64 = 60 * 1024;

/// Runs trueup with `args` and returns its peak RSS in KiB; its output goes to `out.txt`
/// beside the project.
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
        .stdout(std::fs::File::create(project.with_file_name("out.txt")).unwrap())
        .status()
        .unwrap();
    assert!(status.code().is_some_and(|c| c <= 1), "{args:?}: {status}");
    let text = std::fs::read_to_string(&report).unwrap();
    text.lines()
        .last()
        .and_then(|line| line.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak RSS in {text:?}"))
}

/// Sets the bounds the rule's rows run between, in the project's table.
fn bounds(dir: &Path, lo: u32, hi: u32) {
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
}

/// A project in `dir` whose one rule reports ids 1 to [`FINDINGS`], checked and recorded
/// once; returns its `trueup.toml`.
fn large_run(dir: &Path) -> std::path::PathBuf {
    std::fs::create_dir(dir.join("rules")).unwrap();
    // The rows come from the query itself, between the bounds a table holds.
    bounds(dir, 1, FINDINGS);
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
    project
}

#[test]
fn reading_a_large_run_takes_bounded_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let project = large_run(dir);
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

#[test]
fn diffing_two_large_runs_takes_bounded_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let project = large_run(tmp.path());
    // Every key changes: each finding of the first run is resolved, each of the second new.
    bounds(tmp.path(), FINDINGS + 1, 2 * FINDINGS);
    peak_kib(&project, &["check", "--format", "json"]);
    let out = project.with_file_name("out.txt");
    for (args, bound) in [
        (&["diff", "--format", "json"][..], DIFF_BOUND_KIB),
        (&["diff"], DIFF_BOUND_KIB),
        (&["diff", "--format", "markdown"], DIFF_BOUND_KIB),
    ] {
        let peak = peak_kib(&project, args);
        eprintln!("{args:?}: peak RSS {peak} KiB");
        assert!(
            peak < bound,
            "{args:?} peaked at {peak} KiB over {FINDINGS} new and {FINDINGS} resolved findings (bound {bound} KiB)"
        );
        let text = std::fs::read_to_string(&out).unwrap();
        let counts = format!("{FINDINGS} new · {FINDINGS} resolved · 0 persisting");
        match args.get(2) {
            Some(&"json") => {
                let diff: serde_json::Value = serde_json::from_str(&text).unwrap();
                assert_eq!(
                    (&diff["new"], &diff["resolved"], &diff["persisting"]),
                    (&FINDINGS.into(), &FINDINGS.into(), &0.into())
                );
                let rule = &diff["rules"][0];
                // In the order the run found them: the order the query returned.
                let ids = |side: &str| -> Vec<u64> {
                    rule[side]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|k| k["key"]["id"].as_u64().unwrap())
                        .collect()
                };
                let all = u64::from(FINDINGS);
                assert!(ids("resolved").into_iter().eq(1..=all));
                assert!(ids("new").into_iter().eq(all + 1..=2 * all));
            }
            Some(_) => assert!(text.contains(&format!("**{FINDINGS}** new")), "{text}"),
            None => assert!(text.contains(&counts), "{text}"),
        }
    }
}
