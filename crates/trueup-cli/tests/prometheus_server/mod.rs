//! A real Prometheus for tests (Debian's `prometheus` package): started on a free loopback
//! port scraping a target every second, polled until it shows what a test waits for, and
//! stopped when dropped; and the tiny exporter a test serves for it to scrape.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long Prometheus may take to start, scrape and evaluate before a test fails.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// A Prometheus this test started; stopped (killed, and waited for) when dropped.
pub struct Prometheus {
    child: Child,
    pub port: u16,
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
    pub fn start(dir: &Path, target: u16, rules: &str) -> Prometheus {
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
    pub fn wait_for(&self, what: &str, mut done: impl FnMut(&Prometheus) -> bool) {
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
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        http_get(self.port, path)
    }

    /// An API call's `data`; fails unless the API says `success`.
    pub fn api(&self, path: &str) -> Value {
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
    pub fn query(&self, expr: &str) -> Vec<Value> {
        let data = self.api(&format!("/api/v1/query?query={}", encode(expr)));
        data["result"].as_array().cloned().unwrap_or_default()
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A minimal HTTP/1.0 GET on 127.0.0.1 (the tests add no HTTP client to the build).
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
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
pub fn encode(text: &str) -> String {
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
pub fn serve_metrics(body: String) -> u16 {
    serve_metrics_with(move |_| body.clone())
}

/// [`serve_metrics`] with the body of the `n`-th scrape (from 0) made by `body`: counters
/// that grow from scrape to scrape.
pub fn serve_metrics_with(body: impl Fn(u64) -> String + Send + 'static) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for (n, stream) in (0u64..).zip(listener.incoming()) {
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
            let body = body(n);
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
