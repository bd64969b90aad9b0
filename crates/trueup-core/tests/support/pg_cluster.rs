//! A private PostgreSQL primary and its hot standby, made from the server binaries on this
//! machine for one test: what only a server of its own can show (a standby, replication
//! conflicts on it, its lag) without touching the shared test server. Both are stopped
//! and deleted when the [`Pair`] is dropped.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The folder of `initdb`, `pg_ctl` and `pg_basebackup`: `TRUEUP_TEST_PG_BIN` (exported by
/// `scripts/test`), else the newest `/usr/lib/postgresql/*/bin`, else `pg_config --bindir`.
pub fn bin_dir() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("TRUEUP_TEST_PG_BIN") {
        return Some(PathBuf::from(bin));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    let output = Command::new("pg_config").arg("--bindir").output().ok()?;
    let bin = PathBuf::from(String::from_utf8(output.stdout).ok()?.trim());
    bin.join("initdb").exists().then_some(bin)
}

/// A primary and a hot standby streaming from it, each on a free port of 127.0.0.1, user
/// `postgres` without a password.
pub struct Pair {
    bin: PathBuf,
    /// `postgres` when the tests run as root (the server refuses to), else nobody.
    run_as: Option<String>,
    dir: tempfile::TempDir,
    pub primary_port: u16,
    pub standby_port: u16,
    /// The standby's `cluster_name`, which is its `application_name` on the primary.
    pub standby_name: &'static str,
}

impl Pair {
    /// Starts both servers with the binaries in `bin`; the standby cancels a query that
    /// conflicts with replay at once (`max_standby_streaming_delay = 0`).
    pub fn start(bin: &Path) -> Pair {
        let run_as = is_root().then(|| "postgres".to_owned());
        let dir = tempfile::tempdir().expect("temp dir");
        let pair = Pair {
            bin: bin.to_owned(),
            run_as,
            dir,
            primary_port: free_port(),
            standby_port: free_port(),
            standby_name: "health_standby",
        };
        if pair.run_as.is_some() {
            pair.tool("chown", &["-R", "postgres:", &pair.path("")], false);
        }
        let primary = pair.path("primary");
        pair.pg(
            "initdb",
            &[
                "-D",
                &primary,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        );
        pair.start_server(&primary, pair.primary_port, &[]);
        let standby = pair.path("standby");
        let port = pair.primary_port.to_string();
        pair.pg(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-D",
                &standby,
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
            ],
        );
        let name = format!("cluster_name={}", pair.standby_name);
        pair.start_server(
            &standby,
            pair.standby_port,
            &[
                "-c",
                "hot_standby=on",
                "-c",
                "max_standby_streaming_delay=0",
                "-c",
                &name,
            ],
        );
        pair
    }

    /// The URL of database `db` on the primary.
    pub fn primary_url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.primary_port)
    }

    /// The URL of database `db` on the standby.
    pub fn standby_url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.standby_port)
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn start_server(&self, data: &str, port: u16, settings: &[&str]) {
        let mut options = vec![
            "-p".to_owned(),
            port.to_string(),
            "-k".to_owned(),
            self.path(""),
            "-c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off".to_owned(),
        ];
        options.extend(settings.iter().map(|s| (*s).to_owned()));
        let log = format!("{data}.log");
        self.pg(
            "pg_ctl",
            &[
                "-D",
                data,
                "-l",
                &log,
                "-w",
                "-o",
                &options.join(" "),
                "start",
            ],
        );
    }

    /// Runs one of the server's tools as the server's user; fails the test with its output.
    fn pg(&self, tool: &str, args: &[&str]) {
        let path = self.bin.join(tool).display().to_string();
        self.tool(&path, args, true);
    }

    fn tool(&self, program: &str, args: &[&str], as_server_user: bool) {
        let mut command = match (&self.run_as, as_server_user) {
            (Some(user), true) => {
                let mut command = Command::new("runuser");
                command.args(["-u", user, "--", program]);
                command
            }
            _ => Command::new(program),
        };
        let output = command
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|err| panic!("{program}: {err}"));
        assert!(
            output.status.success(),
            "{program} {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for data in ["standby", "primary"] {
            let data = self.path(data);
            let path = self.bin.join("pg_ctl").display().to_string();
            let mut command = match &self.run_as {
                Some(user) => {
                    let mut command = Command::new("runuser");
                    command.args(["-u", user, "--", &path]);
                    command
                }
                None => Command::new(&path),
            };
            let _ = command
                .args(["-D", &data, "-m", "immediate", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// A port of 127.0.0.1 that nothing listens on now.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("its address").port()
}
