//! The reading commands (`runs`, `show`, `diff`, `baseline accept`) on a state store the
//! user may read but not write: they open it read-only and change nothing in it. As root
//! permissions do not bite, so there the commands run as `nobody`.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

fn trueup_as_root(project: &Path, args: &[&str]) {
    let status = Command::new(env!("CARGO_BIN_EXE_trueup"))
        .arg("--quiet")
        .arg("--project")
        .arg(project)
        .args(args)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.code().is_some_and(|c| c <= 1), "{args:?}: {status}");
}

fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().expect("`id -u` runs");
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

/// Runs trueup as a user who may not write the store: `nobody` when the test runs as root.
fn trueup_reader(project: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let mut command = if is_root() {
        let mut command = Command::new("runuser");
        command
            .args(["-u", "nobody", "--"])
            .arg(common::binary_anyone_may_run());
        command
    } else {
        Command::new(env!("CARGO_BIN_EXE_trueup"))
    };
    let output = command
        .arg("--project")
        .arg(project)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("runuser runs (it is part of util-linux)");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Every reading command works and leaves the store's files as they were.
fn reads_without_writing(project: &Path, store_dir: &Path) {
    let files = || -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(store_dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
            .collect();
        files.sort();
        files
    };
    let before = files();
    for args in [
        &["runs"][..],
        &["runs", "--format", "json"],
        &["show", "last"],
        &["show", "last", "--format", "json"],
        &["diff"],
        &["diff", "--format", "json"],
        &["diff", "--format", "markdown"],
        &["baseline", "accept"],
    ] {
        let (code, stdout, stderr) = trueup_reader(project, args);
        assert_eq!(code, Some(0), "{args:?}: {stdout}{stderr}");
        assert!(!stderr.contains("readonly"), "{args:?}: {stderr}");
    }
    let (_, runs, _) = trueup_reader(project, &["runs", "--format", "json"]);
    let runs: serde_json::Value = serde_json::from_str(&runs).unwrap();
    assert_eq!(runs.as_array().map(Vec::len), Some(2), "{runs}");
    let baseline =
        std::fs::read_to_string(project.with_file_name("trueup.baseline.jsonl")).unwrap();
    assert!(baseline.lines().count() > 0, "{baseline}");
    assert!(
        before == files(),
        "a reading command changed the store's files"
    );
}

#[test]
fn reading_commands_open_a_store_they_may_not_write_read_only() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let status = Command::new(env!("CARGO_BIN_EXE_trueup"))
        .args(["--quiet", "demo", "--no-check", "--dir"])
        .arg(&dir)
        .status()
        .unwrap();
    assert!(status.success());
    let project = dir.join("trueup.toml");
    trueup_as_root(&project, &["check"]);
    trueup_as_root(&project, &["check"]);
    let store_dir = dir.join(".trueup");

    // The reader may read everything and write the project folder (for the baseline), but
    // neither the store's folder nor its files.
    chmod(tmp.path(), 0o755);
    chmod(&dir, 0o777);
    for entry in std::fs::read_dir(&dir).unwrap() {
        chmod(&entry.unwrap().path(), 0o755);
    }
    for entry in std::fs::read_dir(&store_dir).unwrap() {
        chmod(&entry.unwrap().path(), 0o444);
    }
    chmod(&store_dir, 0o555);

    // As `check` left it (with its `-wal` and `-shm` files), then with only the database
    // file, as after a checkpoint: the reader cannot create the `-shm` file then.
    reads_without_writing(&project, &store_dir);
    chmod(&store_dir, 0o755);
    for entry in std::fs::read_dir(&store_dir).unwrap() {
        chmod(&entry.unwrap().path(), 0o644);
    }
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let url = format!("sqlite://{}", store_dir.join("state.db").display());
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    });
    for name in ["state.db-wal", "state.db-shm"] {
        let _ = std::fs::remove_file(store_dir.join(name));
    }
    chmod(&store_dir.join("state.db"), 0o444);
    chmod(&store_dir, 0o555);
    reads_without_writing(&project, &store_dir);
    assert!(!store_dir.join("state.db-shm").exists());

    // Writing commands still say why they cannot.
    let (code, _, stderr) = trueup_reader(&project, &["gc", "--keep", "1"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("state store"), "{stderr}");

    // A project without a store: a clear word, not a new empty store.
    chmod(&store_dir, 0o755);
    std::fs::remove_dir_all(&store_dir).unwrap();
    let (code, _, stderr) = trueup_reader(&project, &["runs"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("no runs recorded yet"), "{stderr}");
    assert!(!store_dir.exists());
}
