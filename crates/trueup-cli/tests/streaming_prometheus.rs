//! The streaming rule pack (`rules/streaming/`) against a real Prometheus (Debian's
//! package) scraping a fixture exporter this test serves on loopback: planted consumer-group
//! lag and dead-letter growth among quiet series. The pack finds exactly the planted series;
//! a Prometheus that is down, an answer past `max-response` and more series than
//! `max-series` each fail their rule while the others run; a hostile label value is shown
//! escaped.
//!
//! Without `prometheus` the test is skipped, saying so; with `TRUEUP_REQUIRE_PROMETHEUS` set
//! (scripts/test sets it) it fails instead.

mod common;
mod metrics_shop;
mod prometheus_server;

use std::collections::BTreeSet;
use std::path::Path;

use metrics_shop::prometheus_program;
use prometheus_server::{Prometheus, free_port, serve_metrics_with};
use serde_json::Value;

/// A consumer group's name with a terminal escape in it: it must reach the terminal escaped.
const HOSTILE_GROUP: &str = "evil\x1b[31mgroup";

/// The exporter's `n`-th scrape: kafka-exporter's metric names, with
/// - lag: `orders-sync` on `orders` 9000 + 3000 = 12000 (planted: the sum is over 10000,
///   no partition is), `billing` on `payments` exactly 10000 (quiet: not above), `search`
///   25 (quiet), the hostile group 50000 (planted);
/// - offsets: `ecommerce-dlq` growing (planted), `orders-dead-letter` standing still
///   (quiet), `orders` growing but not a dead-letter topic (quiet).
fn exporter(n: u64) -> String {
    let hostile = HOSTILE_GROUP.replace('\\', "\\\\");
    format!(
        "# TYPE kafka_consumergroup_lag gauge\n\
         kafka_consumergroup_lag{{consumergroup=\"orders-sync\",topic=\"orders\",partition=\"0\"}} 9000\n\
         kafka_consumergroup_lag{{consumergroup=\"orders-sync\",topic=\"orders\",partition=\"1\"}} 3000\n\
         kafka_consumergroup_lag{{consumergroup=\"billing\",topic=\"payments\",partition=\"0\"}} 10000\n\
         kafka_consumergroup_lag{{consumergroup=\"search\",topic=\"products\",partition=\"0\"}} 25\n\
         kafka_consumergroup_lag{{consumergroup=\"{hostile}\",topic=\"orders\",partition=\"0\"}} 50000\n\
         # TYPE kafka_topic_partition_current_offset gauge\n\
         kafka_topic_partition_current_offset{{topic=\"ecommerce-dlq\",partition=\"0\"}} {dlq}\n\
         kafka_topic_partition_current_offset{{topic=\"orders-dead-letter\",partition=\"0\"}} 7\n\
         kafka_topic_partition_current_offset{{topic=\"orders\",partition=\"0\"}} {orders}\n",
        dlq = 100 + n,
        orders = 5000 + 10 * n,
    )
}

/// Rules beside the pack's: the pack's lag query against a source that is down, and the
/// raw series with bounds they exceed (8 series of about 170 bytes each, 5 of lag).
const EXTRA_RULES: &str = r#"
[[rule]]
id = "test.lag-on-a-down-server"
title = "Lag, asked of a Prometheus that is not there"
severity = "high"
source = "down"
[rule.detector]
kind = "promql"
query = "sum by (consumergroup, topic) (kafka_consumergroup_lag) > 10000"
key = ["consumergroup", "topic"]

[[rule]]
id = "test.answer-too-large"
title = "Every kafka series, with room for less"
severity = "low"
source = "metrics"
[rule.detector]
kind = "promql"
query = '{__name__=~"kafka_.*"}'
max-response = "1KiB"

[[rule]]
id = "test.too-many-series"
title = "Every lag series, at most two"
severity = "low"
source = "metrics"
[rule.detector]
kind = "promql"
query = "kafka_consumergroup_lag"
max-series = 2
"#;

fn pack_file(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../rules/streaming")
        .join(name);
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn the_streaming_pack_finds_exactly_the_planted_series_and_a_down_prometheus_fails_its_rule_only() {
    if !prometheus_program("prometheus") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let target = serve_metrics_with(exporter);
    let prometheus_dir = tmp.path().join("prometheus");
    std::fs::create_dir(&prometheus_dir).unwrap();
    let prometheus = Prometheus::start(&prometheus_dir, target, "groups: []\n");
    // Two scrapes of the growing offset make an increase; the lag series are there by then.
    let growth = r#"sum by (topic) (increase(kafka_topic_partition_current_offset{topic=~".*(dlq|dead-letter).*"}[10m])) > 0"#;
    prometheus.wait_for("the dead-letter topic growing", |p| {
        !p.query(growth).is_empty()
    });
    assert_eq!(prometheus.query("kafka_consumergroup_lag").len(), 5);

    // The project: the pack as it is, its source `metrics` the real Prometheus; `down` a
    // closed port.
    let project = tmp.path().join("project");
    std::fs::create_dir_all(project.join("rules")).unwrap();
    std::fs::write(
        project.join("trueup.toml"),
        format!(
            "rules = [\"rules\"]\n\
             [sources.metrics]\nurl = \"prometheus://127.0.0.1:{}\"\n\
             [sources.down]\nurl = \"prometheus://127.0.0.1:{}\"\n",
            prometheus.port,
            free_port()
        ),
    )
    .unwrap();
    for name in ["consumer-group-lag.toml", "dead-letter-growth.toml"] {
        std::fs::write(project.join("rules").join(name), pack_file(name)).unwrap();
    }
    std::fs::write(project.join("rules/extra.toml"), EXTRA_RULES).unwrap();
    let toml = project.join("trueup.toml");

    let run = common::run(common::trueup().arg("--project").arg(&toml).args([
        "check",
        "--format",
        "json",
        "--no-record",
    ]));
    // A rule errored: exit 2, and the other rules reported all the same.
    assert_eq!(run.code, Some(2), "{}", run.all());
    let json = run.json();
    let found: BTreeSet<(String, String)> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["rule"].as_str().unwrap().to_owned(), f["key"].to_string()))
        .collect();
    let expected: BTreeSet<(String, String)> = [
        (
            "streaming.consumer-group-lag",
            serde_json::json!({"consumergroup": "orders-sync", "topic": "orders"}),
        ),
        (
            "streaming.consumer-group-lag",
            serde_json::json!({"consumergroup": HOSTILE_GROUP, "topic": "orders"}),
        ),
        (
            "streaming.dead-letter-growth",
            serde_json::json!({"topic": "ecommerce-dlq"}),
        ),
    ]
    .into_iter()
    .map(|(rule, key)| (rule.to_owned(), key.to_string()))
    .collect();
    assert_eq!(found, expected, "{}", run.all());
    // The value is in the detail and the message.
    let lag = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"]["consumergroup"] == "orders-sync")
        .unwrap();
    assert_eq!(lag["detail"]["value"], 12000.0, "{lag}");
    assert_eq!(lag["detail"]["labels"], "{}", "{lag}");
    assert_eq!(
        lag["message"],
        "consumer group orders-sync is 12000 events behind on orders"
    );

    let rule = |id: &str| -> Value {
        json["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("no rule {id}: {}", run.all()))
            .clone()
    };
    assert_eq!(rule("streaming.consumer-group-lag")["error"], Value::Null);
    assert_eq!(rule("streaming.dead-letter-growth")["error"], Value::Null);
    let error = |id: &str| rule(id)["error"].to_string();
    let down = error("test.lag-on-a-down-server");
    assert!(
        down.contains("source `down`") && down.contains("cannot connect"),
        "{down}"
    );
    let large = error("test.answer-too-large");
    assert!(
        large.contains("larger than the rule's `max-response` (1KiB)"),
        "{large}"
    );
    let many = error("test.too-many-series");
    assert!(
        many.contains("returned 5 series, more than the rule's `max-series` (2)"),
        "{many}"
    );

    // Human output: the hostile label value goes through the output's escaping.
    let human = common::run(common::trueup().arg("--project").arg(&toml).args([
        "check",
        "--no-record",
        "--rule",
        "streaming.*",
    ]));
    assert_eq!(human.code, Some(1), "{}", human.all());
    assert!(!human.stdout.contains('\x1b'), "{}", human.all());
    assert!(
        human.stdout.contains(r"consumergroup=evil\e[31mgroup"),
        "{}",
        human.all()
    );
}
