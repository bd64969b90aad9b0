//! `cache-consistency` rules through the real binary, against the Redis server
//! `scripts/test` starts: the `rules/cache/` pack on the demo shop; hostile cached values
//! and keys (control characters) shown escaped in human and Markdown output and exact in
//! JSON; a Redis password given as `${VAR}` in no output and not in the state store.

mod common;
#[path = "../../../tests/support/pg.rs"]
mod pg;
#[path = "../../../tests/support/redis.rs"]
mod redis;

use std::path::Path;

use common::{Run, run, trueup};
use redis::Client;

fn write_project(dir: &Path, sources: &[(&str, &str)], rules: &[(&str, &str)]) {
    let mut text = "rules = [\"rules\"]\n".to_owned();
    for (name, url) in sources {
        text.push_str(&format!("\n[sources.{name}]\nurl = \"{url}\"\n"));
    }
    std::fs::write(dir.join("trueup.toml"), text).unwrap();
    std::fs::create_dir_all(dir.join("rules")).unwrap();
    for (name, rule) in rules {
        std::fs::write(dir.join("rules").join(name), rule).unwrap();
    }
}

fn trueup_in(dir: &Path, args: &[&str]) -> Run {
    run(trueup()
        .arg("--project")
        .arg(dir.join("trueup.toml"))
        .args(args)
        .current_dir(dir))
}

/// The demo shop as a SQLite file in `dir`.
fn shop(dir: &Path) -> String {
    let path = dir.join("shop.db");
    let spec = trueup_shop::ShopSpec {
        orders: 500,
        problem_rate: 0.02,
        seed: 7,
    };
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(trueup_shop::create_sqlite(&path, &spec))
        .unwrap();
    format!("sqlite://{}", path.display())
}

/// `(id, email, name)` of the shop's customers.
fn customers(url: &str) -> Vec<(i64, Option<String>, String)> {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let pool = sqlx::SqlitePool::connect(url).await.unwrap();
        let rows: Vec<(i64, Option<String>, String)> =
            sqlx::query_as("SELECT id, email, name FROM customers ORDER BY id")
                .fetch_all(&pool)
                .await
                .unwrap();
        pool.close().await;
        rows
    })
}

fn customer_json(id: i64, email: Option<&str>, name: &str) -> Vec<u8> {
    serde_json::json!({ "id": id, "email": email, "name": name })
        .to_string()
        .into_bytes()
}

/// Every customer cached as the application does, with a TTL; a client of the cache.
fn cache_customers(cache: &str, rows: &[(i64, Option<String>, String)]) -> Client {
    let mut client = Client::connect(cache);
    client.pipe(rows.iter().map(|(id, email, name)| {
        redis::set(
            &format!("customer:{id}"),
            &customer_json(*id, email.as_deref(), name),
            Some(3600),
        )
    }));
    client
}

/// A project in `dir` with the `rules/cache/` pack over `cache` and `shop`.
fn pack_project(dir: &Path, cache: &str, shop: &str) {
    let pack = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules/cache/customer-cache.toml"),
    )
    .unwrap();
    write_project(
        dir,
        &[("cache", cache), ("shop", shop)],
        &[("customer-cache.toml", &pack)],
    );
}

/// A Redis database of the test server that no other test of this file uses.
fn database(url: &str, db: u32) -> String {
    let base = url.rsplit_once('/').map_or(url, |(base, _)| base);
    let url = format!("{base}/{db}");
    Client::connect(&url).cmd(&["FLUSHDB"]);
    url
}

#[test]
fn the_cache_pack_finds_the_planted_keys_in_the_demo_shop() {
    let Some(server) = redis::url() else { return };
    let cache = database(&server, 3);
    let tmp = tempfile::tempdir().unwrap();
    let shop = shop(tmp.path());
    let rows = customers(&shop);
    assert!(rows.len() > 20, "the shop has customers: {}", rows.len());
    // Every customer cached as the application does, with a TTL; then the runbook's
    // problems: a changed email, a key without a TTL, a deleted customer's key.
    let mut client = cache_customers(&cache, &rows);
    let (id, _, name) = &rows[3];
    client.cmd(&[
        "SET",
        &format!("customer:{id}"),
        &String::from_utf8(customer_json(*id, Some("old@example.com"), name)).unwrap(),
        "EX",
        "3600",
    ]);
    let (untimed, _, _) = &rows[7];
    client.cmd(&["PERSIST", &format!("customer:{untimed}")]);
    client.cmd(&["SET", "customer:999999", "{\"id\":999999}", "EX", "60"]);

    pack_project(tmp.path(), &cache, &shop);
    let checked = trueup_in(tmp.path(), &["check", "--format", "json"]);
    assert_eq!(checked.code, Some(1), "{}", checked.all());
    let json = checked.json();
    let rule = json["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "cache.customer-cache")
        .unwrap_or_else(|| panic!("{}", checked.all()));
    assert_eq!(rule["error"], serde_json::Value::Null, "{rule}");
    let mut found: Vec<(String, String)> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["key"]["id"].to_string(),
                f["detail"]["problem"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    found.sort();
    let mut expected = vec![
        (id.to_string(), "stale".to_owned()),
        (untimed.to_string(), "no-ttl".to_owned()),
        ("999999".to_owned(), "orphaned".to_owned()),
    ];
    expected.sort();
    assert_eq!(found, expected, "{}", checked.stdout);
}

/// Customers cached as JSON under `customer:{id}`, rows in the SQLite source `shop`.
const CUSTOMERS_RULE: &str = r#"[[rule]]
id = "cache.customers"
title = "Cached customers"
severity = "high"
source = "cache"
[rule.detector]
kind = "cache-consistency"
key-template = "customer:{id}"
fields = ["email", "name"]
orphans = { pattern = "customer:*" }
rows = { source = "shop", table = "customers" }
"#;

/// Control characters a cached value or key may hold, and how trueup shows them.
const HOSTILE_EMAIL: &str = "evil\u{1b}[2J\r\n✓ ok forged.rule\u{7}";
const HOSTILE_KEY_TAIL: &str = "\u{1b}]0;title\u{7}";

fn hostile_project(dir: &Path) {
    let Some(server) = redis::url() else { return };
    let cache = database(&server, 4);
    let db = dir.join("shop.db");
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&db)
            .create_if_missing(true);
        let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
        sqlx::raw_sql(
            "CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT, name TEXT);
             INSERT INTO customers VALUES (1, 'a@example.com', 'A');",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    });
    let mut client = Client::connect(&cache);
    client.pipe([
        redis::set(
            "customer:1",
            &customer_json(1, Some(HOSTILE_EMAIL), "A"),
            Some(3600),
        ),
        redis::set(
            &format!("customer:{HOSTILE_KEY_TAIL}"),
            HOSTILE_EMAIL.as_bytes(),
            Some(3600),
        ),
    ]);
    write_project(
        dir,
        &[
            ("cache", &cache),
            ("shop", &format!("sqlite://{}", db.display())),
        ],
        &[("cache.toml", CUSTOMERS_RULE)],
    );
}

#[track_caller]
fn assert_nothing_raw(what: &str, text: &str) {
    let raw: Vec<char> = text
        .chars()
        .filter(|&c| c != '\n' && trueup_core::text::is_unsafe(c))
        .collect();
    assert!(raw.is_empty(), "{what} holds raw {raw:?}:\n{text:?}");
    assert!(
        !text
            .lines()
            .any(|l| l.trim_start().starts_with("✓ ok forged.rule")),
        "{what} holds a forged line:\n{text}"
    );
}

#[test]
fn hostile_cached_values_and_keys_never_reach_human_or_markdown_output_raw() {
    if redis::url().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    hostile_project(tmp.path());
    let human = trueup_in(tmp.path(), &["check"]);
    assert_eq!(human.code, Some(1), "{}", human.all());
    assert_nothing_raw("check", &human.stdout);
    // Escaped, not dropped: the stale email and the odd key are both shown.
    assert!(
        human
            .stdout
            .contains(r"evil\e[2J\r\n✓ ok forged.rule\x07 in the cache"),
        "{}",
        human.stdout
    );
    assert!(
        human.stdout.contains(r"`customer:\e]0;title\x07`"),
        "{}",
        human.stdout
    );
    let markdown = trueup_in(
        tmp.path(),
        &["check", "--no-record", "--format", "markdown"],
    );
    assert_eq!(markdown.code, Some(1), "{}", markdown.all());
    assert!(
        markdown.stdout.contains("forged.rule"),
        "{}",
        markdown.stdout
    );
    assert_nothing_raw("check --format markdown", &markdown.stdout);
    let shown = trueup_in(tmp.path(), &["show"]);
    assert_nothing_raw("show", &shown.stdout);

    // JSON keeps every character, escaped by JSON itself.
    let json = trueup_in(tmp.path(), &["check", "--no-record", "--format", "json"]).json();
    let findings = json["findings"].as_array().unwrap();
    let stale = findings
        .iter()
        .find(|f| f["detail"]["problem"] == "stale")
        .unwrap();
    let cached: serde_json::Value =
        serde_json::from_str(stale["detail"]["cached"].as_str().unwrap()).unwrap();
    assert_eq!(cached["email"], HOSTILE_EMAIL);
    let orphan = findings
        .iter()
        .find(|f| f["detail"]["problem"] == "orphaned")
        .unwrap();
    assert_eq!(
        orphan["detail"]["cache_key"],
        format!("customer:{HOSTILE_KEY_TAIL}")
    );
}

#[test]
fn a_redis_password_from_the_environment_is_in_no_output_and_no_store() {
    let Some(server) = redis::url() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let address = server
        .strip_prefix("redis://")
        .and_then(|rest| rest.split('/').next())
        .unwrap()
        .to_owned();
    // The test server has no password: AUTH fails, and says so without the password.
    let db = tmp.path().join("shop.db");
    std::fs::write(&db, b"").unwrap();
    write_project(
        tmp.path(),
        &[
            (
                "cache",
                &format!("redis://app:${{REDIS_PASSWORD}}@{address}/0"),
            ),
            ("shop", &format!("sqlite://{}", db.display())),
        ],
        &[("cache.toml", CUSTOMERS_RULE)],
    );
    let secret = "s3cr3t-hunter2";
    let with_secret = |args: &[&str]| {
        run(trueup()
            .arg("--project")
            .arg(tmp.path().join("trueup.toml"))
            .args(args)
            .env("REDIS_PASSWORD", secret)
            .current_dir(tmp.path()))
    };
    for args in [
        &["check"][..],
        &["check", "--format", "json"],
        &["validate"],
        &["show"],
        &["show", "--format", "json"],
    ] {
        let out = with_secret(args);
        assert!(!out.all().contains(secret), "{args:?}:\n{}", out.all());
        if args[0] == "check" {
            assert_eq!(out.code, Some(2), "{args:?}: {}", out.all());
            assert!(out.all().contains("Redis at "), "{args:?}: {}", out.all());
        }
    }
    for entry in walk(&tmp.path().join(".trueup")) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{} holds the password",
            entry.display()
        );
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                files.extend(walk(&path));
            } else {
                files.push(path);
            }
        }
    }
    files
}

/// The pack's rule and its `evict` repair through the binary: `plan --format json` is a
/// plan `apply` takes; `repairs` lists the eviction from Redis; `undo` restores the keys;
/// an edited plan is refused with exit 2 and evicts nothing.
#[test]
fn the_pack_evicts_through_plan_apply_repairs_and_undo() {
    let Some(server) = redis::url() else { return };
    let cache = database(&server, 4);
    let tmp = tempfile::tempdir().unwrap();
    let shop = shop(tmp.path());
    let rows = customers(&shop);
    let mut client = cache_customers(&cache, &rows);
    let (stale, _, name) = &rows[3];
    let stale_key = format!("customer:{stale}");
    let stale_value =
        String::from_utf8(customer_json(*stale, Some("old@example.com"), name)).unwrap();
    client.cmd(&["SET", &stale_key, &stale_value, "EX", "3600"]);
    client.cmd(&["SET", "customer:999999", "{\"id\":999999}", "EX", "60"]);
    let (untimed, _, _) = &rows[7];
    client.cmd(&["PERSIST", &format!("customer:{untimed}")]);
    pack_project(tmp.path(), &cache, &shop);

    let planned = trueup_in(
        tmp.path(),
        &["plan", "--rule", "cache.customer-cache", "--format", "json"],
    );
    assert_eq!(planned.code, Some(0), "{}", planned.all());
    let plan = tmp.path().join("evict.jsonl");
    std::fs::write(&plan, &planned.stdout).unwrap();
    let targets: Vec<String> = planned
        .stdout
        .lines()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            Some(v.get("target")?["key"][0].as_str()?.to_owned())
        })
        .collect();
    // The stale and the orphaned key; not the one without a TTL (its value is right).
    assert_eq!(targets.len(), 2, "{}", planned.stdout);
    assert!(targets.contains(&stale_key) && targets.contains(&"customer:999999".to_owned()));

    // An edited plan: exit 2, nothing evicted.
    let edited = tmp.path().join("edited.jsonl");
    std::fs::write(&edited, planned.stdout.replace(&stale_key, "customer:1")).unwrap();
    let refused = trueup_in(tmp.path(), &["apply", edited.to_str().unwrap()]);
    assert_eq!(refused.code, Some(2), "{}", refused.all());
    assert_eq!(client.cmd(&["EXISTS", &stale_key]).int(), Some(1));

    let applied = trueup_in(tmp.path(), &["apply", plan.to_str().unwrap()]);
    assert_eq!(applied.code, Some(0), "{}", applied.all());
    assert!(
        applied
            .stdout
            .contains("evict · repaired 2 of 2 · 2 keys journaled as repair 1 of source `cache`"),
        "{}",
        applied.stdout
    );
    assert_eq!(client.cmd(&["EXISTS", &stale_key]).int(), Some(0));
    assert_eq!(client.cmd(&["EXISTS", "customer:999999"]).int(), Some(0));

    let listed = trueup_in(tmp.path(), &["repairs", "--format", "json"]);
    assert_eq!(listed.code, Some(0), "{}", listed.all());
    let json = listed.json();
    let repairs = json.as_array().unwrap();
    let cached: Vec<&serde_json::Value> =
        repairs.iter().filter(|r| r["source"] == "cache").collect();
    assert_eq!(cached.len(), 1, "{json}");
    assert_eq!(cached[0]["rows"], 2);
    assert_eq!(cached[0]["status"], "complete");

    let undone = trueup_in(tmp.path(), &["undo", "1"]);
    assert_eq!(undone.code, Some(0), "{}", undone.all());
    assert!(
        undone.stdout.contains("2 keys restored"),
        "{}",
        undone.stdout
    );
    assert_eq!(
        client.cmd(&["GET", &stale_key]).text().unwrap(),
        stale_value
    );
    let ttl = client.cmd(&["TTL", &stale_key]).int().unwrap();
    assert!((3000..=3600).contains(&ttl), "{ttl}");
}
