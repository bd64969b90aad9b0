//! `cache-consistency` rules against a real redis-server and real databases: 100,000
//! customers in PostgreSQL, cached as JSON in Redis, with planted stale, missing,
//! orphaned, TTL-less and unreadable keys that must be found exactly, and nothing else; a
//! hash cache with a field map; a Redis server killed in the middle of the orphan scan,
//! which fails that rule while the run's other rules report.

mod support;

use std::collections::BTreeMap;

use support::redis::{self, Client, PrivateServer};
use support::{TestDb, TestProject, run_project};

/// The JSON the application caches for customer `id`.
fn customer_json(id: i64, email: &str, balance: &str) -> Vec<u8> {
    format!(r#"{{"id":{id},"email":"{email}","name":"Customer {id}","balance":{balance}}}"#)
        .into_bytes()
}

fn rule(prefix: &str, rows_source: &str) -> String {
    format!(
        r#"[[rule]]
id = "cache.customers"
title = "Cached customers that disagree with the database"
severity = "high"
source = "cache"

[rule.detector]
kind = "cache-consistency"
key-template = "{prefix}:customer:{{id}}"
fields = ["email", "name", "balance"]
tolerance = {{ balance = 0.005 }}
require-cached = true
require-ttl = true
orphans = {{ pattern = "{prefix}:customer:*", count = 1000 }}

[rule.detector.rows]
source = "{rows_source}"
table = "customers"
"#
    )
}

/// Problem of each finding by key text, from the findings' details.
fn problems(result: &support::RunResult, rule: &str) -> BTreeMap<String, String> {
    result
        .findings
        .iter()
        .zip(&result.details)
        .filter(|((r, _, _), _)| r == rule)
        .map(|((_, key, _), detail)| {
            let detail: serde_json::Value = serde_json::from_str(detail).unwrap();
            (key.clone(), detail["problem"].as_str().unwrap().to_owned())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn planted_problems_among_100k_consistent_keys_are_found_exactly() {
    let (Some(url), Some(db)) = (redis::url(), TestDb::postgres().await) else {
        return;
    };
    let p = redis::prefix("exact");
    db.execute(
        "CREATE TABLE customers (id bigint PRIMARY KEY, email text NOT NULL, name text, balance numeric(12,2));
         INSERT INTO customers SELECT g, 'c' || g || '@example.com', 'Customer ' || g, (g % 1000) / 10.0
           FROM generate_series(1, 100000) AS g;
         UPDATE customers SET name = NULL WHERE id = 500;",
    )
    .await;
    let balance = |id: i64| format!("{}.{}", (id % 1000) / 10, (id % 1000) % 10);
    let mut client = Client::connect(&url);
    let planted_missing = [50, 60_000];
    let planted_no_ttl = [99, 70_001];
    client.pipe(
        (1..=100_000i64)
            .filter(|id| !planted_missing.contains(id))
            .map(|id| {
                let email = format!("c{id}@example.com");
                let value = match id {
                    // The NULL name is left out by the serializer: the same.
                    500 => format!(
                        r#"{{"id":500,"email":"{email}","balance":{}}}"#,
                        balance(id)
                    )
                    .into_bytes(),
                    // Within the half-cent tolerance: the same.
                    777 => customer_json(id, &email, "77.704"),
                    _ => customer_json(id, &email, &balance(id)),
                };
                redis::set(
                    &format!("{p}:customer:{id}"),
                    &value,
                    (!planted_no_ttl.contains(&id)).then_some(3600),
                )
            }),
    );
    // Stale: another email, a balance a cent off, a name the row does not have.
    let stale = [
        (17, customer_json(17, "old@example.com", &balance(17))),
        (4242, customer_json(4242, "c4242@example.com", "24.3")),
        (
            90_000,
            br#"{"id":90000,"email":"c90000@example.com","balance":0.0}"#.to_vec(),
        ),
    ];
    // Orphans: a customer the database does not have, and a key the template cannot
    // have built.
    let orphans = [
        (
            format!("{p}:customer:100001"),
            customer_json(100_001, "x@example.com", "1"),
        ),
        (format!("{p}:customer:abc"), b"{}".to_vec()),
    ];
    let mut writes: Vec<Vec<Vec<u8>>> = stale
        .iter()
        .map(|(id, value)| redis::set(&format!("{p}:customer:{id}"), value, Some(3600)))
        .collect();
    writes.extend(
        orphans
            .iter()
            .map(|(key, value)| redis::set(key, value, Some(3600))),
    );
    writes.push(redis::set(
        &format!("{p}:customer:123"),
        b"{\"id\":123,",
        Some(3600),
    ));
    writes.push(redis::set(
        &format!("{p}:customer:124"),
        b"[1,2]",
        Some(3600),
    ));
    writes.push(vec![
        b"DEL".to_vec(),
        format!("{p}:customer:125").into_bytes(),
    ]);
    writes.push(vec![
        b"HSET".to_vec(),
        format!("{p}:customer:125").into_bytes(),
        b"email".to_vec(),
        b"c125@example.com".to_vec(),
    ]);
    client.pipe(writes);

    let project = TestProject::with_sources(
        &[("cache", &url), ("shop", &db.url)],
        &[("cache.toml", &rule(&p, "shop"))],
    );
    let result = run_project(&project.path()).await;
    assert_eq!(result.error("cache.customers"), None);
    let found = problems(&result, "cache.customers");
    let expected: BTreeMap<String, String> = [
        ("id=17", "stale"),
        ("id=4242", "stale"),
        ("id=90000", "stale"),
        ("id=50", "missing"),
        ("id=60000", "missing"),
        ("id=99", "no-ttl"),
        ("id=70001", "no-ttl"),
        ("id=100001", "orphaned"),
        (&*format!("id={p}:customer:abc"), "orphaned"),
        ("id=123", "not-json"),
        ("id=124", "not-json"),
        ("id=125", "wrong-type"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(found, expected);

    // Each message says what differs, with both sides' values.
    let message = |key: &str| {
        result
            .findings
            .iter()
            .find(|(r, k, _)| r == "cache.customers" && k == key)
            .map(|(_, _, m)| m.clone())
            .unwrap()
    };
    assert_eq!(
        message("id=17"),
        format!(
            "`{p}:customer:17` is stale: email is c17@example.com in the row, old@example.com in the cache"
        )
    );
    assert_eq!(
        message("id=90000"),
        format!(
            "`{p}:customer:90000` is stale: name is Customer 90000 in the row, absent in the cache"
        )
    );
    assert!(
        message("id=123").starts_with(&format!(
            "`{p}:customer:123` is not valid JSON: EOF while parsing"
        )),
        "{}",
        message("id=123")
    );
    assert_eq!(
        message("id=124"),
        format!("`{p}:customer:124` is not a JSON object: it holds an array")
    );
    assert_eq!(message("id=99"), format!("`{p}:customer:99` has no TTL"));
    let detail = |key: &str| -> serde_json::Value {
        let at = result
            .findings
            .iter()
            .position(|(r, k, _)| r == "cache.customers" && k == key)
            .unwrap();
        serde_json::from_str(&result.details[at]).unwrap()
    };
    let d = detail("id=4242");
    assert_eq!(d["cache_key"], format!("{p}:customer:4242"));
    assert_eq!(d["cached"], r#"{"balance":24.3}"#);
    assert_eq!(d["row"], r#"{"balance":"24.20"}"#);
    assert_eq!(detail("id=123")["cached"], r#"{"id":123,"#);
}

#[tokio::test]
async fn a_hash_cache_is_compared_through_its_field_map() {
    let Some(url) = redis::url() else { return };
    let db = TestDb::sqlite();
    let p = redis::prefix("hash");
    db.execute(
        "CREATE TABLE products (sku TEXT PRIMARY KEY, price REAL, stock INTEGER);
         INSERT INTO products VALUES ('A-1', 9.99, 5), ('A-2', 10.0, 0), ('A-3', 1.5, NULL);",
    )
    .await;
    let mut client = Client::connect(&url);
    let hset = |sku: &str, fields: &[(&str, &str)]| {
        let mut args = vec![b"HSET".to_vec(), format!("{p}:product:{sku}").into_bytes()];
        for (name, value) in fields {
            args.extend([name.as_bytes().to_vec(), value.as_bytes().to_vec()]);
        }
        args
    };
    client.pipe([
        hset("A-1", &[("unitPrice", "9.99"), ("inStock", "5")]),
        hset("A-2", &[("unitPrice", "10"), ("inStock", "3")]),
        hset("A-3", &[("unitPrice", "1.50")]),
    ]);
    let rule = format!(
        r#"[[rule]]
id = "cache.products"
title = "Cached products"
severity = "medium"
source = "cache"

[rule.detector]
kind = "cache-consistency"
key = ["sku"]
key-template = "{p}:product:{{sku}}"
format = "hash"
fields = ["price", "stock"]
map = {{ price = "unitPrice", stock = "inStock" }}

[rule.detector.rows]
source = "shop"
table = "products"
"#
    );
    let project = TestProject::with_sources(
        &[("cache", &url), ("shop", &db.url)],
        &[("cache.toml", &rule)],
    );
    let result = run_project(&project.path()).await;
    assert_eq!(result.error("cache.products"), None);
    assert_eq!(
        result.findings,
        [(
            "cache.products".to_owned(),
            "sku=A-2".to_owned(),
            format!("`{p}:product:A-2` is stale: stock is 0 in the row, 3 in the cache")
        )]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_killed_mid_scan_fails_that_rule_and_the_run_goes_on() {
    let Some(mut server) = PrivateServer::start() else {
        return;
    };
    let db = TestDb::sqlite();
    db.execute(
        "CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT, name TEXT, balance REAL);
         INSERT INTO customers VALUES (1, 'a@example.com', 'A', 1.0);
         CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER);
         INSERT INTO orders VALUES (10, 1), (11, 99);",
    )
    .await;
    // Many keys, read back 10 at a time: the orphan scan takes hundreds of round trips.
    let mut client = Client::connect(&server.url);
    client.pipe((1..=100_000).map(|id| redis::set(&format!("k:customer:{id}"), b"{}", Some(3600))));
    let cache_rule = rule("k", "shop").replace("count = 1000", "count = 10");
    let orphans_rule = r#"[[rule]]
id = "shop.orphaned-orders"
title = "Orders without a customer"
severity = "high"
source = "shop"

[rule.detector]
kind = "foreign-key"
table = "orders"
columns = ["customer_id"]
references = "customers"
referenced-columns = ["id"]
"#;
    let project = TestProject::with_sources(
        &[("shop", &db.url), ("cache", &server.url)],
        &[("cache.toml", &cache_rule), ("orders.toml", orphans_rule)],
    );
    let path = project.path();
    let run = tokio::spawn(async move { run_project(&path).await });
    // Kill the server once the scan is under way.
    let mut watcher = Client::connect(&server.url);
    assert!(watcher.wait_for_calls("scan", 20), "the scan did not start");
    server.kill();
    let result = run.await.unwrap();
    assert_eq!(result.cause("cache.customers"), Some("connection"));
    let error = result.error("cache.customers").unwrap();
    assert!(
        error.contains("source `cache`: Redis at 127.0.0.1:"),
        "{error}"
    );
    // The other rule ran and found its row.
    assert_eq!(result.error("shop.orphaned-orders"), None);
    assert_eq!(result.keys("shop.orphaned-orders"), ["id=11"]);
}
