//! The `evict` repair of `cache-consistency` rules through plan, apply and undo, against a
//! real redis-server of each test's own and real databases: the round trip restores every
//! value and expiry exactly; a key written between plan and apply keeps the writer's value;
//! a second apply changes nothing; undo refuses a key cached anew unless forced; a server
//! killed in the middle of an apply comes back with whole batches only, each journaled; an
//! edited plan is refused; plan reads only.

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use support::redis::{self, Client, PrivateServer};
use support::repair::{apply, plan_to};
use support::{TestDb, TestProject, run_project};
use trueup_core::cancel::Cancel;
use trueup_core::check::Selection;
use trueup_core::load::Project;
use trueup_core::repair::{self, ApplyOptions, Skip};

const RULE: &str = r#"[[rule]]
id = "cache.customers"
title = "Cached customers that disagree with the database"
severity = "high"
source = "cache"

[rule.detector]
kind = "cache-consistency"
key-template = "customer:{id}"
fields = ["email", "name"]
require-cached = true
require-ttl = true
orphans = { pattern = "customer:*", count = 100 }

[rule.detector.rows]
source = "shop"
table = "customers"

[rule.repair]
strategy = "evict"
"#;

fn json(id: i64, email: &str) -> Vec<u8> {
    format!(r#"{{"id":{id},"email":"{email}","name":"Customer {id}"}}"#).into_bytes()
}

/// The keys to evict that [`setup`] plants.
const TARGETS: [&str; 8] = [
    "customer:3",
    "customer:17",
    "customer:18",
    "customer:40",
    "customer:41",
    "customer:9001",
    "customer:9002",
    "customer:abc",
];

/// `rows` customers in the database, each cached with a TTL, then planted: stale values
/// (3 with a TTL, 17 without, 18 far in the future), unreadable (40 not JSON, 41 a hash),
/// orphans (9001, 9002, abc), missing (5, 6: nothing to evict) and one right key without a
/// TTL (7: `no-ttl`, not evicted by default).
async fn setup(db: &TestDb, cache: &str, rows: i64) {
    let values: Vec<String> = (1..=rows)
        .map(|i| format!("({i}, 'c{i}@example.com', 'Customer {i}')"))
        .collect();
    db.execute(&format!(
        "CREATE TABLE customers (id BIGINT PRIMARY KEY, email TEXT, name TEXT);
         INSERT INTO customers VALUES {};",
        values.join(", ")
    ))
    .await;
    let mut client = Client::connect(cache);
    client.pipe((1..=rows).map(|i| {
        redis::set(
            &format!("customer:{i}"),
            &json(i, &format!("c{i}@example.com")),
            Some(3600),
        )
    }));
    let s = |args: &[&str]| {
        args.iter()
            .map(|a| a.as_bytes().to_vec())
            .collect::<Vec<_>>()
    };
    client.pipe([
        redis::set("customer:3", &json(3, "old3@example.com"), Some(600)),
        redis::set("customer:17", &json(17, "old17@example.com"), None),
        redis::set(
            "customer:18",
            &json(18, "old18@example.com"),
            Some(86_400 * 30),
        ),
        redis::set("customer:40", b"{\"id\":40,", Some(3600)),
        s(&["DEL", "customer:41"]),
        s(&["HSET", "customer:41", "email", "c41@example.com"]),
        s(&["EXPIRE", "customer:41", "1200"]),
        redis::set("customer:9001", &json(9001, "x@example.com"), Some(3600)),
        redis::set("customer:9002", &json(9002, "y@example.com"), None),
        redis::set("customer:abc", b"{}", Some(3600)),
        s(&["DEL", "customer:5", "customer:6"]),
        s(&["PERSIST", "customer:7"]),
    ]);
}

/// Each key's `DUMP` and `PEXPIRETIME`, exactly as the server has them.
fn images(client: &mut Client, keys: &[&str]) -> BTreeMap<String, (Option<Vec<u8>>, i64)> {
    keys.iter()
        .map(|key| {
            let dump = match client.cmd(&["DUMP", key]) {
                redis::Reply::Bulk(b) => Some(b),
                _ => None,
            };
            let at = client.cmd(&["PEXPIRETIME", key]).int().unwrap();
            ((*key).to_owned(), (dump, at))
        })
        .collect()
}

fn project_of(cache: &str, db: &TestDb, rule: &str) -> TestProject {
    TestProject::with_sources(
        &[("cache", cache), ("shop", &db.url)],
        &[("cache.toml", rule)],
    )
}

fn options(batch_size: usize) -> ApplyOptions {
    ApplyOptions {
        batch_size,
        ..ApplyOptions::default()
    }
}

async fn undo(project: &Path, id: i64, force: bool) -> trueup_core::Result<repair::UndoReport> {
    let project = Project::load(project).unwrap();
    repair::undo(&project, "cache", id, force, &Cancel::new()).await
}

fn planned_keys(plan: &Path) -> Vec<String> {
    std::fs::read_to_string(plan)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            Some(v.get("target")?["key"][0].as_str()?.to_owned())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_apply_undo_restores_every_value_and_expiry_exactly() {
    let Some(server) = PrivateServer::start() else {
        return;
    };
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    setup(&db, &server.url, 100).await;
    let mut client = Client::connect(&server.url);
    let all: Vec<String> = (1..=100)
        .map(|i| format!("customer:{i}"))
        .chain(["customer:9001", "customer:9002", "customer:abc"].map(String::from))
        .collect();
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let before = images(&mut client, &all);

    let project = project_of(&server.url, &db, RULE);
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.jsonl");
    let summary = plan_to(&project.path(), &Selection::default(), &plan).await;
    assert!(summary.refused.is_empty(), "{:?}", summary.refused);
    assert_eq!(summary.rules[0].end.targets, 8);
    // Stale, unreadable and orphaned keys: never the missing ones, nor the right key
    // without a TTL.
    let mut keys = planned_keys(&plan);
    keys.sort();
    let mut expected: Vec<String> = TARGETS.iter().map(|k| (*k).to_owned()).collect();
    expected.sort();
    assert_eq!(keys, expected);

    // A dry run reads and counts, and writes nothing.
    let mut dry = options(3);
    dry.dry_run = true;
    let report = apply(&project.path(), &plan, &dry).await.unwrap();
    assert_eq!(report.rules[0].repaired, 8);
    assert_eq!(images(&mut client, &all), before);
    assert_eq!(client.cmd(&["EXISTS", "trueup:repairs"]).int(), Some(0));

    let report = apply(&project.path(), &plan, &options(3)).await.unwrap();
    assert!(!report.failed(), "{report:?}");
    let rule = &report.rules[0];
    assert_eq!((rule.repaired, rule.rows), (8, 8));
    let id = rule.repair.expect("a repair id");
    for key in TARGETS {
        assert_eq!(client.cmd(&["EXISTS", key]).int(), Some(0), "{key}");
    }
    assert_eq!(
        client.cmd(&["HLEN", &format!("trueup:journal:{id}")]).int(),
        Some(8)
    );
    // The others are as they were.
    let untouched: Vec<&str> = all
        .iter()
        .copied()
        .filter(|k| !TARGETS.contains(k))
        .collect();
    let now = images(&mut client, &untouched);
    assert!(untouched.iter().all(|k| now[*k] == before[*k]));

    // Detection afterwards: the evicted keys of rows are missing (the application refills
    // them), nothing stale, unreadable or orphaned is left.
    let result = run_project(&project.path()).await;
    let mut found = result.keys("cache.customers");
    found.sort();
    assert_eq!(
        found,
        [
            "id=17", "id=18", "id=3", "id=40", "id=41", "id=5", "id=6", "id=7"
        ]
    );

    // `repairs` lists it, from Redis.
    let listed = repair::list(&Project::load(&project.path()).unwrap(), Some("cache"))
        .await
        .unwrap();
    let repairs = listed[0].1.as_ref().unwrap();
    assert_eq!(repairs[0].id, id);
    assert_eq!(
        (repairs[0].status.as_str(), repairs[0].rows),
        ("complete", 8)
    );

    let undone = undo(&project.path(), id, false).await.unwrap();
    assert!(undone.complete, "{undone:?}");
    assert_eq!((undone.restored, undone.expired), (8, 0));
    assert_eq!(
        images(&mut client, &all),
        before,
        "every value and expiry as it was"
    );
    // Undone once only.
    let again = undo(&project.path(), id, false).await.unwrap_err();
    assert!(again.to_string().contains("already undone"), "{again}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_written_between_plan_and_apply_keeps_the_writers_value() {
    let Some(server) = PrivateServer::start() else {
        return;
    };
    let db = TestDb::sqlite();
    setup(&db, &server.url, 50).await;
    let project = project_of(&server.url, &db, RULE);
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.jsonl");
    plan_to(&project.path(), &Selection::default(), &plan).await;
    let mut client = Client::connect(&server.url);
    // The application writes two planned keys: one with another value, one anew with the
    // same stale value (its value is what the plan approved, so it is evicted).
    client.cmd(&[
        "SET",
        "customer:3",
        "{\"id\":3,\"email\":\"new@example.com\"}",
    ]);
    client.cmd(&["DEL", "customer:9002"]);
    let report = apply(&project.path(), &plan, &options(2)).await.unwrap();
    let rule = &report.rules[0];
    assert_eq!(rule.repaired, 6);
    assert_eq!(rule.skipped.get(&Skip::Changed), Some(&1));
    assert_eq!(rule.skipped.get(&Skip::Gone), Some(&1));
    assert_eq!(
        client.cmd(&["GET", "customer:3"]).text().unwrap(),
        "{\"id\":3,\"email\":\"new@example.com\"}"
    );

    // Applying the plan again changes nothing: its keys are evicted already.
    let again = apply(&project.path(), &plan, &options(2)).await.unwrap();
    let rule = &again.rules[0];
    assert_eq!((rule.repaired, rule.rows, rule.repair), (0, 0, None));
    assert_eq!(rule.skipped.get(&Skip::AlreadyApplied), Some(&6));
    assert_eq!(rule.skipped.get(&Skip::Changed), Some(&1));
    let listed = repair::list(&Project::load(&project.path()).unwrap(), Some("cache"))
        .await
        .unwrap();
    assert_eq!(listed[0].1.as_ref().unwrap().len(), 1, "no second repair");
}

#[tokio::test(flavor = "multi_thread")]
async fn undo_refuses_a_key_cached_anew_unless_forced() {
    let Some(server) = PrivateServer::start() else {
        return;
    };
    let db = TestDb::sqlite();
    setup(&db, &server.url, 50).await;
    let mut client = Client::connect(&server.url);
    let before = images(&mut client, &TARGETS);
    let project = project_of(&server.url, &db, RULE);
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.jsonl");
    plan_to(&project.path(), &Selection::default(), &plan).await;
    let report = apply(&project.path(), &plan, &options(500)).await.unwrap();
    let id = report.rules[0].repair.unwrap();
    // The application caches customer 17 anew, right this time.
    let fresh = json(17, "c17@example.com");
    client.pipe([redis::set("customer:17", &fresh, Some(60))]);

    let refused = undo(&project.path(), id, false).await.unwrap();
    assert!(!refused.complete);
    assert_eq!(refused.restored, 0, "nothing of that page was restored");
    assert_eq!(refused.conflicts.len(), 1);
    assert_eq!(refused.conflicts[0].key, serde_json::json!(["customer:17"]));
    assert_eq!(
        client
            .cmd(&["GET", "customer:17"])
            .text()
            .unwrap()
            .as_bytes(),
        fresh
    );
    assert_eq!(client.cmd(&["EXISTS", "customer:3"]).int(), Some(0));

    let forced = undo(&project.path(), id, true).await.unwrap();
    assert!(forced.complete, "{forced:?}");
    assert_eq!(forced.restored, 8);
    assert_eq!(images(&mut client, &TARGETS), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redis_killed_mid_apply_keeps_whole_batches_each_journaled() {
    let Some(mut server) = PrivateServer::start_persistent() else {
        return;
    };
    let db = TestDb::sqlite();
    db.execute("CREATE TABLE customers (id BIGINT PRIMARY KEY, email TEXT, name TEXT);")
        .await;
    // 4,000 orphans: no row has them.
    let mut client = Client::connect(&server.url);
    client
        .pipe((1..=4000).map(|i| redis::set(&format!("customer:{i}"), &json(i, "x"), Some(3600))));
    let project = project_of(&server.url, &db, RULE);
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.jsonl");
    let summary = plan_to(&project.path(), &Selection::default(), &plan).await;
    assert_eq!(summary.rules[0].end.targets, 4000);

    let path = project.path();
    let plan_path = plan.clone();
    // apply's future stays on one thread: it runs on a runtime of its own.
    let applying = std::thread::spawn(move || {
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(apply(&path, &plan_path, &options(10)))
    });
    let mut watcher = Client::connect(&server.url);
    assert!(watcher.wait_for_calls("exec", 5), "the apply did not start");
    server.kill();
    let report = applying.join().unwrap().unwrap();
    let rule = &report.rules[0];
    assert!(report.failed());
    let error = rule.error.as_deref().unwrap();
    assert!(error.contains("Redis at 127.0.0.1:"), "{error}");
    assert!(rule.repaired < 4000);

    server.restart();
    let mut client = Client::connect(&server.url);
    let journal = "trueup:journal:1";
    let journaled = client.cmd(&["HLEN", journal]).int().unwrap();
    assert!(journaled >= 50, "{journaled}");
    assert_eq!(journaled % 10, 0, "whole batches only: {journaled}");
    let mut gone = 0;
    for i in 1..=4000 {
        let key = format!("customer:{i}");
        let in_journal = client.cmd(&["HEXISTS", journal, &key]).int() == Some(1);
        let exists = client.cmd(&["EXISTS", &key]).int() == Some(1);
        assert_ne!(in_journal, exists, "{key}: evicted exactly when journaled");
        gone += i64::from(!exists);
    }
    assert_eq!(gone, journaled);
    // The repair is still `running` (its server died), and undo puts every key back.
    let listed = repair::list(&Project::load(&project.path()).unwrap(), Some("cache"))
        .await
        .unwrap();
    let repairs = listed[0].1.as_ref().unwrap();
    assert_eq!(
        (repairs[0].status.as_str(), repairs[0].rows),
        ("running", journaled)
    );
    let undone = undo(&project.path(), 1, false).await.unwrap();
    assert!(undone.complete);
    assert_eq!(i64::try_from(undone.restored).unwrap(), journaled);
    // The keys, and trueup's: the repairs, their counter, the two journals.
    assert_eq!(client.cmd(&["DBSIZE"]).int(), Some(4000 + 4));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_edited_plan_is_refused_and_plan_reads_only() {
    let Some(server) = PrivateServer::start() else {
        return;
    };
    let db = TestDb::sqlite();
    setup(&db, &server.url, 50).await;
    let mut client = Client::connect(&server.url);
    client.cmd(&["CONFIG", "RESETSTAT"]);
    let project = project_of(&server.url, &db, RULE);
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.jsonl");
    plan_to(&project.path(), &Selection::default(), &plan).await;
    // Plan sent reads only (and the test's own INFO).
    let stats = client.cmd(&["INFO", "commandstats"]).text().unwrap();
    let sent: Vec<&str> = stats
        .lines()
        .filter_map(|l| l.strip_prefix("cmdstat_")?.split(':').next())
        .collect();
    for command in &sent {
        assert!(
            [
                "get",
                "pttl",
                "scan",
                "dump",
                "info",
                "ping",
                "config|resetstat"
            ]
            .contains(command),
            "plan sent {command}: {sent:?}"
        );
    }

    // A key added to the plan by hand.
    let text = std::fs::read_to_string(&plan).unwrap();
    let edited = text.replacen("\"key\":[\"customer:3\"]", "\"key\":[\"customer:1\"]", 1);
    assert_ne!(edited, text);
    let bad = dir.path().join("edited.jsonl");
    std::fs::write(&bad, edited).unwrap();
    let err = apply(&project.path(), &bad, &options(10))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("changed after trueup wrote it"),
        "{err}"
    );
    assert_eq!(client.cmd(&["EXISTS", "customer:1"]).int(), Some(1));
    assert_eq!(client.cmd(&["EXISTS", "customer:3"]).int(), Some(1));

    // `max-rows` below the count refuses the rule; `--max-rows` allows it.
    let limited = project_of(
        &server.url,
        &db,
        &RULE.replace("strategy = \"evict\"", "strategy = \"evict\"\nmax-rows = 5"),
    );
    let summary = plan_to(&limited.path(), &Selection::default(), &plan).await;
    assert!(
        summary.rules[0]
            .end
            .refused
            .as_deref()
            .unwrap()
            .contains("max-rows")
    );
    let report = apply(&limited.path(), &plan, &options(10)).await.unwrap();
    assert!(report.failed() && report.rules.is_empty());
    assert_eq!(client.cmd(&["EXISTS", "customer:3"]).int(), Some(1));
    let mut more = options(10);
    more.max_rows = Some(8);
    let report = apply(&limited.path(), &plan, &more).await.unwrap();
    assert_eq!(report.rules[0].repaired, 8);
}
