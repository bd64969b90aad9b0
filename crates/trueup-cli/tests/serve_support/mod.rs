//! What the `serve` tests share: `trueup serve` as a real process on a free loopback port
//! with its JSON log lines collected as they come, plain HTTP/1.1 GETs, and a webhook
//! receiver served by the test on loopback.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A running `trueup serve`.
pub struct Serve {
    pub child: Option<Child>,
    pub address: SocketAddr,
    logs: Arc<Mutex<Vec<Value>>>,
}

impl Serve {
    /// Starts `trueup --project PROJECT serve --listen 127.0.0.1:0 --log-format json` (and
    /// `extra`), waiting for it to say where it listens.
    pub fn start(project: &Path, extra: &[&str]) -> Serve {
        Serve::start_with_env(project, extra, &[])
    }

    /// [`Serve::start`] with environment variables set for the process.
    pub fn start_with_env(project: &Path, extra: &[&str], env: &[(&str, &str)]) -> Serve {
        let mut child = Command::new(env!("CARGO_BIN_EXE_trueup"))
            .arg("--project")
            .arg(project)
            .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
            .args(extra)
            .env("NO_COLOR", "1")
            .env_remove("TRUEUP_PROJECT")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start trueup serve");
        let stderr = child.stderr.take().expect("stderr");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let collected = Arc::clone(&logs);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let value = serde_json::from_str(&line)
                    .unwrap_or_else(|_| serde_json::json!({ "event": "not-json", "line": line }));
                collected.lock().unwrap().push(value);
            }
        });
        let mut serve = Serve {
            child: Some(child),
            address: "127.0.0.1:0".parse().unwrap(),
            logs,
        };
        let started = serve.wait_for(Duration::from_secs(30), |e| e["event"] == "serve.started");
        serve.address = started["address"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {started}"));
        serve
    }

    /// The log records so far.
    pub fn logs(&self) -> Vec<Value> {
        self.logs.lock().unwrap().clone()
    }

    /// The records of `event` so far.
    pub fn events(&self, event: &str) -> Vec<Value> {
        self.logs()
            .into_iter()
            .filter(|e| e["event"] == event)
            .collect()
    }

    /// Waits for a record that `matches`, failing (not hanging) after `limit`.
    pub fn wait_for(&self, limit: Duration, matches: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            if let Some(found) = self.logs().into_iter().find(|e| matches(e)) {
                return found;
            }
            if started.elapsed() > limit {
                panic!(
                    "not logged within {limit:?}; the logs:\n{}",
                    self.shown_logs()
                );
            }
            if let Some(child) = self.child.as_ref()
                && child.id() == 0
            {
                panic!("serve died");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `count` records of `event` were logged.
    pub fn wait_for_count(&self, event: &str, count: usize, limit: Duration) {
        let started = Instant::now();
        while self.events(event).len() < count {
            if started.elapsed() > limit {
                panic!(
                    "fewer than {count} `{event}` within {limit:?}; the logs:\n{}",
                    self.shown_logs()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn shown_logs(&self) -> String {
        self.logs()
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Sends `signal` to the process.
    pub fn signal(&self, signal: rustix::process::Signal) {
        let child = self.child.as_ref().expect("running");
        let pid = rustix::process::Pid::from_raw(i32::try_from(child.id()).expect("a pid"))
            .expect("a pid");
        rustix::process::kill_process(pid, signal).expect("signal trueup");
    }

    /// Waits for the process to exit: its exit code and how long it took; fails after `limit`.
    pub fn exit_within(&mut self, limit: Duration) -> (Option<i32>, Duration) {
        let mut child = self.child.take().expect("running");
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("wait for trueup") {
                // Let the reader thread take the last lines.
                std::thread::sleep(Duration::from_millis(100));
                return (status.code(), started.elapsed());
            }
            if started.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "trueup serve did not exit within {limit:?}; the logs:\n{}",
                    self.shown_logs()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `GET path`: status and body.
    pub fn get(&self, path: &str) -> (u16, String) {
        get(self.address, path)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A plain HTTP/1.1 GET with `Connection: close`: the status and the body.
pub fn get(address: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(5)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("read the answer");
    let (head, body) = response.split_once("\r\n\r\n").expect("a head and a body");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    (status, body.to_owned())
}

/// How a test's webhook receiver answers.
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    /// `500` to the first N requests, then `200`.
    FailFirst(usize),
    /// Reads the request and never answers.
    Hang,
}

/// A webhook receiver on a free loopback port; the bodies it was sent, with the time each
/// came.
pub struct Receiver {
    pub url: String,
    pub bodies: Arc<Mutex<Vec<(Instant, Value)>>>,
}

impl Receiver {
    pub fn start(answer: Answer) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a receiver");
        let url = format!("http://{}/hook/s3cret-path", listener.local_addr().unwrap());
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let received = Arc::clone(&bodies);
        std::thread::spawn(move || {
            let mut answered = 0;
            let mut held = Vec::new();
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let Some(body) = read_request(&mut stream) else {
                    continue;
                };
                received.lock().unwrap().push((Instant::now(), body));
                match answer {
                    Answer::Hang => held.push(stream),
                    Answer::FailFirst(failures) => {
                        let status = match answered < failures {
                            true => "500 Internal Server Error",
                            false => "200 OK",
                        };
                        answered += 1;
                        let _ = write!(
                            stream,
                            "HTTP/1.1 {status}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                        );
                    }
                }
            }
        });
        Receiver { url, bodies }
    }

    pub fn bodies(&self) -> Vec<(Instant, Value)> {
        self.bodies.lock().unwrap().clone()
    }

    /// Waits until `count` requests came, failing after `limit`.
    pub fn wait_for(&self, count: usize, limit: Duration) -> Vec<(Instant, Value)> {
        let started = Instant::now();
        loop {
            let bodies = self.bodies();
            if bodies.len() >= count {
                return bodies;
            }
            assert!(
                started.elapsed() < limit,
                "the receiver got {} request(s) within {limit:?}, not {count}",
                bodies.len()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// One request's JSON body (by its Content-Length).
fn read_request(stream: &mut TcpStream) -> Option<Value> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut length = 0;
    let mut first = String::new();
    reader.read_line(&mut first).ok()?;
    assert!(first.starts_with("POST /hook/s3cret-path "), "{first}");
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    serde_json::from_slice(&body).ok()
}

/// A project in a temp dir: `trueup.toml` with source `db` at `url`, `extra` appended
/// (schedules, `[serve]`, `[state]`), and the rule files in `rules/`.
pub fn project(url: &str, extra: &str, rule_files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("trueup.toml"),
        format!("rules = [\"rules\"]\n[sources.db]\nurl = \"{url}\"\n{extra}"),
    )
    .expect("write trueup.toml");
    std::fs::create_dir(dir.path().join("rules")).expect("rules dir");
    for (name, text) in rule_files {
        std::fs::write(dir.path().join("rules").join(name), text).expect("write a rule file");
    }
    dir
}

/// A SQLite database in `dir` with a table `t` of three rows; its URL.
pub async fn sqlite_source(dir: &Path) -> String {
    let path = dir.join("data.db");
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(options)
        .await
        .expect("sqlite");
    sqlx::raw_sql("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1), (2), (3);")
        .execute(&pool)
        .await
        .expect("create");
    pool.close().await;
    format!("sqlite://{}", path.display())
}

/// A scheduled run as the store recorded it (`schedule_runs`), times in Unix milliseconds.
#[derive(Debug, Clone)]
pub struct Scheduled {
    pub schedule: String,
    pub due: i64,
    pub started: i64,
    pub finished: Option<i64>,
    pub status: String,
    pub replica: String,
    pub run: Option<i64>,
}

/// Every scheduled run in the store at `url` (`sqlite://…` or `postgres://…`), oldest first.
pub async fn scheduled(url: &str) -> Vec<Scheduled> {
    use sqlx::Row;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url)
        .await
        .expect("open the state store");
    let rows = sqlx::query(
        "SELECT schedule, due_at, started_at, finished_at, status, replica, run_id \
         FROM schedule_runs ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .expect("read schedule_runs");
    pool.close().await;
    rows.iter()
        .map(|row| Scheduled {
            schedule: row.get("schedule"),
            due: row.get("due_at"),
            started: row.get("started_at"),
            finished: row.get("finished_at"),
            status: row.get("status"),
            replica: row.get("replica"),
            run: row.get("run_id"),
        })
        .collect()
}

/// The URL of the SQLite state store of the project in `dir`.
pub fn sqlite_store(dir: &Path) -> String {
    format!("sqlite://{}", dir.join(".trueup/state.db").display())
}
