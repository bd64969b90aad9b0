//! Plugins through the real engine: the contract (typed values in, row and keyed findings
//! out) on SQLite and PostgreSQL, and the sandbox: every way a plugin can misbehave fails
//! its own rule, says how, and leaves the other rules' results alone.

mod support;
#[path = "../../../tests/support/wasm.rs"]
mod wasm;

use std::path::Path;

use support::{TestDb, TestProject, run_project};

/// A plugin rule over `query`.
fn plugin_rule(id: &str, plugin: &Path, query: &str, extra: &str) -> String {
    format!(
        "[[rule]]\nid = \"{id}\"\ntitle = \"{id}\"\nseverity = \"low\"\n\n[rule.detector]\n\
         kind = \"plugin\"\nplugin = \"{}\"\nquery = \"{query}\"\nkey = [\"id\"]\n{extra}\n",
        plugin.display()
    )
}

const ROWS: &str = "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT); \
    INSERT INTO t (id, name) SELECT n, 'name ' || n FROM (WITH RECURSIVE c(n) AS \
    (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 3000) SELECT n FROM c) AS s;";

async fn typed_values_reach_the_plugin_and_findings_come_back(db: TestDb) {
    let typed = match db.backend {
        "sqlite" => {
            "CREATE TABLE v (id INTEGER PRIMARY KEY, i INTEGER, f REAL, d TEXT, t TEXT, b INTEGER, x BLOB, n TEXT); \
             INSERT INTO v VALUES (1, -7, 2.5, '12.50', 'héllo', 1, x'00ff', NULL);"
        }
        _ => {
            "CREATE TABLE v (id BIGINT PRIMARY KEY, i BIGINT, f DOUBLE PRECISION, d NUMERIC(10,2), t TEXT, b BOOLEAN, x BYTEA, n TEXT); \
             INSERT INTO v VALUES (1, -7, 2.5, 12.50, 'héllo', true, '\\x00ff', NULL);"
        }
    };
    db.execute(ROWS).await;
    db.execute(typed).await;
    let every = wasm::plugin("tests/plugins", "every_nth");
    let rules = [
        plugin_rule(
            "t.every-1000th",
            &every,
            "SELECT id, name FROM t ORDER BY id",
            "config = { n = 1000, first-again = true }",
        ),
        plugin_rule(
            "v.echo",
            &every,
            "SELECT id, i, f, d, t, b, x, n FROM v",
            "config = { n = 1, echo = true }",
        ),
    ]
    .join("\n");
    let project = TestProject::new(&db.url, &[("plugin.toml", &rules)]);
    let result = run_project(&project.path()).await;
    for outcome in &result.outcomes {
        assert_eq!(outcome.error, None, "{}: {}", db.backend, outcome.rule.id);
    }
    assert_eq!(
        result.keys("t.every-1000th"),
        ["id=1", "id=1000", "id=2000", "id=3000"],
        "{}: every 1000th row, and the first one again from finish()",
        db.backend
    );
    let echo = result
        .findings
        .iter()
        .position(|(rule, _, _)| rule == "v.echo")
        .expect("the echo finding");
    let bool_value = match db.backend {
        "sqlite" => "1",
        _ => "true",
    };
    assert_eq!(
        result.details[echo],
        format!(
            r#"{{"seen":1,"echo_id":1,"echo_i":-7,"echo_f":2.5,"echo_d":"12.50","echo_t":"héllo","echo_b":{bool_value},"echo_x":"\\x00ff","echo_n":null}}"#
        ),
        "{}",
        db.backend
    );
    assert_eq!(result.findings[echo].2, "row 1");
}

#[tokio::test]
async fn typed_values_reach_the_plugin_and_findings_come_back_on_sqlite() {
    typed_values_reach_the_plugin_and_findings_come_back(TestDb::sqlite()).await;
}

#[tokio::test]
async fn typed_values_reach_the_plugin_and_findings_come_back_on_postgres() {
    if let Some(db) = TestDb::postgres().await {
        typed_values_reach_the_plugin_and_findings_come_back(db).await;
    }
}

#[tokio::test]
async fn a_misbehaving_plugin_fails_its_own_rule_and_the_run_goes_on() {
    let db = TestDb::sqlite();
    db.execute(ROWS).await;
    let hostile = wasm::plugin("tests/plugins", "hostile");
    let every = wasm::plugin("tests/plugins", "every_nth");
    let dir = tempfile::tempdir().unwrap();
    let wat = |name: &str| wasm::repo_root().join("tests/plugins/wat").join(name);
    let not_a_module = dir.path().join("not-a-module.wasm");
    std::fs::write(&not_a_module, b"this is not WebAssembly").unwrap();
    let query = "SELECT id, name FROM t";
    let mode = |mode: &str, limits: &str| format!("config = {{ mode = \"{mode}\" }}\n{limits}");
    let rules = [
        plugin_rule(
            "loops",
            &hostile,
            query,
            &mode("loop", "limits = { time = \"1s\" }"),
        ),
        plugin_rule(
            "eats-memory",
            &hostile,
            query,
            &mode("memory", "limits = { memory = \"16MiB\" }"),
        ),
        plugin_rule("panics", &hostile, query, &mode("panic", "")),
        plugin_rule(
            "floods",
            &hostile,
            query,
            &mode("output", "limits = { output = \"1MiB\" }"),
        ),
        plugin_rule("opens-a-file", &hostile, query, &mode("file", "")),
        plugin_rule("names-no-row", &hostile, query, &mode("unkeyed", "")),
        plugin_rule(
            "bad-config",
            &hostile,
            query,
            "config = { mode = \"sulk\" }",
        ),
        plugin_rule("imports-wasi", &wat("wasi-reader.wat"), query, ""),
        plugin_rule("from-the-future", &wat("future-version.wat"), query, ""),
        plugin_rule("talks-garbage", &wat("garbage.wat"), query, ""),
        plugin_rule("bad-status", &wat("bad-status.wat"), query, ""),
        plugin_rule("stray-row", &wat("stray-row.wat"), query, ""),
        plugin_rule("wrong-key", &wat("wrong-key.wat"), query, ""),
        plugin_rule("two-memories", &wat("two-memories.wat"), query, ""),
        plugin_rule("not-a-module", &not_a_module, query, ""),
        plugin_rule("not-built", &dir.path().join("missing.wasm"), query, ""),
        plugin_rule("behaves", &every, query, "config = { n = 1000 }"),
        "[[rule]]\nid = \"sql-too\"\ntitle = \"sql\"\nseverity = \"low\"\n[rule.detector]\n\
         kind = \"sql\"\nquery = \"SELECT id FROM t WHERE id > 2998\"\nkey = [\"id\"]\n"
            .to_owned(),
    ]
    .join("\n");
    let project = TestProject::new(&db.url, &[("plugins.toml", &rules)]);
    let result = run_project(&project.path()).await;

    let expected = [
        (
            "loops",
            "plugin `hostile`: ran past its time limit of 1s and was stopped",
        ),
        (
            "eats-memory",
            "plugin `hostile`: went past its memory limit of 16MiB",
        ),
        ("panics", "plugin `hostile`: panicked: "),
        (
            "panics",
            "row 0 is more than I can take (at hostile/src/lib.rs:",
        ),
        (
            "floods",
            "plugin `hostile`: returned more than its output limit of 1MiB",
        ),
        ("opens-a-file", "panicked: "),
        ("opens-a-file", "reading /etc/passwd"),
        (
            "names-no-row",
            "finding(s) name no row: report a row's finding with Findings::of_row",
        ),
        (
            "bad-config",
            "plugin `hostile`: config: unknown variant `sulk`",
        ),
        (
            "imports-wasi",
            "imports `wasi_snapshot_preview1::path_open`, which trueup does not provide",
        ),
        (
            "from-the-future",
            "built for plugin interface version 99, but this trueup speaks version 1",
        ),
        (
            "talks-garbage",
            "plugin `garbage`: returned a reply outside its memory",
        ),
        (
            "bad-status",
            "plugin `bad-status`: returned a malformed reply: unknown reply status 7",
        ),
        (
            "stray-row",
            "plugin `stray-row`: returned a finding about row 999999 of a batch of 3000",
        ),
        (
            "wrong-key",
            "plugin `wrong-key`: returned a finding with 2 key value(s); the rule's key has 1 column(s)",
        ),
        (
            "two-memories",
            "two-memories.wat is not a valid WebAssembly module",
        ),
        (
            "not-a-module",
            "not-a-module.wasm is not a valid WebAssembly module",
        ),
        ("not-built", "missing.wasm does not exist: build the plugin"),
    ];
    for (rule, part) in expected {
        let error = result
            .error(rule)
            .unwrap_or_else(|| panic!("{rule} did not fail"));
        assert!(error.contains(part), "{rule}: `{part}` not in: {error}");
    }
    for rule in ["loops", "eats-memory", "panics", "floods", "opens-a-file"] {
        assert_eq!(
            result.keys(rule),
            Vec::<String>::new(),
            "{rule} reported findings"
        );
    }
    // Each failure is typed by its cause, for metrics and retries.
    for (rule, cause) in [
        ("loops", "plugin-out-of-time"),
        ("eats-memory", "plugin-out-of-memory"),
        ("panics", "plugin-trapped"),
        ("floods", "plugin-bad-reply"),
        ("bad-config", "plugin-refused"),
        ("talks-garbage", "plugin-bad-reply"),
        ("from-the-future", "plugin-load"),
        ("not-built", "plugin-load"),
    ] {
        assert_eq!(result.cause(rule), Some(cause), "{rule}");
    }
    assert_eq!(result.error("behaves"), None);
    assert_eq!(result.keys("behaves"), ["id=1000", "id=2000", "id=3000"]);
    assert_eq!(result.error("sql-too"), None);
    assert_eq!(result.keys("sql-too"), ["id=2999", "id=3000"]);
}

#[tokio::test]
async fn validate_points_at_the_config_a_plugin_refuses_and_at_a_plugin_that_does_not_load() {
    let every = wasm::plugin("tests/plugins", "every_nth");
    let rules = [
        plugin_rule("misspelt", &every, "SELECT id FROM t", "config = { m = 3 }"),
        plugin_rule("fine", &every, "SELECT id FROM t", "config = { n = 3 }"),
        plugin_rule(
            "missing",
            &every.with_file_name("nope.wasm"),
            "SELECT id FROM t",
            "",
        ),
    ]
    .join("\n");
    let project = TestProject::new("sqlite://unused.db", &[("rules.toml", &rules)]);
    let project = trueup_core::load::Project::load(&project.path()).expect("loads");
    let columns = Some(vec!["id".to_owned()]);
    let problem = |i: usize| {
        let rule = &project.rules[i];
        let columns = columns.clone();
        async move {
            trueup_core::validate::plugin(rule, columns)
                .await
                .map(|d| d.to_string())
        }
    };
    let misspelt = problem(0).await.expect("a problem");
    assert!(misspelt.contains("rules.toml:11:10"), "{misspelt}");
    assert!(
        misspelt.contains("config: unknown field `m`, expected one of `n`"),
        "{misspelt}"
    );
    assert_eq!(problem(1).await, None);
    let missing = problem(2).await.expect("a problem");
    assert!(missing.contains("nope.wasm does not exist"), "{missing}");
}

#[tokio::test]
async fn postgres_dates_and_timestamps_read_as_postgres_prints_them() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    db.execute(
        "CREATE TABLE ts (id INT PRIMARY KEY, t TIMESTAMP, tz TIMESTAMPTZ, d DATE); \
         INSERT INTO ts VALUES \
           (1, '2026-11-27 17:31:54.5', '2026-11-27 17:31:54+00', '2026-11-27'), \
           (2, '1999-12-31 23:59:59.999999', '1970-01-01 00:00:00+00', '1999-12-31'), \
           (3, 'infinity', '-infinity', 'infinity'), \
           (4, NULL, NULL, NULL);",
    )
    .await;
    let every = wasm::plugin("tests/plugins", "every_nth");
    let rule = format!(
        "[[rule]]\nid = \"ts.echo\"\ntitle = \"t\"\nseverity = \"low\"\n\
         postgres-settings = {{ timezone = \"UTC\" }}\n\n[rule.detector]\nkind = \"plugin\"\n\
         plugin = \"{}\"\nkey = [\"id\"]\nconfig = {{ n = 1, echo = true }}\n\
         query = \"SELECT id, t, t::text AS t_text, tz, tz::text AS tz_text, d, d::text AS d_text FROM ts ORDER BY id\"\n",
        every.display()
    );
    let project = TestProject::new(&db.url, &[("ts.toml", &rule)]);
    let result = run_project(&project.path()).await;
    assert_eq!(result.error("ts.echo"), None);
    assert_eq!(result.details.len(), 4);
    for detail in &result.details {
        let detail: serde_json::Value = serde_json::from_str(detail).unwrap();
        for column in ["t", "tz", "d"] {
            assert_eq!(
                detail[format!("echo_{column}")],
                detail[format!("echo_{column}_text")],
                "{column} in {detail}"
            );
        }
    }
}

#[tokio::test]
async fn offline_validation_checks_config_options_against_the_plugin_schema() {
    let every = wasm::plugin("tests/plugins", "every_nth");
    let rules = [
        plugin_rule(
            "misspelt",
            &every,
            "SELECT id FROM t",
            "config = { n = 3, frist-again = true }",
        ),
        plugin_rule(
            "missing",
            &every,
            "SELECT id FROM t",
            "config = { echo = true }",
        ),
        plugin_rule("fine", &every, "SELECT id FROM t", "config = { n = 3 }"),
    ]
    .join("\n");
    let project = TestProject::new("sqlite://unused.db", &[("rules.toml", &rules)]);
    let project = trueup_core::load::Project::load(&project.path()).expect("loads");
    let offline = |i: usize| trueup_core::validate::plugin(&project.rules[i], None);
    let misspelt = offline(0).await.expect("a problem");
    assert!(
        misspelt
            .to_string()
            .contains("no option `frist-again`; did you mean `first-again`?"),
        "{misspelt}"
    );
    // At the misspelt key, not at its value.
    let at = misspelt.location.clone().expect("a location");
    let text = &project.rules[0].file.text;
    let line = text.lines().nth(at.line - 1).expect("the line");
    assert_eq!(
        line.find("frist-again")
            .map(|i| line[..i].chars().count() + 1),
        Some(at.column),
        "{misspelt}"
    );
    let missing = offline(1).await.expect("a problem").to_string();
    assert!(missing.contains("needs the option `n`"), "{missing}");
    assert_eq!(offline(2).await.map(|d| d.to_string()), None);
}

/// A rule's `sha256` pins its `.wasm`: the file it names runs; another file is refused by
/// `validate` and by `check` at the `sha256` line, with both hashes, before any of it runs.
#[tokio::test]
async fn a_pinned_plugin_runs_only_when_its_file_has_the_pinned_hash() {
    let db = TestDb::sqlite();
    db.execute(ROWS).await;
    let every = wasm::plugin("tests/plugins", "every_nth");
    let actual = trueup_core::plugin::sha256_hex(&std::fs::read(&every).expect("read"));
    let wrong = "0".repeat(64);
    let rules = [
        plugin_rule(
            "pinned",
            &every,
            "SELECT id FROM t",
            &format!("sha256 = \"{actual}\"\nconfig = {{ n = 1000 }}"),
        ),
        plugin_rule(
            "other-build",
            &every,
            "SELECT id FROM t",
            &format!("sha256 = \"{wrong}\"\nconfig = {{ n = 1000 }}"),
        ),
    ]
    .join("\n");
    let project = TestProject::new(&db.url, &[("rules.toml", &rules)]);
    let loaded = trueup_core::load::Project::load(&project.path()).expect("loads");
    assert_eq!(
        trueup_core::validate::plugin(&loaded.rules[0], None)
            .await
            .map(|d| d.to_string()),
        None
    );
    let refused = trueup_core::validate::plugin(&loaded.rules[1], None)
        .await
        .expect("a problem")
        .to_string();
    // The second rule's `sha256` is line 24 of the file, its value at column 10.
    for part in [
        "rules.toml:24:10".to_owned(),
        every.display().to_string(),
        format!("its SHA-256 is {actual}"),
        format!("the rule's `sha256` is {wrong}"),
    ] {
        assert!(refused.contains(&part), "{part} not in {refused}");
    }

    let result = run_project(&project.path()).await;
    let outcome = |id: &str| {
        result
            .outcomes
            .iter()
            .find(|o| o.rule.id == id)
            .expect("the rule ran")
    };
    assert_eq!(outcome("pinned").error, None);
    assert_eq!(outcome("pinned").findings, 3);
    let error = outcome("other-build").error.clone().expect("refused");
    assert_eq!(error.cause(), "plugin-load");
    let message = error.to_string();
    assert!(message.contains("rules.toml:24:10: "), "{message}");
    assert!(
        message.contains(&format!("its SHA-256 is {actual}")),
        "{message}"
    );
}
