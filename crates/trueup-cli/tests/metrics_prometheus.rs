//! The deploy files against Debian's real Prometheus programs: promtool's unit tests of the
//! alerting rules (the runbook's `for: 5m` included), and a real Prometheus on a free
//! loopback port scraping what `check --metrics-file` wrote for a real run on the demo shop
//! with planted problems: every query of the Grafana dashboard returns series, and the
//! deploy rules' `DataInconsistencyDetected` fires for the planted findings.
//!
//! Without `promtool` and `prometheus` these tests are skipped, saying so; with
//! `TRUEUP_REQUIRE_PROMETHEUS` set (scripts/test sets it) they fail instead.

mod common;
mod metrics_shop;
mod prometheus_server;

use std::path::{Path, PathBuf};
use std::process::Command;

use metrics_shop::{prometheus_program, shop};
use prometheus_server::{Prometheus, encode, serve_metrics};
use serde_json::Value;

fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(path)
}

#[test]
fn promtool_passes_the_alerting_rules_unit_tests() {
    if !prometheus_program("promtool") {
        return;
    }
    let rules = std::fs::read_to_string(deploy("prometheus/trueup-rules.yml")).unwrap();
    // The runbook's alert, as the runbook writes it.
    assert!(
        rules.contains(
            "- alert: DataInconsistencyDetected\n        expr: data_integrity_check_failures > 0\n        for: 5m\n"
        ),
        "{rules}"
    );
    for args in [
        ["check", "rules", "trueup-rules.yml"],
        ["test", "rules", "trueup-rules.test.yml"],
    ] {
        let output = Command::new("promtool")
            .args(args)
            .current_dir(deploy("prometheus"))
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            output.status.success(),
            "promtool {}: {text}",
            args.join(" ")
        );
        assert!(text.contains("SUCCESS"), "{text}");
    }
}

/// Every query of the dashboard: each panel's targets' `expr`, rows' panels too.
fn dashboard_queries(dashboard: &Value) -> Vec<String> {
    fn collect(panels: &Value, out: &mut Vec<String>) {
        for panel in panels.as_array().into_iter().flatten() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = target["expr"].as_str() {
                    out.push(expr.to_owned());
                }
            }
            collect(&panel["panels"], out);
        }
    }
    let mut queries = Vec::new();
    collect(&dashboard["panels"], &mut queries);
    queries
}

#[test]
fn a_real_prometheus_answers_every_dashboard_query_and_fires_the_runbook_alert() {
    if !prometheus_program("prometheus") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let project = shop(&tmp.path().join("shop"), 300);
    let file = tmp.path().join("trueup.prom");
    // A real run with planted findings (and a failing rule: errors have series too).
    let (code, _, stderr) = common::in_project(
        &project,
        &[
            "--quiet",
            "check",
            "--schedule",
            "nightly",
            "--metrics-file",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(2), "{stderr}");
    let target = serve_metrics(std::fs::read_to_string(&file).unwrap());

    // The deploy rules as they are, but for the runbook alert's `for: 5m`, made 2s so that
    // the test need not wait five minutes (promtool's unit tests above check the 5m).
    let rules = std::fs::read_to_string(deploy("prometheus/trueup-rules.yml")).unwrap();
    let marker = "expr: data_integrity_check_failures > 0\n        for: 5m";
    assert_eq!(rules.matches(marker).count(), 1, "{rules}");
    let rules = rules.replace(
        marker,
        "expr: data_integrity_check_failures > 0\n        for: 2s",
    );
    let prometheus_dir = tmp.path().join("prometheus");
    std::fs::create_dir(&prometheus_dir).unwrap();
    let prometheus = Prometheus::start(&prometheus_dir, target, &rules);
    prometheus.wait_for("the scraped metrics", |p| {
        !p.query("data_integrity_check_failures").is_empty()
    });

    // The schedule variable's query, then every panel's, with the variable at "All".
    let schedules = prometheus.api(&format!(
        "/api/v1/label/schedule/values?match[]={}",
        encode("trueup_runs_total")
    ));
    assert_eq!(schedules, serde_json::json!(["nightly"]));
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(deploy("grafana/trueup-data-quality.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(dashboard["title"], "Data Quality Dashboard");
    let queries = dashboard_queries(&dashboard);
    assert!(queries.len() >= 10, "{queries:?}");
    for query in &queries {
        let expr = query.replace("$schedule", ".*");
        assert!(
            !expr.contains('$'),
            "a variable the test does not fill: {expr}"
        );
        let series = prometheus.query(&expr);
        assert!(
            !series.is_empty(),
            "the dashboard's query returns no series: {expr}"
        );
    }
    let failing = prometheus.query("data_integrity_check_failures");
    assert_eq!(failing[0]["metric"]["schedule"], "nightly");
    assert_eq!(failing[0]["value"][1], "7", "{failing:?}");

    // The runbook alert becomes active (firing) through the rules API; the stale-audit
    // alert stays inactive after a run that just ended.
    let rule = |data: &Value, name: &str| -> Value {
        data["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("no rule {name}: {data}"))
    };
    prometheus.wait_for("DataInconsistencyDetected firing", |p| {
        let data = p.api("/api/v1/rules?type=alert");
        rule(&data, "DataInconsistencyDetected")["state"] == "firing"
    });
    let data = prometheus.api("/api/v1/rules?type=alert");
    let alert = rule(&data, "DataInconsistencyDetected");
    assert_eq!(alert["health"], "ok", "{alert}");
    assert_eq!(
        alert["alerts"][0]["labels"]["schedule"], "nightly",
        "{alert}"
    );
    assert_eq!(
        alert["alerts"][0]["labels"]["severity"], "critical",
        "{alert}"
    );
    assert_eq!(rule(&data, "TrueupAuditStale")["state"], "inactive");
    // The failing rule's error has its own alert, pending for its 15 minutes.
    let errors = rule(&data, "TrueupRuleErrors");
    assert_eq!(errors["health"], "ok", "{errors}");
    assert_eq!(errors["state"], "pending", "{errors}");
}
