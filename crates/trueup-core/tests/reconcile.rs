//! `reconcile` rules between real databases: the orders of an orders service against the
//! invoices of a billing service, with planted missing, extra and differing rows, across
//! SQLite, PostgreSQL and MariaDB; keys of different types, NUMERIC against DOUBLE,
//! timestamps of different precision, NULLs on one side. Each pair must find exactly the
//! planted differences; a side that cannot be read fails the rule and the run goes on.

mod support;

use support::{RunResult, TestDb, TestProject, run_project};

/// One row as both services should hold it, and how the billing side holds it instead.
struct Order {
    id: i64,
    status: Option<&'static str>,
    total: &'static str,
    created_at: &'static str,
}

/// What the billing side holds for an order: the same, nothing, or other values.
enum Billing {
    Same,
    Missing,
    Status(Option<&'static str>),
    Amount(&'static str),
    Created(&'static str),
}

fn orders() -> Vec<(Order, Billing)> {
    let order = |id, status, total, created_at| Order {
        id,
        status,
        total,
        created_at,
    };
    let mut rows = vec![
        (
            order(3, Some("paid"), "10.00", "2026-01-01 10:00:00"),
            Billing::Missing,
        ),
        (
            order(4, Some("paid"), "20.00", "2026-01-01 10:00:00"),
            Billing::Status(Some("refunded")),
        ),
        (
            order(5, Some("paid"), "30.00", "2026-01-01 10:00:00"),
            Billing::Amount("30.01"),
        ),
        // Within the tolerance of half a cent: the same.
        (
            order(6, Some("paid"), "40.00", "2026-01-01 10:00:00"),
            Billing::Amount("40.004"),
        ),
        // Within the precision of a second: the same.
        (
            order(8, Some("paid"), "50.00", "2026-01-01 10:00:00.400000"),
            Billing::Created("2026-01-01 10:00:00"),
        ),
        (
            order(9, Some("paid"), "60.00", "2026-01-01 10:00:02"),
            Billing::Created("2026-01-01 10:00:00"),
        ),
        (
            order(10, None, "70.00", "2026-01-01 10:00:00"),
            Billing::Status(Some("paid")),
        ),
        (
            order(11, None, "80.00", "2026-01-01 10:00:00"),
            Billing::Same,
        ),
    ];
    // Enough rows around them that both sides stream several batches, and that text
    // order (`100` before `11`) differs from integer order.
    for id in 12..1500 {
        rows.push((
            order(id, Some("paid"), "1.50", "2026-01-02 00:00:00"),
            Billing::Same,
        ));
    }
    rows
}

/// The keys of the planted differences, as findings name them.
const PLANTED: [&str; 6] = ["id=10", "id=3", "id=4", "id=5", "id=7", "id=9"];

fn text(value: Option<&str>) -> String {
    value.map_or("NULL".to_owned(), |v| format!("'{v}'"))
}

/// The orders service's table on `backend`.
fn orders_setup(backend: &str) -> String {
    let (status, stamp) = match backend {
        "mysql" => ("VARCHAR(20)", "DATETIME(6)"),
        _ => ("TEXT", "TIMESTAMP"),
    };
    let mut sql = format!(
        "CREATE TABLE orders (id BIGINT PRIMARY KEY, status {status}, total NUMERIC(12,2), \
         created_at {stamp});\n"
    );
    let values: Vec<String> = orders()
        .iter()
        .map(|(o, _)| {
            format!(
                "({}, {}, {}, '{}')",
                o.id,
                text(o.status),
                o.total,
                o.created_at
            )
        })
        .collect();
    sql.push_str(&format!(
        "INSERT INTO orders VALUES {};\n",
        values.join(", ")
    ));
    sql
}

/// The billing service's table on `backend`: other names, the amount a double, the time
/// to the second, and the key as text when `text_key`.
fn invoices_setup(backend: &str, text_key: bool) -> String {
    let (key, state, amount, stamp) = match (backend, text_key) {
        ("mysql", true) => ("VARCHAR(20)", "VARCHAR(20)", "DOUBLE", "DATETIME"),
        ("mysql", false) => ("BIGINT", "VARCHAR(20)", "DOUBLE", "DATETIME"),
        ("sqlite", true) => ("TEXT", "TEXT", "REAL", "TIMESTAMP"),
        ("sqlite", false) => ("BIGINT", "TEXT", "REAL", "TIMESTAMP"),
        (_, true) => ("TEXT", "TEXT", "DOUBLE PRECISION", "TIMESTAMP(0)"),
        (_, false) => ("BIGINT", "TEXT", "DOUBLE PRECISION", "TIMESTAMP(0)"),
    };
    let mut sql = format!(
        "CREATE TABLE invoices (order_id {key} PRIMARY KEY, state {state}, amount {amount}, \
         created {stamp});\n"
    );
    let key = |id: i64| {
        if text_key {
            format!("'{id}'")
        } else {
            id.to_string()
        }
    };
    let mut values: Vec<String> = Vec::new();
    for (o, billing) in orders() {
        let (mut status, mut amount, mut created) = (o.status, o.total, o.created_at);
        match billing {
            Billing::Missing => continue,
            Billing::Same => {}
            Billing::Status(s) => status = s,
            Billing::Amount(a) => amount = a,
            Billing::Created(c) => created = c,
        }
        // The billing side keeps whole seconds.
        let created = created.split('.').next().unwrap_or(created);
        values.push(format!(
            "({}, {}, {amount}, '{created}')",
            key(o.id),
            text(status)
        ));
    }
    // An invoice without an order.
    values.push(format!("({}, 'paid', 5.00, '2026-01-01 10:00:00')", key(7)));
    sql.push_str(&format!(
        "INSERT INTO invoices VALUES {};\n",
        values.join(", ")
    ));
    sql
}

fn rule(mode: &str) -> String {
    format!(
        r#"[[rule]]
id = "orders-match-invoices"
title = "Orders and invoices agree"
severity = "high"
source = "orders"

[rule.detector]
kind = "reconcile"
mode = "{mode}"
key = ["id"]
columns = ["status", "total", "created_at"]
map = {{ id = "order_id", status = "state", total = "amount", created_at = "created" }}
tolerance = {{ total = 0.005 }}
precision = {{ created_at = "1s" }}
left = {{ table = "orders" }}
right = {{ source = "billing", table = "invoices" }}
"#
    )
}

/// Both modes on the same two tables: the join's result, then the bisect's.
async fn reconcile(left: &TestDb, right: &TestDb, text_key: bool) -> [RunResult; 2] {
    left.execute(&orders_setup(left.backend)).await;
    right
        .execute(&invoices_setup(right.backend, text_key))
        .await;
    let mut results = Vec::new();
    for mode in MODES {
        let project = TestProject::with_sources(
            &[("orders", &left.url), ("billing", &right.url)],
            &[("reconcile.toml", &rule(mode))],
        );
        results.push(run_project(&project.path()).await);
    }
    let [join, bisect]: [RunResult; 2] = results.try_into().ok().unwrap();
    for (result, mode) in [(&join, "join"), (&bisect, "bisect")] {
        assert_eq!(result.error("orders-match-invoices"), None, "{mode}");
    }
    assert_eq!(join.findings, bisect.findings, "the modes disagree");
    assert_eq!(join.details, bisect.details, "the modes disagree");
    [join, bisect]
}

const MODES: [&str; 2] = ["join", "bisect"];

fn assert_planted_in_both_modes(results: &[RunResult; 2], pair: &str) {
    for (result, mode) in results.iter().zip(MODES) {
        assert_planted(result, &format!("{pair}, {mode}"));
    }
}

fn assert_planted(result: &RunResult, pair: &str) {
    let rule = "orders-match-invoices";
    assert_eq!(result.error(rule), None, "{pair}");
    assert_eq!(result.keys(rule), PLANTED, "{pair}");
    let detail = |key: &str| {
        let at = result
            .findings
            .iter()
            .position(|(_, k, _)| k == key)
            .unwrap_or_else(|| panic!("{pair}: no finding {key}"));
        let detail: serde_json::Value = serde_json::from_str(&result.details[at]).unwrap();
        (detail, result.findings[at].2.clone())
    };
    let (missing, message) = detail("id=3");
    assert_eq!(missing["difference"], "missing-on-right", "{pair}");
    assert_eq!(message, "missing on the right (`billing`)", "{pair}");
    assert_eq!(detail("id=7").0["difference"], "missing-on-left", "{pair}");
    let (status, message) = detail("id=4");
    assert_eq!(status["difference"], "differs", "{pair}");
    assert_eq!(
        message, "status is paid on the left, refunded on the right",
        "{pair}"
    );
    let left: serde_json::Value = serde_json::from_str(status["left"].as_str().unwrap()).unwrap();
    assert_eq!(left, serde_json::json!({ "status": "paid" }), "{pair}");
    assert!(detail("id=5").1.starts_with("total is 30"), "{pair}");
    assert!(
        detail("id=9")
            .1
            .starts_with("created_at is 2026-01-01 10:00:02"),
        "{pair}"
    );
    assert_eq!(
        detail("id=10").1,
        "status is NULL on the left, paid on the right",
        "{pair}"
    );
}

#[tokio::test]
async fn reconcile_sqlite_with_postgres_text_keys_against_integers() {
    let Some(right) = TestDb::postgres().await else {
        return;
    };
    let left = TestDb::sqlite();
    assert_planted_in_both_modes(&reconcile(&left, &right, true).await, "sqlite-postgres");
}

#[tokio::test]
async fn reconcile_postgres_with_postgres() {
    let (Some(left), Some(right)) = (TestDb::postgres().await, TestDb::postgres().await) else {
        return;
    };
    assert_planted_in_both_modes(&reconcile(&left, &right, false).await, "postgres-postgres");
}

#[tokio::test]
async fn reconcile_postgres_with_mariadb() {
    let (Some(left), Some(right)) = (TestDb::postgres().await, TestDb::mysql().await) else {
        return;
    };
    assert_planted_in_both_modes(&reconcile(&left, &right, false).await, "postgres-mariadb");
}

#[tokio::test]
async fn reconcile_mariadb_with_sqlite_text_keys() {
    let Some(left) = TestDb::mysql().await else {
        return;
    };
    let right = TestDb::sqlite();
    assert_planted_in_both_modes(&reconcile(&left, &right, true).await, "mariadb-sqlite");
}

/// Values at the edges of "the same", one row each, a double against a decimal, text, and
/// timestamps to the second on both sides of 1970: (id, left x, right x, left s, right s,
/// left at, right at). Both modes must find exactly the rows that differ.
const EDGES: [(i64, &str, &str, &str, &str, &str, &str); 13] = [
    // A double that needs 17 digits is not the decimal of 15.
    (
        1,
        "59.970000000000006",
        "59.97",
        "'a'",
        "'a'",
        "'2026-01-01 00:00:00'",
        "'2026-01-01 00:00:00'",
    ),
    (
        2,
        "0.1",
        "0.10",
        "'a'",
        "'a'",
        "'2026-01-01 00:00:00'",
        "'2026-01-01 00:00:00'",
    ),
    (
        3,
        "1e20",
        "100000000000000000000",
        "'a'",
        "'a'",
        "'2026-01-01 00:00:00'",
        "'2026-01-01 00:00:00'",
    ),
    (
        4,
        "1",
        "1",
        "''",
        "NULL",
        "'2026-01-01 00:00:00'",
        "'2026-01-01 00:00:00'",
    ),
    (
        5,
        "1",
        "1",
        "'a'",
        "'a '",
        "'2026-01-01 00:00:00'",
        "'2026-01-01 00:00:00'",
    ),
    (
        6,
        "1",
        "1",
        "'é'",
        "'é'",
        "'2026-01-01 00:00:00'",
        "'2026-01-01 00:00:00'",
    ),
    (
        7,
        "1",
        "1",
        "'abc'",
        "'ABC'",
        "'2026-01-01 00:00:00'",
        "'2026-01-01 00:00:00'",
    ),
    (
        8,
        "1",
        "1",
        "'a'",
        "'a'",
        "'1969-12-31 23:59:59.5'",
        "'1969-12-31 23:59:59'",
    ),
    (
        9,
        "1",
        "1",
        "'a'",
        "'a'",
        "'1969-12-31 23:59:59.5'",
        "'1970-01-01 00:00:00'",
    ),
    (
        10,
        "1",
        "1",
        "'a'",
        "'a'",
        "'2026-01-01 00:00:00.999999'",
        "'2026-01-01 00:00:01'",
    ),
    (
        11,
        "NULL",
        "NULL",
        "'a'",
        "'a'",
        "'2026-01-01 00:00:00'",
        "'2026-01-01 00:00:00'",
    ),
    (
        12,
        "NULL",
        "0",
        "'a'",
        "'a'",
        "'2026-01-01 00:00:00'",
        "'2026-01-01 00:00:00'",
    ),
    (
        13,
        "-0.0",
        "0",
        "'a'",
        "'a'",
        "'2026-01-01 00:00:00'",
        "'2026-01-01 00:00:00'",
    ),
];

const EDGES_DIFFER: [&str; 7] = ["id=1", "id=10", "id=12", "id=4", "id=5", "id=7", "id=9"];

fn edges_setup(backend: &str, left: bool) -> String {
    let (x, s, at) = match (backend, left) {
        ("mysql", true) => ("DOUBLE", "VARCHAR(20)", "DATETIME(6)"),
        ("mysql", false) => ("DECIMAL(30,2)", "VARCHAR(20)", "DATETIME"),
        ("sqlite", true) => ("REAL", "TEXT", "TEXT"),
        ("sqlite", false) => ("NUMERIC", "TEXT", "TEXT"),
        (_, true) => ("DOUBLE PRECISION", "TEXT", "TIMESTAMP(6)"),
        (_, false) => ("NUMERIC(30,2)", "TEXT", "TIMESTAMP(0)"),
    };
    let rows: Vec<String> = EDGES
        .iter()
        .map(|(id, lx, rx, ls, rs, lat, rat)| {
            let (x, s, at) = if left { (lx, ls, lat) } else { (rx, rs, rat) };
            format!("({id}, {x}, {s}, {at})")
        })
        .collect();
    format!(
        "CREATE TABLE edges (id BIGINT PRIMARY KEY, x {x}, s {s}, at {at});\n\
         INSERT INTO edges VALUES {};\n",
        rows.join(", ")
    )
}

#[tokio::test]
async fn values_at_the_edges_of_the_same_in_both_modes() {
    let rule = |mode: &str| {
        format!(
            "[[rule]]\nid = \"edges\"\ntitle = \"t\"\nseverity = \"low\"\nsource = \"a\"\n\
             [rule.detector]\nkind = \"reconcile\"\nmode = \"{mode}\"\ncolumns = [\"x\", \"s\", \"at\"]\n\
             precision = {{ at = \"1s\" }}\nleft = {{ table = \"edges\" }}\n\
             right = {{ source = \"b\", table = \"edges\" }}\n"
        )
    };
    let mut pairs = vec![(TestDb::sqlite(), TestDb::sqlite())];
    if let (Some(a), Some(b)) = (TestDb::postgres().await, TestDb::postgres().await) {
        pairs.push((a, b));
    }
    if let (Some(a), Some(b)) = (TestDb::postgres().await, TestDb::mysql().await) {
        pairs.push((a, b));
    }
    if let (Some(a), Some(b)) = (TestDb::mysql().await, TestDb::postgres().await) {
        pairs.push((a, b));
    }
    if let Some(b) = TestDb::postgres().await {
        pairs.push((TestDb::sqlite(), b));
    }
    for (left, right) in &pairs {
        let pair = format!("{}-{}", left.backend, right.backend);
        left.execute(&edges_setup(left.backend, true)).await;
        right.execute(&edges_setup(right.backend, false)).await;
        for mode in MODES {
            let project = TestProject::with_sources(
                &[("a", &left.url), ("b", &right.url)],
                &[("rule.toml", &rule(mode))],
            );
            let result = run_project(&project.path()).await;
            assert_eq!(result.error("edges"), None, "{pair}, {mode}");
            assert_eq!(result.keys("edges"), EDGES_DIFFER, "{pair}, {mode}");
        }
    }
}

#[tokio::test]
async fn an_unreachable_side_fails_the_rule_and_the_run_goes_on() {
    let left = TestDb::sqlite();
    left.execute(&orders_setup("sqlite")).await;
    let other = "[[rule]]\nid = \"still-runs\"\ntitle = \"t\"\nseverity = \"low\"\nsource = \"orders\"\n\
                 [rule.detector]\nkind = \"not-null\"\ntable = \"orders\"\ncolumns = [\"status\"]\n";
    let project = TestProject::with_sources(
        &[
            ("orders", &left.url),
            // Nothing listens on port 9 of this machine.
            (
                "billing",
                "postgres://trueup:x@127.0.0.1:9/billing?connect_timeout=2",
            ),
        ],
        &[("reconcile.toml", &rule("join")), ("other.toml", other)],
    );
    let result = run_project(&project.path()).await;
    let error = result
        .error("orders-match-invoices")
        .expect("the rule fails");
    assert!(error.contains("billing"), "{error}");
    assert!(!error.contains("trueup:x"), "{error}");
    assert_eq!(result.error("still-runs"), None);
    assert_eq!(result.keys("still-runs"), ["id=10", "id=11"]);
}

#[tokio::test]
async fn min_age_where_and_a_query_side() {
    let (left, right) = (TestDb::sqlite(), TestDb::sqlite());
    left.execute(
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, status TEXT, updated_at TEXT);
         INSERT INTO orders VALUES
           (1, 'paid', '2026-01-01 00:00:00'),
           (2, 'paid', datetime('now')),             -- new: not replicated yet
           (3, 'paid', '2026-01-01 00:00:00'),
           (4, 'paid', '2026-01-01 00:00:00'),
           (5, 'test', '2026-01-01 00:00:00');       -- left out by `where`",
    )
    .await;
    right
        .execute(
            "CREATE TABLE invoices (order_no INTEGER, state TEXT, changed TEXT, void INTEGER);
             INSERT INTO invoices VALUES
               (1, 'paid', '2026-01-01 00:00:00', 0),
               (3, 'refunded', datetime('now'), 0),  -- changed just now: not compared yet
               (4, 'refunded', '2026-01-01 00:00:00', 0),
               (6, 'paid', '2026-01-01 00:00:00', 1); -- void: left out by the query",
        )
        .await;
    let rule = r#"[[rule]]
id = "recent-rows-wait"
title = "t"
severity = "low"
source = "orders"
[rule.detector]
kind = "reconcile"
columns = ["status"]
min-age = "1h"
left = { table = "orders", where = "status <> 'test'", changed-at = "updated_at" }
right = { source = "billing", query = "SELECT order_no AS id, state AS status, changed FROM invoices WHERE void = 0", changed-at = "changed" }
"#;
    let project = TestProject::with_sources(
        &[("orders", &left.url), ("billing", &right.url)],
        &[("rule.toml", rule)],
    );
    let result = run_project(&project.path()).await;
    assert_eq!(result.error("recent-rows-wait"), None);
    assert_eq!(result.keys("recent-rows-wait"), ["id=4"]);
}

#[tokio::test]
async fn a_key_that_repeats_fails_the_rule() {
    let (left, right) = (TestDb::sqlite(), TestDb::sqlite());
    left.execute("CREATE TABLE t (id INTEGER, v TEXT); INSERT INTO t VALUES (1, 'a'), (2, 'b');")
        .await;
    right
        .execute("CREATE TABLE t (id INTEGER, v TEXT); INSERT INTO t VALUES (1, 'a'), (2, 'b'), (2, 'c');")
        .await;
    let rule = "[[rule]]\nid = \"r\"\ntitle = \"t\"\nseverity = \"low\"\nsource = \"a\"\n\
                [rule.detector]\nkind = \"reconcile\"\ncolumns = [\"v\"]\n\
                left = { table = \"t\" }\nright = { source = \"b\", table = \"t\" }\n";
    let project = TestProject::with_sources(
        &[("a", &left.url), ("b", &right.url)],
        &[("rule.toml", rule)],
    );
    let result = run_project(&project.path()).await;
    let error = result.error("r").expect("a repeated key fails the rule");
    assert!(error.contains("not unique on the right side: 2"), "{error}");
}

/// The example pack (`rules/reconcile/`) on the demo shop: the orders service on SQLite,
/// billing's invoices on PostgreSQL made from the same orders, then three differences
/// planted on the billing side.
#[tokio::test]
async fn the_reconcile_pack_finds_the_planted_differences() {
    let Some(billing) = TestDb::postgres().await else {
        return;
    };
    let orders = TestDb::sqlite();
    let spec = trueup_shop::ShopSpec {
        orders: 3000,
        problem_rate: 0.02,
        seed: 11,
    };
    let path = orders.url.trim_start_matches("sqlite://");
    trueup_shop::create_sqlite(std::path::Path::new(path), &spec)
        .await
        .unwrap();
    trueup_shop::create_postgres(&billing.url, &spec)
        .await
        .unwrap();
    billing
        .execute(
            "CREATE TABLE invoices AS SELECT id AS order_id, total_amount AS amount, status, \
               created_at AS issued_at FROM orders;
             DELETE FROM invoices WHERE order_id = 5;
             UPDATE invoices SET amount = amount + 1 WHERE order_id = 9;
             UPDATE invoices SET status = 'REFUNDED' WHERE order_id = 2500;
             INSERT INTO invoices VALUES (999999, 1.00, 'COMPLETED', '2026-01-01 00:00:00');",
        )
        .await;
    let pack = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../rules/reconcile/orders-match-invoices.toml"),
    )
    .unwrap();
    let project = TestProject::with_sources(
        &[("orders", &orders.url), ("billing", &billing.url)],
        &[("orders-match-invoices.toml", &pack)],
    );
    let result = run_project(&project.path()).await;
    let rule = "reconcile.orders-match-invoices";
    assert_eq!(result.error(rule), None);
    assert_eq!(result.keys(rule), ["id=2500", "id=5", "id=9", "id=999999"]);
}

/// Three reconcile rules comparing two tables of one source, two at a time on a pool of two
/// connections: each needs two of the source's connections at the same time, and takes both
/// at once (its two sides ask in the same poll, and the pool serves them in turn), so no
/// rule holds one while waiting for another rule's.
#[tokio::test]
async fn reconcile_rules_within_one_source_run_at_once_without_waiting_for_each_other() {
    within_one_source(TestDb::sqlite()).await;
    if let Some(db) = TestDb::postgres().await {
        within_one_source(db).await;
    }
}

async fn within_one_source(db: TestDb) {
    // More rows than the merge takes ahead, so that a side's query holds its connection
    // until the other side streams too.
    db.execute(
        "CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT); CREATE TABLE b (id INTEGER PRIMARY KEY, v TEXT);
         INSERT INTO a WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
         SELECT i, 'x' FROM n;
         INSERT INTO b SELECT id, CASE WHEN id = 2 THEN 'z' ELSE v END FROM a;",
    )
    .await;
    let rule = |id: &str| {
        format!(
            "[[rule]]\nid = \"{id}\"\ntitle = \"t\"\nseverity = \"low\"\n[rule.detector]\n\
             kind = \"reconcile\"\ncolumns = [\"v\"]\nleft = {{ table = \"a\" }}\n\
             right = {{ source = \"db\", table = \"b\" }}\n"
        )
    };
    let rules = [rule("first"), rule("second"), rule("third")].join("\n");
    let project = TestProject::new(&db.url, &[("rules.toml", &rules)]);
    let started = std::time::Instant::now();
    let result = run_project(&project.path()).await;
    for id in ["first", "second", "third"] {
        assert_eq!(result.error(id), None, "{}: {id}", db.backend);
        assert_eq!(result.keys(id), ["id=2"], "{}: {id}", db.backend);
    }
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{}: {:?}",
        db.backend,
        started.elapsed()
    );
}

/// The right side's session ended by the server while it streams its rows (`join`) or sums
/// them (`bisect`): an administrator's `pg_terminate_backend`, a failover. The rule fails,
/// saying which side, and the run's other rules finish.
#[tokio::test]
async fn a_side_dropped_mid_compare_fails_the_rule_and_the_run_goes_on() {
    // The join's ordered read of the rows, and the bisect's checksums.
    for (mode, query) in [
        ("join", "%trueup_c0%ORDER BY%"),
        ("bisect", "%sum(\"h\")%GROUP BY%"),
    ] {
        dropped_mid_compare(mode, query).await;
    }
}

async fn dropped_mid_compare(mode: &str, query: &'static str) {
    let Some(admin) = support::pg::admin_url() else {
        return;
    };
    let (Some(left), Some(right)) = (TestDb::postgres().await, TestDb::postgres().await) else {
        return;
    };
    let table = "CREATE TABLE items AS SELECT g AS id, md5(g::text) AS name \
                 FROM generate_series(1::bigint, 1000000) AS g; ALTER TABLE items ADD PRIMARY KEY (id);";
    left.execute(table).await;
    right.execute(table).await;
    let rules = format!(
        "[[rule]]\nid = \"items-agree\"\ntitle = \"t\"\nseverity = \"low\"\nsource = \"left\"\n\
         [rule.detector]\nkind = \"reconcile\"\nmode = \"{mode}\"\ncolumns = [\"name\"]\n\
         left = {{ table = \"items\" }}\nright = {{ source = \"right\", table = \"items\" }}\n\n\
         [[rule]]\nid = \"still-runs\"\ntitle = \"t\"\nseverity = \"low\"\nsource = \"left\"\n\
         [rule.detector]\nkind = \"row-count\"\ntable = \"items\"\nmax = 10\n"
    );
    let project = TestProject::with_sources(
        &[("left", &left.url), ("right", &right.url)],
        &[("rules.toml", &rules)],
    );
    let database = right.url.rsplit('/').next().unwrap().to_owned();
    let killer = tokio::spawn(async move {
        let pool = sqlx::PgPool::connect(&admin).await.unwrap();
        // The right side's query, once it runs.
        for _ in 0..600 {
            let killed: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE datname = $1 AND state = 'active' AND query LIKE $2 \
                 AND application_name LIKE 'trueup %'",
            )
            .bind(&database)
            .bind(query)
            .fetch_one(&pool)
            .await
            .unwrap();
            if killed > 0 {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        false
    });
    let result = run_project(&project.path()).await;
    assert!(
        killer.await.unwrap(),
        "{mode}: the right side's query was never seen running"
    );
    let error = result.error("items-agree").expect("the rule fails");
    assert!(
        error.contains("the right side (source `right`)"),
        "{mode}: {error}"
    );
    assert_eq!(result.error("still-runs"), None, "{mode}");
    assert_eq!(result.keys("still-runs"), ["table=items"], "{mode}");
}

/// A comparison that stops while a side still streams its rows with `COPY` (here the right
/// side's key repeats at once, while the left has a million rows to send): the left's
/// session is closed, not handed to the next rule half-read, so no `COPY` is left running on
/// the server and the source's next rules read correct rows from its pool.
#[tokio::test]
async fn a_comparison_stopped_mid_copy_leaves_no_query_running_and_the_pool_sound() {
    let Some(admin) = support::pg::admin_url() else {
        return;
    };
    let (Some(left), Some(right)) = (TestDb::postgres().await, TestDb::postgres().await) else {
        return;
    };
    left.execute(
        "CREATE TABLE items AS SELECT g AS id, md5(g::text) AS name \
         FROM generate_series(1::bigint, 1000000) AS g; ALTER TABLE items ADD PRIMARY KEY (id);",
    )
    .await;
    right
        .execute(
            "CREATE TABLE items (id BIGINT, name TEXT); \
             INSERT INTO items VALUES (1, 'a'), (1, 'b'), (2, 'c');",
        )
        .await;
    let count = |id: &str| {
        format!(
            "[[rule]]\nid = \"{id}\"\ntitle = \"t\"\nseverity = \"low\"\nsource = \"left\"\n\
             [rule.detector]\nkind = \"row-count\"\ntable = \"items\"\nmax = 10\n"
        )
    };
    let rules = format!(
        "[[rule]]\nid = \"items-agree\"\ntitle = \"t\"\nseverity = \"low\"\nsource = \"left\"\n\
         [rule.detector]\nkind = \"reconcile\"\nmode = \"join\"\ncolumns = [\"name\"]\n\
         left = {{ table = \"items\" }}\nright = {{ source = \"right\", table = \"items\" }}\n\n{}\n{}\n{}",
        count("after-1"),
        count("after-2"),
        count("after-3")
    );
    let project = TestProject::with_sources(
        &[("left", &left.url), ("right", &right.url)],
        &[("rules.toml", &rules)],
    );
    let result = run_project(&project.path()).await;
    let error = result.error("items-agree").expect("the rule fails");
    assert!(error.contains("not unique on the right side"), "{error}");
    for id in ["after-1", "after-2", "after-3"] {
        assert_eq!(result.error(id), None, "{id}");
        assert_eq!(result.keys(id), ["table=items"], "{id}");
    }
    let database = left.url.rsplit('/').next().unwrap().to_owned();
    let pool = sqlx::PgPool::connect(&admin).await.unwrap();
    let mut running: i64 = -1;
    for _ in 0..100 {
        running = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = $1 AND query LIKE 'COPY%'",
        )
        .bind(&database)
        .fetch_one(&pool)
        .await
        .unwrap();
        if running == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(running, 0, "a COPY of the stopped comparison still runs");
}

/// Differences in every other bucket of keys, far more runs of them than one condition per
/// run would take: `bisect` reads the differing buckets by a bitmap of them (SQL sides) or
/// filters them itself (SQLite), and finds exactly what `join` finds. Then 40,000 keys
/// 1,000 apart, most of them differing: buckets of 611 keys, more than half of them
/// differing, which two SQL sides split again (a second level) before reading rows.
#[tokio::test]
async fn many_scattered_differences_are_found_in_both_modes() {
    scattered_differences(20_000, 1, |i| i % 64 == 0).await;
    scattered_differences(40_000, 1000, |i| i % 8 != 0).await;
}

/// `count` rows a side, keys `step` apart; on the right, the rows `changed` says changed,
/// and one in 1,000 missing.
async fn scattered_differences(count: i64, step: i64, changed: fn(i64) -> bool) {
    let rows = |right: bool| {
        let values: Vec<String> = (1..=count)
            .filter(|i| !(right && i % 1000 == 500))
            .map(|i| {
                let v = if right && changed(i) {
                    "changed"
                } else {
                    "same"
                };
                format!("({}, '{v}')", i * step)
            })
            .collect();
        format!(
            "CREATE TABLE t (id BIGINT PRIMARY KEY, v VARCHAR(10)); INSERT INTO t VALUES {};",
            values.join(", ")
        )
    };
    let mut want: Vec<String> = (1..=count)
        .filter(|i| changed(*i) || i % 1000 == 500)
        .map(|i| format!("id={}", i * step))
        .collect();
    want.sort();
    let rule = |mode: &str| {
        format!(
            "[[rule]]\nid = \"scattered\"\ntitle = \"t\"\nseverity = \"low\"\nsource = \"a\"\n\
             [rule.detector]\nkind = \"reconcile\"\nmode = \"{mode}\"\ncolumns = [\"v\"]\n\
             left = {{ table = \"t\" }}\nright = {{ source = \"b\", table = \"t\" }}\n"
        )
    };
    let mut pairs = Vec::new();
    if let (Some(a), Some(b)) = (TestDb::postgres().await, TestDb::postgres().await) {
        pairs.push((a, b));
    }
    if let (Some(a), Some(b)) = (TestDb::postgres().await, TestDb::mysql().await) {
        pairs.push((a, b));
    }
    if let Some(b) = TestDb::postgres().await {
        pairs.push((TestDb::sqlite(), b));
    }
    for (left, right) in &pairs {
        let pair = format!("{}-{}, keys {step} apart", left.backend, right.backend);
        left.execute(&rows(false)).await;
        right.execute(&rows(true)).await;
        let mut results = Vec::new();
        for mode in MODES {
            let project = TestProject::with_sources(
                &[("a", &left.url), ("b", &right.url)],
                &[("rule.toml", &rule(mode))],
            );
            let result = run_project(&project.path()).await;
            assert_eq!(result.error("scattered"), None, "{pair}, {mode}");
            assert_eq!(result.keys("scattered"), want, "{pair}, {mode}");
            results.push(result);
        }
        // The same findings in the same order, with the same details.
        assert_eq!(results[0].findings, results[1].findings, "{pair}");
        assert_eq!(results[0].details, results[1].details, "{pair}");
    }
}
