//! Reports through the real binary: `report` of a recorded run in every format, `check
//! --format junit|markdown --output FILE`, the JUnit XML validated against the Apache Ant
//! schema (tests/junit/JUnit.xsd) by xmllint, HTML that references nothing outside itself,
//! hostile values, output files written whole or not at all, and memory that does not grow
//! with the findings.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::in_project as trueup;

/// Timestamps and durations vary from run to run.
const FILTERS: [(&str, &str); 4] = [
    (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ?", "[TIME]"),
    (r"\b\d+ ms\b", "[DURATION]"),
    (r#"time="\d+\.\d{3}""#, r#"time="[SECONDS]""#),
    (r"\b\d+\.\d+\.\d+\b", "[VERSION]"),
];

fn demo(dir: &Path) -> PathBuf {
    let status = Command::new(env!("CARGO_BIN_EXE_trueup"))
        .args(["--quiet", "demo", "--no-check", "--dir"])
        .arg(dir)
        .status()
        .unwrap();
    assert!(status.success());
    dir.join("trueup.toml")
}

fn sql(database: &Path, statement: &str) {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let url = format!("sqlite://{}?mode=rwc", database.display());
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_owned()))
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    });
}

/// Three runs of the demo: as planted, then one orphan fixed and one order total broken,
/// then the same again.
fn demo_with_history(dir: &Path) -> PathBuf {
    let project = demo(dir);
    assert_eq!(trueup(&project, &["--quiet", "check"]).0, Some(1));
    sql(
        &dir.join("shop.db"),
        "UPDATE orders SET customer_id = 1 WHERE id = 698; \
         UPDATE orders SET total_amount = total_amount + 1 WHERE id = 10;",
    );
    assert_eq!(trueup(&project, &["--quiet", "check"]).0, Some(1));
    assert_eq!(trueup(&project, &["--quiet", "check"]).0, Some(1));
    project
}

/// Validates `xml` against the JUnit schema with xmllint; `None` when xmllint is missing
/// and `TRUEUP_REQUIRE_XMLLINT` is unset (scripts/test sets it and installs libxml2-utils).
fn validate_junit(xml: &str) -> Option<()> {
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/junit/JUnit.xsd");
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), xml).unwrap();
    let output = match Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(&schema)
        .arg(file.path())
        .output()
    {
        Ok(output) => output,
        Err(err) if std::env::var_os("TRUEUP_REQUIRE_XMLLINT").is_some() => {
            panic!("TRUEUP_REQUIRE_XMLLINT is set but xmllint cannot run: {err}")
        }
        Err(_) => {
            eprintln!(
                "skipped: the JUnit schema check needs xmllint (apt-get install libxml2-utils)"
            );
            return None;
        }
    };
    assert!(
        output.status.success(),
        "the JUnit XML does not validate against {}:\n{}\n{xml}",
        schema.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    Some(())
}

/// Everything in `html` that would reach outside the page: a scheme, a protocol-relative
/// or absolute reference, a resource attribute, a CSS URL or import, a link that does not
/// stay on the page.
fn external_references(html: &str) -> Vec<String> {
    let lower = html.to_ascii_lowercase();
    let mut found = Vec::new();
    for needle in [
        "http:", "https:", "//", "src=", "url(", "@import", "<link", "<iframe", "<object", "<embed",
    ] {
        for (at, _) in lower.match_indices(needle) {
            let context = &html[at.saturating_sub(40)..(at + 40).min(html.len())];
            found.push(format!("{needle} in …{context}…"));
        }
    }
    for (at, _) in lower.match_indices("href=\"") {
        if !lower[at + 6..].starts_with('#') {
            found.push(format!(
                "a link out of the page: …{}…",
                &html[at..(at + 60).min(html.len())]
            ));
        }
    }
    found
}

#[test]
fn report_renders_a_recorded_run_in_every_format() {
    let tmp = tempfile::tempdir().unwrap();
    let project = demo_with_history(&tmp.path().join("demo"));

    let (code, markdown, stderr) = trueup(&project, &["report", "last~1", "--show", "2"]);
    assert_eq!(code, Some(0), "{stderr}");
    let (code, junit, _) = trueup(
        &project,
        &["report", "last~1", "--format", "junit", "--show", "2"],
    );
    assert_eq!(code, Some(0));
    insta::with_settings!({ filters => FILTERS.to_vec() }, {
        insta::assert_snapshot!("report_markdown", markdown);
        insta::assert_snapshot!("report_junit", junit);
    });
    validate_junit(&junit);

    let (code, json, _) = trueup(&project, &["report", "--format", "json", "--trend", "3"]);
    assert_eq!(code, Some(0));
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["run"]["id"], 3);
    assert_eq!(json["compared_with"], 2);
    let runs: Vec<i64> = json["trend"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(runs, [1, 2, 3], "oldest first, this run last");
    let orphans = json["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "ecommerce.orphaned-orders")
        .unwrap();
    assert_eq!(orphans["history"], serde_json::json!([3, 2, 2]));
    assert_eq!(orphans["owner"], "data-team");
    assert!(
        orphans["runbook"]
            .as_str()
            .unwrap()
            .starts_with("runbooks/")
    );
    assert_eq!(orphans["title"], "Orders whose customer does not exist");

    // Run 2 against run 1: the fixed orphan is resolved, the broken total new.
    let (_, json, _) = trueup(&project, &["report", "2", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        (
            json["totals"]["new"].as_u64(),
            json["totals"]["resolved"].as_u64()
        ),
        (Some(2), Some(1))
    );

    let html = tmp.path().join("report.html");
    let (code, stdout, stderr) = trueup(
        &project,
        &[
            "report",
            "--format",
            "html",
            "--output",
            html.to_str().unwrap(),
        ],
    );
    assert_eq!((code, stdout.as_str()), (Some(0), ""), "{stderr}");
    let html = std::fs::read_to_string(&html).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    assert!(
        html.contains("ecommerce.orphaned-orders") && html.contains("<svg"),
        "{html}"
    );
    assert_eq!(external_references(&html), Vec::<String>::new());

    let (code, _, stderr) = trueup(&project, &["report", "9"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("there is no run 9"), "{stderr}");
}

#[test]
fn check_writes_the_report_formats_and_exits_as_it_would() {
    let tmp = tempfile::tempdir().unwrap();
    let project = demo(&tmp.path().join("demo"));
    let junit = tmp.path().join("junit.xml");
    let (code, stdout, stderr) = trueup(
        &project,
        &[
            "check",
            "--format",
            "junit",
            "--output",
            junit.to_str().unwrap(),
        ],
    );
    assert_eq!((code, stdout.as_str()), (Some(1), ""), "{stderr}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains(
            "<failure message=\"3 critical findings: Orders whose customer does not exist\""
        ),
        "{xml}"
    );
    validate_junit(&xml);

    // Nothing at or above critical in the inventory rules: exit 0, as in human output.
    let (code, xml, _) = trueup(
        &project,
        &[
            "check",
            "--tag",
            "inventory",
            "--fail-on",
            "critical",
            "--format",
            "junit",
        ],
    );
    assert_eq!(code, Some(0));
    assert!(!xml.contains("<failure"), "{xml}");
    validate_junit(&xml);

    // A run not recorded is a report too.
    let (code, xml, _) = trueup(&project, &["check", "--no-record", "--format", "junit"]);
    assert_eq!(code, Some(1));
    assert!(xml.contains("<testsuite name=\"trueup check\""), "{xml}");
    validate_junit(&xml);

    // The live report and the report of the run it recorded say the same.
    let (code, live, _) = trueup(&project, &["check", "--format", "markdown"]);
    assert_eq!(code, Some(1));
    let (_, recorded, _) = trueup(&project, &["report", "--trend", "0", "--show", "5"]);
    assert_eq!(without_times(&live), without_times(&recorded));
    // Run 2 selected the inventory rules only: run 3 compares with run 1.
    assert!(
        live.contains("**0** new, **0** resolved since run 1"),
        "{live}"
    );

    // Human and JSON go to the file too, without colour.
    let human = tmp.path().join("check.txt");
    let (code, stdout, _) = trueup(
        &project,
        &["--color", "always", "check", "-o", human.to_str().unwrap()],
    );
    assert_eq!((code, stdout.as_str()), (Some(1), ""));
    let text = std::fs::read_to_string(&human).unwrap();
    assert!(
        text.contains("ecommerce.orphaned-orders") && !text.contains('\u{1b}'),
        "{text}"
    );
}

/// `text` with each `YYYY-MM-DDTHH:MM:SSZ` written `[TIME]`: the live collector and the
/// store take their times a moment apart.
fn without_times(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while at < bytes.len() {
        let stamp = bytes.get(at..at + 20).is_some_and(|s| {
            s.iter().enumerate().all(|(i, &b)| match i {
                4 | 7 => b == b'-',
                10 => b == b'T',
                13 | 16 => b == b':',
                19 => b == b'Z',
                _ => b.is_ascii_digit(),
            })
        });
        if stamp {
            out.push_str("[TIME]");
            at += 20;
        } else {
            let c = text[at..].chars().next().unwrap();
            out.push(c);
            at += c.len_utf8();
        }
    }
    out
}

/// A rule whose keys and messages carry markup, control characters and characters XML
/// cannot hold.
const HOSTILE_RULE: &str = r#"
[[rule]]
id = "hostile.values"
title = "Values that <b>try</b> to escape & \"quote\""
severity = "high"
owner = "<script>alert(1)</script>"
runbook = "javascript:alert(1)"
[rule.detector]
kind = "sql"
key = ["id"]
message = "{note}"
query = "SELECT id, note FROM hostile"
"#;

#[test]
fn hostile_values_stay_data_in_every_format() {
    let tmp = tempfile::tempdir().unwrap();
    let database = tmp.path().join("data.db");
    sql(
        &database,
        "CREATE TABLE hostile (id TEXT PRIMARY KEY, note TEXT); \
         INSERT INTO hostile VALUES \
           ('<script>alert(1)</script>', ']]></failure><x a=\"' || char(27) || '[2J'), \
           ('a' || char(10) || 'b' || char(0) || 'c', 'bell' || char(7) || char(65534) || char(8238) || 'rtl'), \
           ('</textarea>''\"&amp;', '`| md | table |` ## heading');",
    );
    let dir = common::project("sqlite://data.db", &[("hostile.toml", HOSTILE_RULE)]);
    std::fs::rename(&database, dir.path().join("data.db")).unwrap();
    let project = dir.path().join("trueup.toml");
    assert_eq!(trueup(&project, &["--quiet", "check"]).0, Some(1));

    let (_, html, _) = trueup(&project, &["report", "--format", "html"]);
    assert!(!html.contains("<script>alert"), "{html}");
    assert!(!html.contains("<b>try"), "{html}");
    assert!(!html.contains("href=\"javascript"), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert_eq!(external_references(&html), Vec::<String>::new());
    for (format, text) in [
        ("html", html),
        ("markdown", trueup(&project, &["report"]).1),
        (
            "junit",
            trueup(&project, &["report", "--format", "junit"]).1,
        ),
    ] {
        // XML cannot hold U+FFFE; to Markdown it is a character like another.
        let raw: Vec<char> = text
            .chars()
            .filter(|&c| {
                (c.is_control() && c != '\n')
                    || c == '\u{202e}'
                    || (c == '\u{fffe}' && format != "markdown")
            })
            .collect();
        assert!(raw.is_empty(), "{format} holds {raw:?}:\n{text}");
    }
    let (_, junit, _) = trueup(&project, &["report", "--format", "junit"]);
    assert!(!junit.contains("]]></failure>"), "{junit}");
    validate_junit(&junit);
    let (_, json, _) = trueup(&project, &["report", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let keys: Vec<&str> = json["rules"][0]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["key"]["id"].as_str().unwrap())
        .collect();
    assert!(
        keys.contains(&"a\nb\0c"),
        "JSON carries keys exactly: {keys:?}"
    );
}

#[cfg(unix)]
#[test]
fn output_files_are_written_whole_or_not_at_all() {
    let tmp = tempfile::tempdir().unwrap();
    let project = demo(&tmp.path().join("demo"));
    assert_eq!(trueup(&project, &["--quiet", "check"]).0, Some(1));

    // A FIFO would block the open, a device would take the report.
    let fifo = tmp.path().join("fifo");
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .unwrap();
    for args in [
        vec!["report", "--output"],
        vec!["check", "--format", "junit", "--output"],
    ] {
        let mut args = args.clone();
        args.push(fifo.to_str().unwrap());
        let (code, _, stderr) = trueup(&project, &args);
        assert_eq!(code, Some(2), "{args:?}");
        assert!(
            stderr.contains("it is a FIFO (named pipe), not a file a report can be written to"),
            "{stderr}"
        );
    }
    let (code, _, stderr) = trueup(&project, &["report", "-o", "/dev/null"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("it is a device"), "{stderr}");

    // A check that fails before it runs leaves the last report as it was, and no
    // temporary file beside it.
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let file = out.join("check.md");
    std::fs::write(&file, "the last report\n").unwrap();
    let (code, _, stderr) = trueup(
        &project,
        &[
            "check",
            "--rule",
            "no.such-rule",
            "--format",
            "markdown",
            "-o",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "the last report\n");
    let names = |dir: &Path| -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    assert_eq!(names(&out), ["check.md"]);

    // A report replaces it, keeping its permissions.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
    let (code, _, _) = trueup(&project, &["report", "-o", file.to_str().unwrap()]);
    assert_eq!(code, Some(0));
    assert!(
        std::fs::read_to_string(&file)
            .unwrap()
            .starts_with("## trueup report: run 1")
    );
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o640
    );
    assert_eq!(names(&out), ["check.md"]);
}

/// Findings of the run the memory test reports: collecting them whole would pass the bound
/// by far (about 2.4 KiB each), few enough for a debug build to be quick.
const MANY: u32 = 70_000;
/// The bound on the peak RSS of `report`, in KiB; streamed, it stays near what any trueup
/// command takes (~30 MiB).
const REPORT_BOUND_KIB: u64 = 80 * 1024;

#[test]
fn reports_of_many_findings_stay_small_in_memory_and_on_disk() {
    let time = Path::new("/usr/bin/time");
    assert!(
        time.exists(),
        "this test measures memory with GNU time: apt-get install time"
    );
    let rule = format!(
        "[[rule]]\nid = \"many\"\ntitle = \"One finding per row\"\nseverity = \"low\"\n\
         [rule.detector]\nkind = \"sql\"\nkey = [\"id\"]\n\
         query = \"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {MANY}) \
         SELECT i AS id, 'a detail that is not short, for row ' || i AS note FROM n\"\n"
    );
    let dir = common::project("sqlite://data.db", &[("many.toml", &rule)]);
    // The rows come from the query itself: the database only has to exist.
    sql(
        &dir.path().join("data.db"),
        "CREATE TABLE empty (id INTEGER)",
    );
    let project = dir.path().join("trueup.toml");
    for _ in 0..2 {
        assert_eq!(
            trueup(&project, &["--quiet", "check", "--format", "json"]).0,
            Some(1)
        );
    }
    for format in ["html", "markdown", "junit", "json"] {
        let out = dir.path().join(format!("report.{format}"));
        let figures = dir.path().join("time.txt");
        let status = Command::new(time)
            .args(["-f", "%M", "-o"])
            .arg(&figures)
            .arg(env!("CARGO_BIN_EXE_trueup"))
            .arg("--project")
            .arg(&project)
            .args(["report", "--format", format, "--output"])
            .arg(&out)
            .status()
            .unwrap();
        assert!(status.success(), "{format}: {status}");
        let text = std::fs::read_to_string(&figures).unwrap();
        let kib: u64 = text
            .lines()
            .last()
            .and_then(|l| l.trim().parse().ok())
            .unwrap();
        assert!(
            kib < REPORT_BOUND_KIB,
            "report --format {format} peaked at {kib} KiB"
        );
        let size = std::fs::metadata(&out).unwrap().len();
        assert!(size < 64 * 1024, "report --format {format} is {size} bytes");
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(text.contains("69990 more") || format == "json", "{text}");
    }
}
