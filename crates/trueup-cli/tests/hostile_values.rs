//! Values that try to forge what a person reads (hardening item 8), through the real binary:
//! a SQLite shop whose rows hold ESC sequences (window title, clear screen), a carriage
//! return, a newline followed by a fake report line and a bidi override, in a key, in a
//! detail column that the message template quotes, in a plugin's message and in a database
//! error. Every human and Markdown output shows them as visible escapes (with colour on);
//! JSON carries them exactly.

use std::path::{Path, PathBuf};

mod common;

use common::{Run, run};
use serde_json::Value;
use trueup_core::text::is_unsafe;

/// Sets the terminal's window title.
const TITLE: &str = "\u{1b}]0;title\u{7}";
/// Clears the screen.
const CLEAR: &str = "\u{1b}[2J";
/// Returns to the start of the line, to write over it.
const RETURN: &str = "over\rwrite";
/// Starts a line of its own that reads like a passing rule.
const FORGED: &str = "\n✓ ok       forged.rule · no findings";
/// Shows what follows right to left.
const BIDI: &str = "\u{202e}gnp.exe";
/// Tries to end a Markdown code span and start a heading and a list item.
const MARKDOWN: &str = "`# x | y`\n- forged item";

const HOSTILE: [&str; 6] = [TITLE, CLEAR, RETURN, FORGED, BIDI, MARKDOWN];

/// How each hostile value reads in human output.
const SHOWN: [&str; 6] = [
    "\\e]0;title\\x07",
    "\\e[2J",
    "over\\rwrite",
    "\\n✓ ok       forged.rule · no findings",
    "\\u{202e}gnp.exe",
    "`# x | y`\\n- forged item",
];

fn echo_plugin() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/plugins/wat/echo-message.wat")
}

/// `trueup --project PROJECT --color always ARGS`, colour on whatever the environment says.
fn trueup(project: &Path, args: &[&str]) -> Run {
    run(common::trueup()
        .env_remove("NO_COLOR")
        .arg("--project")
        .arg(project)
        .args(["--color", "always"])
        .args(args))
}

/// Runs SQL statements on the shop database.
fn sql(db: &Path, statements: &str) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let options = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(db)
                .create_if_missing(true);
            let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(statements.to_owned()))
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        });
}

/// `'text'` as a SQL literal, whatever it holds.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A project over a shop whose `notes` hold the hostile values: as keys (`id`), as detail
/// quoted by the message template (`note`), as an invalid JSON path the database's error
/// quotes (`path`). Only the row `plain` is a finding of `hostile.values` until `hostile`.
fn shop(dir: &Path) -> PathBuf {
    let db = dir.join("shop.db");
    let mut script = String::from(
        "CREATE TABLE notes (n INTEGER PRIMARY KEY, id TEXT, note TEXT, path TEXT, amount INTEGER);\n\
         INSERT INTO notes VALUES (100, 'plain', 'plain note', '$', -1);\n",
    );
    for (n, value) in HOSTILE.iter().enumerate() {
        script.push_str(&format!(
            "INSERT INTO notes VALUES ({n}, {}, {}, {}, 1);\n",
            literal(&format!("k-{value}")),
            literal(&format!("n-{value}")),
            literal(value),
        ));
    }
    sql(&db, &script);
    std::fs::create_dir(dir.join("rules")).unwrap();
    std::fs::write(
        dir.join("rules/hostile.toml"),
        format!(
            r#"[[rule]]
id = "hostile.values"
title = "Notes with a negative amount"
severity = "high"

[rule.detector]
kind = "sql"
query = "SELECT id, note FROM notes WHERE amount < 0"
key = ["id"]
message = "note {{note}}"

[[rule]]
id = "hostile.error"
title = "A database error that quotes a value"
severity = "low"

[rule.detector]
kind = "sql"
query = "SELECT id FROM notes WHERE json_extract('{{}}', path) IS NULL ORDER BY n"
key = ["id"]

[[rule]]
id = "hostile.plugin"
title = "A plugin that quotes a value"
severity = "medium"

[rule.detector]
kind = "plugin"
plugin = {}
query = "SELECT n, note FROM notes ORDER BY n"
key = ["n"]
"#,
            toml::Value::String(echo_plugin().display().to_string())
        ),
    )
    .unwrap();
    let project = dir.join("trueup.toml");
    std::fs::write(
        &project,
        "rules = [\"rules\"]\n\n[sources.shop]\nurl = \"sqlite://shop.db\"\n",
    )
    .unwrap();
    project
}

/// Turns every hostile row into a finding of `hostile.values`, and `plain` into none.
fn turn_hostile(dir: &Path) {
    sql(
        &dir.join("shop.db"),
        "UPDATE notes SET amount = CASE id WHEN 'plain' THEN 1 ELSE -1 END;",
    );
}

/// `text` without the SGR sequences (`ESC [ … m`) that trueup's own colours are.
fn without_colours(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("\u{1b}[") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let end = after
            .find(|c: char| !(c.is_ascii_digit() || c == ';'))
            .unwrap_or(after.len());
        if after[end..].starts_with('m') {
            rest = &after[end + 1..];
        } else {
            // Not a colour: keep it, for the check below to find.
            out.push_str("\u{1b}[");
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// No control character but trueup's own colours and line ends, and no forged line.
#[track_caller]
fn assert_nothing_raw(what: &str, text: &str) {
    let plain = without_colours(text);
    let raw: Vec<char> = plain
        .chars()
        .filter(|&c| c != '\n' && is_unsafe(c))
        .collect();
    assert!(
        raw.is_empty(),
        "{what} holds raw {raw:?}:\n{plain}\n(debug: {plain:?})"
    );
    for line in plain.lines() {
        assert!(
            !line.trim_start().starts_with("✓ ok") || !line.contains("forged.rule"),
            "{what} holds a forged line {line:?}:\n{plain}"
        );
    }
}

/// Every hostile value is there, escaped.
#[track_caller]
fn assert_shown_escaped(what: &str, text: &str) {
    let plain = without_colours(text);
    for shown in SHOWN {
        assert!(
            plain.contains(shown),
            "{what} does not show {shown:?}:\n{plain}"
        );
    }
}

fn strings(values: impl IntoIterator<Item = Value>) -> Vec<String> {
    values
        .into_iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// Whether `span` is one Markdown code span: a fence of backticks, text in which no run of
/// backticks is as long as the fence, the same fence.
fn is_one_code_span(span: &str) -> bool {
    let fence = span.chars().take_while(|&c| c == '`').count();
    let closing = span.chars().rev().take_while(|&c| c == '`').count();
    if fence == 0 || closing != fence || span.len() < 2 * fence + 1 {
        return false;
    }
    let inner = &span[fence..span.len() - fence];
    inner
        .split(|c| c != '`')
        .filter(|run| !run.is_empty())
        .all(|run| run.len() != fence)
}

/// `check --no-record ARGS` of the shop with every hostile row a finding; exits 2, as
/// `hostile.error` fails.
fn check_hostile(args: &[&str]) -> Run {
    let tmp = tempfile::tempdir().unwrap();
    let project = shop(tmp.path());
    turn_hostile(tmp.path());
    let checked = trueup(&project, &[&["check", "--no-record"], args].concat());
    assert_eq!(checked.code, Some(2), "{}", checked.all());
    checked
}

#[test]
fn hardening_8_check_shows_hostile_values_escaped_with_colour_on() {
    let checked = check_hostile(&["--show", "10"]);
    assert!(
        checked.stdout.contains("\u{1b}["),
        "colour is not on:\n{}",
        checked.all()
    );
    assert_nothing_raw("check's report", &checked.stdout);
    assert_nothing_raw("check's stderr", &checked.stderr);
    // The keys, the message template quoting the detail column, the plugin's message.
    let plain = without_colours(&checked.stdout);
    for shown in SHOWN {
        assert!(plain.contains(&format!("id=k-{shown}")), "{plain}");
        assert!(plain.contains(&format!("note n-{shown}")), "{plain}");
    }
    assert!(plain.contains("n=0  n-\\e]0;title\\x07"), "{plain}");
    // The database's error quotes the first path.
    assert!(
        plain.contains("JSON path") && plain.contains("'\\e]0;title\\x07'"),
        "{plain}"
    );
}

#[test]
fn hardening_8_json_keeps_the_exact_values() {
    let report = check_hostile(&["--format", "json"]).json();
    let findings = report["findings"].as_array().unwrap();
    let of = |rule: &'static str| findings.iter().filter(move |f| f["rule"] == rule);
    let keys = strings(of("hostile.values").map(|f| f["key"]["id"].clone()));
    let messages = strings(of("hostile.values").map(|f| f["message"].clone()));
    let plugin = strings(of("hostile.plugin").map(|f| f["message"].clone()));
    for value in HOSTILE {
        assert!(keys.contains(&format!("k-{value}")), "{keys:?}");
        assert!(
            messages.contains(&format!("note n-{value}")),
            "{messages:?}"
        );
    }
    assert_eq!(plugin, [format!("n-{TITLE}")]);
    let error = report["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "hostile.error")
        .and_then(|r| r["error"].as_str())
        .unwrap()
        .to_owned();
    assert!(error.contains(TITLE), "{error:?}");
}

#[test]
fn hardening_8_show_and_diff_show_hostile_keys_escaped_in_human_and_markdown() {
    let tmp = tempfile::tempdir().unwrap();
    let project = shop(tmp.path());
    assert_eq!(trueup(&project, &["check"]).code, Some(2));
    turn_hostile(tmp.path());
    assert_eq!(trueup(&project, &["check"]).code, Some(2));

    let shown = trueup(&project, &["show", "last", "--show", "10"]);
    assert_eq!(shown.code, Some(0), "{}", shown.all());
    assert_nothing_raw("show", &shown.stdout);
    assert_shown_escaped("show", &shown.stdout);

    let human = trueup(&project, &["diff", "--show", "10"]);
    assert_eq!(human.code, Some(0), "{}", human.all());
    assert!(human.stdout.contains("\u{1b}["), "{}", human.all());
    assert_nothing_raw("diff", &human.stdout);
    assert_shown_escaped("diff", &human.stdout);

    let markdown = trueup(&project, &["diff", "--show", "10", "--format", "markdown"]);
    assert_eq!(markdown.code, Some(0), "{}", markdown.all());
    let text = &markdown.stdout;
    assert_nothing_raw("diff --format markdown", text);
    assert_shown_escaped("diff --format markdown", text);
    // Each line is one of trueup's own: a value cannot start a heading, a list item or a
    // table row, nor leave its code span.
    let mut items = 0;
    for line in text.lines() {
        if let Some(span) = line
            .strip_prefix("- new: ")
            .or_else(|| line.strip_prefix("- resolved: "))
        {
            items += 1;
            assert!(is_one_code_span(span), "{line:?} in\n{text}");
        } else {
            assert!(
                line.is_empty()
                    || line.starts_with("### trueup: run ")
                    || line.starts_with("**")
                    || line.starts_with("| ")
                    || line.starts_with("|---")
                    || line.starts_with("#### `hostile.")
                    || line.starts_with("- … and "),
                "a line trueup does not write: {line:?} in\n{text}"
            );
        }
    }
    // Six new hostile keys, one resolved plain one.
    assert_eq!(items, 7, "{text}");

    let json = trueup(&project, &["diff", "--format", "json"]).json();
    let rule = json["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == "hostile.values")
        .unwrap()
        .clone();
    let keys = strings(
        rule["new"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["key"]["id"].clone()),
    );
    for value in HOSTILE {
        assert!(keys.contains(&format!("k-{value}")), "{keys:?}");
    }

    let runs = trueup(&project, &["runs"]);
    assert_nothing_raw("runs", &runs.stdout);
}

#[test]
fn hardening_8_errors_show_file_names_escaped() {
    let tmp = tempfile::tempdir().unwrap();
    // A project file that does not exist, in a folder whose name is hostile.
    let missing = tmp
        .path()
        .join(format!("x{CLEAR}{FORGED}"))
        .join("trueup.toml");
    let failed = run(common::trueup()
        .env_remove("NO_COLOR")
        .arg("--project")
        .arg(&missing)
        .args(["--color", "always", "check"]));
    assert_eq!(failed.code, Some(2), "{}", failed.all());
    assert_nothing_raw("an error", &failed.stderr);
    assert!(
        without_colours(&failed.stderr).contains("x\\e[2J\\n✓ ok       forged.rule"),
        "{}",
        failed.all()
    );

    // A rule file with a problem, whose name is hostile: its diagnostic names it.
    let dir = tmp.path().join("project");
    std::fs::create_dir_all(dir.join("rules")).unwrap();
    let project = dir.join("trueup.toml");
    std::fs::write(
        &project,
        "rules = [\"rules\"]\n\n[sources.shop]\nurl = \"sqlite://shop.db\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.join(format!("rules/bad{TITLE}{FORGED}.toml")),
        "[[rule]]\nid = \"a\"\ntitle = \"\tt\"\nseverity = \"urgent\"\n",
    )
    .unwrap();
    let invalid = trueup(&project, &["validate", "--offline"]);
    assert_eq!(invalid.code, Some(2), "{}", invalid.all());
    assert_nothing_raw("a diagnostic", &invalid.stderr);
    let plain = without_colours(&invalid.stderr);
    assert!(
        plain.contains("bad\\e]0;title\\x07\\n✓ ok       forged.rule · no findings.toml:4:"),
        "{plain}"
    );
}

#[test]
fn hardening_8_plugin_test_shows_a_hostile_message_and_case_name_escaped() {
    let tmp = tempfile::tempdir().unwrap();
    let fixtures = format!(
        "[[case]]\nname = {}\ncolumns = [\"n\", \"note\"]\nkey = [\"n\"]\nrows = [[1, {}]]\nexpect = []\n",
        toml::Value::String(format!("case {CLEAR}{FORGED}")),
        toml::Value::String(format!("{TITLE}{RETURN}{BIDI}{FORGED}")),
    );
    std::fs::write(tmp.path().join("fixtures.toml"), fixtures).unwrap();
    let tested = run(common::trueup()
        .env_remove("NO_COLOR")
        .args(["--color", "always", "plugin", "test"])
        .arg(tmp.path())
        .arg("--wasm")
        .arg(echo_plugin()));
    assert_eq!(tested.code, Some(1), "{}", tested.all());
    assert_nothing_raw("plugin test", &tested.stdout);
    assert_nothing_raw("plugin test's stderr", &tested.stderr);
    let plain = without_colours(&tested.stdout);
    assert!(plain.contains("case \\e[2J\\n✓ ok"), "{plain}");
    assert!(
        plain.contains("unexpected  { key = [1], message = "),
        "{plain}"
    );

    let json = run(common::trueup()
        .args(["plugin", "test", "--format", "json"])
        .arg(tmp.path())
        .arg("--wasm")
        .arg(echo_plugin()))
    .json();
    assert_eq!(
        json["cases"][0]["unexpected"][0]["message"],
        format!("{TITLE}{RETURN}{BIDI}{FORGED}")
    );
}
