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

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use metrics_shop::{prometheus_program, shop};
use serde_json::Value;

/// How long Prometheus may take to start, scrape and evaluate before a test fails.
const PATIENCE: Duration = Duration::from_secs(60);

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

/// A Prometheus this test started; stopped (killed, and waited for) when dropped.
struct Prometheus {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// Starts `prometheus` on a free loopback port with its storage in `dir`, scraping
    /// `target` every second and evaluating `rules` every second.
    fn start(dir: &Path, target: u16, rules: &str) -> Prometheus {
        std::fs::write(dir.join("rules.yml"), rules).unwrap();
        std::fs::write(
            dir.join("prometheus.yml"),
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 rule_files:\n  - rules.yml\n\
                 scrape_configs:\n  - job_name: trueup\n    static_configs:\n      - targets: ['127.0.0.1:{target}']\n"
            ),
        )
        .unwrap();
        let port = free_port();
        let log = dir.join("prometheus.log");
        let child = Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start prometheus");
        let prometheus = Prometheus { child, port, log };
        prometheus.wait_for("it to be ready", |p| {
            p.get("/-/ready").is_some_and(|(status, _)| status == 200)
        });
        prometheus
    }

    /// Polls `done` until it holds; fails after [`PATIENCE`] with Prometheus' log.
    fn wait_for(&self, what: &str, mut done: impl FnMut(&Prometheus) -> bool) {
        let started = Instant::now();
        while !done(self) {
            assert!(
                started.elapsed() < PATIENCE,
                "Prometheus did not show {what} within {PATIENCE:?}; its log:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// `GET path` on Prometheus: the status and the body; `None` when it does not answer.
    fn get(&self, path: &str) -> Option<(u16, String)> {
        http_get(self.port, path)
    }

    /// An API call's `data`; fails unless the API says `success`.
    fn api(&self, path: &str) -> Value {
        let (status, body) = self.get(path).expect("Prometheus answers");
        let reply: Value = serde_json::from_str(&body)
            .unwrap_or_else(|err| panic!("{path}: not JSON ({err}): {body}"));
        assert_eq!(
            (status, reply["status"].as_str()),
            (200, Some("success")),
            "{path}: {body}"
        );
        reply["data"].clone()
    }

    /// The series an instant query returns.
    fn query(&self, expr: &str) -> Vec<Value> {
        let data = self.api(&format!("/api/v1/query?query={}", encode(expr)));
        data["result"].as_array().cloned().unwrap_or_default()
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A minimal HTTP/1.0 GET on 127.0.0.1 (the tests add no HTTP client to the build).
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n"
    )
    .ok()?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).ok()?;
    let (head, body) = reply.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}

/// A query string's value, percent-encoded.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Serves `body` as the metrics of 127.0.0.1 on a free port, from a thread that lives as
/// long as the test process (each request is answered and its connection closed).
fn serve_metrics(body: String) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            // The request's head, up to its blank line (bounded).
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while head.len() < 16 * 1024 && !head.ends_with(b"\r\n\r\n") {
                match stream.read(&mut byte) {
                    Ok(1) => head.push(byte[0]),
                    _ => break,
                }
            }
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
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
