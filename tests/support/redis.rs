//! Redis for tests: the server `scripts/test` starts (`TRUEUP_TEST_REDIS_URL`), a private
//! server a test may kill, and a small blocking RESP client that loads test data in
//! pipelined writes. Included by the integration tests of several crates next to `pg`
//! (`#[path = ...] mod redis;`).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU32, Ordering};

/// The test server's URL, or `None` (with a note) when there is none; fails instead when
/// `TRUEUP_REQUIRE_REDIS` is set, as `scripts/test` does.
pub fn url() -> Option<String> {
    super::pg::server_url("Redis", "TRUEUP_TEST_REDIS_URL", "TRUEUP_REQUIRE_REDIS")
}

/// A key prefix no other test of this process uses: tests share the server, not keys.
pub fn prefix(name: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "t{}-{}-{name}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// One reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Nil,
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    Array(Vec<Reply>),
}

impl Reply {
    pub fn text(&self) -> Option<String> {
        match self {
            Reply::Bulk(b) => Some(String::from_utf8_lossy(b).into_owned()),
            Reply::Status(s) => Some(s.clone()),
            _ => None,
        }
    }

    pub fn int(&self) -> Option<i64> {
        match self {
            Reply::Int(i) => Some(*i),
            _ => None,
        }
    }
}

/// A blocking connection for setting up and inspecting test data.
pub struct Client {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Client {
    /// Connects to `redis://host:port/db` (no password: test servers have none).
    pub fn connect(url: &str) -> Client {
        let rest = url.strip_prefix("redis://").expect("a redis:// URL");
        let (address, db) = rest.split_once('/').unwrap_or((rest, "0"));
        let writer = TcpStream::connect(address).expect("connect to Redis");
        let reader = BufReader::new(writer.try_clone().expect("clone the socket"));
        let mut client = Client { writer, reader };
        if !db.is_empty() && db != "0" {
            client.cmd(&["SELECT", db]);
        }
        client
    }

    /// One command; panics on an error reply.
    pub fn cmd(&mut self, args: &[&str]) -> Reply {
        let args: Vec<Vec<u8>> = args.iter().map(|a| a.as_bytes().to_vec()).collect();
        self.pipe(std::iter::once(args)).pop().expect("a reply")
    }

    /// How many times the server ran `command` (lowercase) since it started, from
    /// `INFO commandstats`.
    pub fn calls(&mut self, command: &str) -> u64 {
        let stats = self.cmd(&["INFO", "commandstats"]).text().unwrap();
        let prefix = format!("cmdstat_{command}:calls=");
        stats
            .lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .and_then(|rest| rest.split(',').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    /// Waits (up to 10 s) until the server has run `command` at least `times` times;
    /// whether it did.
    pub fn wait_for_calls(&mut self, command: &str, times: u64) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if self.calls(command) >= times {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        false
    }

    /// Many commands, written in chunks of 10,000 and their replies read after each
    /// chunk; panics on an error reply.
    pub fn pipe(&mut self, commands: impl IntoIterator<Item = Vec<Vec<u8>>>) -> Vec<Reply> {
        let mut replies = Vec::new();
        let mut buffer = Vec::new();
        let mut pending = 0;
        let mut commands = commands.into_iter().peekable();
        while commands.peek().is_some() {
            for args in commands.by_ref().take(10_000) {
                write!(buffer, "*{}\r\n", args.len()).unwrap();
                for arg in args {
                    write!(buffer, "${}\r\n", arg.len()).unwrap();
                    buffer.extend_from_slice(&arg);
                    buffer.extend_from_slice(b"\r\n");
                }
                pending += 1;
            }
            self.writer.write_all(&buffer).expect("write to Redis");
            buffer.clear();
            for _ in 0..pending {
                let reply = self.read();
                if let Reply::Error(e) = &reply {
                    panic!("Redis refused a test command: {e}");
                }
                replies.push(reply);
            }
            pending = 0;
        }
        replies
    }

    fn read(&mut self) -> Reply {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("read from Redis");
        let line = line.trim_end_matches("\r\n");
        let (kind, rest) = line.split_at(1);
        match kind {
            "+" => Reply::Status(rest.to_owned()),
            "-" => Reply::Error(rest.to_owned()),
            ":" => Reply::Int(rest.parse().unwrap()),
            "$" if rest == "-1" => Reply::Nil,
            "$" => {
                let mut value = vec![0; rest.parse::<usize>().unwrap() + 2];
                self.reader.read_exact(&mut value).unwrap();
                value.truncate(value.len() - 2);
                Reply::Bulk(value)
            }
            "*" if rest == "-1" => Reply::Nil,
            "*" => Reply::Array(
                (0..rest.parse::<usize>().unwrap())
                    .map(|_| self.read())
                    .collect(),
            ),
            other => panic!("not a RESP reply: {other}{rest}"),
        }
    }
}

/// `SET key value [EX seconds]` as a pipelined command.
pub fn set(key: &str, value: &[u8], ex: Option<u32>) -> Vec<Vec<u8>> {
    let mut args = vec![b"SET".to_vec(), key.as_bytes().to_vec(), value.to_vec()];
    if let Some(ex) = ex {
        args.extend([b"EX".to_vec(), ex.to_string().into_bytes()]);
    }
    args
}

/// A redis-server of the test's own, on a free port of 127.0.0.1, without persistence;
/// killed when dropped (or by [`PrivateServer::kill`]).
pub struct PrivateServer {
    pub url: String,
    child: std::process::Child,
    dir: tempfile::TempDir,
    program: &'static str,
    port: u16,
    persistent: bool,
}

impl PrivateServer {
    /// Starts one, or `None` (with a note, or a failure under `TRUEUP_REQUIRE_REDIS`)
    /// when the machine has no `redis-server`.
    pub fn start() -> Option<PrivateServer> {
        Self::start_with(false)
    }

    /// One that journals every write to its append-only file before it answers
    /// (`appendfsync always`), so that [`PrivateServer::restart`] after a
    /// [`PrivateServer::kill`] comes back with every write it acknowledged.
    pub fn start_persistent() -> Option<PrivateServer> {
        Self::start_with(true)
    }

    fn start_with(persistent: bool) -> Option<PrivateServer> {
        let program = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists());
        let Some(program) = program else {
            assert!(
                std::env::var_os("TRUEUP_REQUIRE_REDIS").is_none(),
                "TRUEUP_REQUIRE_REDIS is set but redis-server is not installed"
            );
            eprintln!("note: no redis-server: skipped; scripts/test installs it");
            return None;
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = spawn(program, port, dir.path(), persistent);
        Some(PrivateServer {
            url: format!("redis://127.0.0.1:{port}/0"),
            child,
            dir,
            program,
            port,
            persistent,
        })
    }

    /// Starts the server again on its port and directory (after [`PrivateServer::kill`]).
    pub fn restart(&mut self) {
        self.kill();
        self.child = spawn(self.program, self.port, self.dir.path(), self.persistent);
    }

    /// Kills the server at once (SIGKILL): its clients' connections break.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts redis-server and waits until it takes connections (and has loaded its data).
fn spawn(program: &str, port: u16, dir: &std::path::Path, persistent: bool) -> std::process::Child {
    let mut child = std::process::Command::new(program)
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .args(match persistent {
            true => ["--appendonly", "yes", "--appendfsync", "always"],
            false => ["--appendonly", "no", "--appendfsync", "everysec"],
        })
        .arg("--dir")
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start redis-server");
    for _ in 0..400 {
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) {
            // PING answers -LOADING while the append-only file is read back.
            let _ = stream.write_all(b"PING\r\n");
            let mut answer = [0u8; 5];
            if stream.read_exact(&mut answer).is_ok() && &answer == b"+PONG" {
                return child;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("redis-server did not start on port {port}");
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        self.kill();
    }
}
