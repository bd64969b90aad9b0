//! Odd files in a project, through the real binary: symbolic-link loops in a rules folder, a
//! file reached twice through links, FIFOs where a project, rule or plugin file should be, a
//! rule file and a plugin over their size limits and a rules folder that cannot be read.
//! Each ends with a clear error (or reads the file once); none may hang, so every run has a
//! deadline.
#![cfg(unix)]

mod common;

use std::io::Read;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Run, trueup};

/// Far longer than any of these runs takes; a run past it has hung.
const DEADLINE: Duration = Duration::from_secs(60);

const RULE: &str = r#"
[[rule]]
id = "orders.status"
title = "Unknown order status"
severity = "high"
[rule.detector]
kind = "accepted-values"
table = "orders"
column = "status"
values = ["PENDING"]
"#;

/// A project in a temp dir whose `trueup.toml` lists `rules`, with `rules/orders.toml`.
fn project(rules: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("trueup.toml"),
        format!("rules = {rules}\n[sources.db]\nurl = \"sqlite://db.sqlite\"\n"),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    std::fs::write(dir.path().join("rules/orders.toml"), RULE).unwrap();
    dir
}

/// `rules/plugin.toml`: a rule whose plugin is `rules/<plugin>`; its `plugin` at 7:10.
fn plugin_rule(dir: &Path, plugin: &str) {
    std::fs::write(
        dir.join("rules/plugin.toml"),
        format!(
            r#"[[rule]]
id = "orders.plugin"
title = "A plugin's check"
severity = "low"
[rule.detector]
kind = "plugin"
plugin = "{plugin}"
query = "SELECT id FROM orders"
key = ["id"]
"#
        ),
    )
    .unwrap();
}

fn mkfifo(path: &Path) {
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        path,
        rustix::fs::Mode::from_raw_mode(0o644),
    )
    .expect("mkfifo");
}

/// `trueup --project <dir>/trueup.toml validate --offline`.
fn validate(dir: &Path) -> Run {
    let mut command = trueup();
    command
        .arg("--project")
        .arg(dir.join("trueup.toml"))
        .args(["validate", "--offline"]);
    within_deadline(command)
}

/// Runs `command`, killing it and failing the test if it outlives [`DEADLINE`].
fn within_deadline(mut command: Command) -> Run {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start trueup");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).map(|_| text)
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        stderr.read_to_string(&mut text).map(|_| text)
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for trueup") {
            break status;
        }
        if started.elapsed() > DEADLINE {
            child.kill().expect("kill trueup");
            child.wait().expect("reap trueup");
            panic!("trueup still ran after {DEADLINE:?}: it hangs");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let run = Run {
        code: status.code(),
        stdout: out.join().unwrap().expect("read stdout"),
        stderr: err.join().unwrap().expect("read stderr"),
    };
    assert!(
        !run.stderr.contains("panicked"),
        "trueup panicked:\n{}",
        run.all()
    );
    run
}

#[test]
fn a_link_back_into_the_rules_folder_is_one_error_naming_it() {
    let dir = project(r#"["rules"]"#);
    std::fs::create_dir(dir.path().join("rules/sub")).unwrap();
    symlink("..", dir.path().join("rules/sub/back")).unwrap();
    let run = validate(dir.path());
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert_eq!(run.stderr.matches("links back").count(), 1, "{}", run.all());
    assert!(
        run.stderr.contains("rules/sub/back` links back to `"),
        "{}",
        run.all()
    );
    assert!(!run.stderr.contains("duplicate"), "{}", run.all());
    assert!(run.stderr.contains("1 problem(s) found"), "{}", run.all());
}

#[test]
fn links_to_their_own_folder_end_with_an_error_each() {
    for rules in [r#"["rules"]"#, r#"["rules/**/*.toml"]"#] {
        let dir = project(rules);
        symlink(".", dir.path().join("rules/l1")).unwrap();
        symlink(".", dir.path().join("rules/l2")).unwrap();
        let run = validate(dir.path());
        assert_eq!(run.code, Some(2), "{rules}: {}", run.all());
        for link in ["rules/l1` links back", "rules/l2` links back"] {
            assert_eq!(
                run.stderr.matches(link).count(),
                1,
                "{rules}: {}",
                run.all()
            );
        }
        assert!(
            run.stderr.contains("2 problem(s) found"),
            "{rules}: {}",
            run.all()
        );
    }
}

#[test]
fn a_rule_file_reached_through_links_is_read_once() {
    let dir = project(r#"["rules", "more/*.toml", "more"]"#);
    std::fs::create_dir(dir.path().join("more")).unwrap();
    std::fs::write(
        dir.path().join("more/items.toml"),
        RULE.replace("orders.status", "items.status"),
    )
    .unwrap();
    symlink("orders.toml", dir.path().join("rules/alias.toml")).unwrap();
    symlink("../more", dir.path().join("rules/more")).unwrap();
    let run = validate(dir.path());
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(
        run.stdout.contains("2 rules in 2 files are valid"),
        "{}",
        run.all()
    );
}

#[test]
fn a_fifo_as_a_rule_file_is_an_error_naming_it() {
    let dir = project(r#"["rules"]"#);
    mkfifo(&dir.path().join("rules/pipe.toml"));
    let run = validate(dir.path());
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(
        run.stderr
            .contains("rules/pipe.toml: it is a FIFO (named pipe), not a regular file"),
        "{}",
        run.all()
    );
}

#[test]
fn a_fifo_as_the_project_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    mkfifo(&dir.path().join("trueup.toml"));
    let run = validate(dir.path());
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(
        run.stderr.contains("trueup.toml") && run.stderr.contains("it is a FIFO (named pipe)"),
        "{}",
        run.all()
    );
}

#[test]
fn a_fifo_as_a_plugin_is_an_error_at_its_rule() {
    let dir = project(r#"["rules"]"#);
    mkfifo(&dir.path().join("rules/check.wasm"));
    plugin_rule(dir.path(), "check.wasm");
    let run = validate(dir.path());
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(
        run.stderr
            .contains("rules/plugin.toml:7:10: plugin `check.wasm`: cannot read")
            && run
                .stderr
                .contains("it is a FIFO (named pipe), not a regular file"),
        "{}",
        run.all()
    );
}

#[test]
fn a_rule_file_over_the_size_limit_is_an_error_naming_it() {
    let dir = project(r#"["rules"]"#);
    let mut text = RULE.replace("orders.status", "big.rule");
    let line = format!("# {}\n", "x".repeat(1000));
    while text.len() <= 16 << 20 {
        text.push_str(&line);
    }
    std::fs::write(dir.path().join("rules/big.toml"), text).unwrap();
    let run = validate(dir.path());
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(
        run.stderr.contains(
            "rules/big.toml: it is larger than 16MiB, the most trueup reads of such a file"
        ),
        "{}",
        run.all()
    );
}

#[test]
fn a_plugin_over_the_size_limit_is_an_error_at_its_rule() {
    let dir = project(r#"["rules"]"#);
    // Sparse: 65 MiB of zeros that take no room on disk.
    let wasm = std::fs::File::create(dir.path().join("rules/big.wasm")).unwrap();
    wasm.set_len(65 << 20).unwrap();
    plugin_rule(dir.path(), "big.wasm");
    let run = validate(dir.path());
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(
        run.stderr
            .contains("rules/plugin.toml:7:10: plugin `big.wasm`: cannot read")
            && run
                .stderr
                .contains("it is larger than 64MiB, the most trueup reads of such a file"),
        "{}",
        run.all()
    );
}

#[test]
fn an_unreadable_rules_folder_is_an_error_naming_it() {
    let dir = project(r#"["rules"]"#);
    let locked = dir.path().join("rules/locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::write(
        locked.join("hidden.toml"),
        RULE.replace("orders.status", "hidden.rule"),
    )
    .unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    let mut command = if rustix::process::geteuid().is_root() {
        // Root reads any folder: run as a user that cannot.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut command = Command::new("runuser");
        command
            .args(["-u", "nobody", "--"])
            .arg(common::binary_anyone_may_run())
            .env("NO_COLOR", "1")
            .env_remove("TRUEUP_PROJECT")
            .stdin(Stdio::null());
        command
    } else {
        trueup()
    };
    command
        .arg("--project")
        .arg(dir.path().join("trueup.toml"))
        .args(["validate", "--offline"]);
    let run = within_deadline(command);
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(
        run.stderr.contains("rules/locked`: Permission denied"),
        "{}",
        run.all()
    );
    assert!(run.stderr.contains("1 problem(s) found"), "{}", run.all());
}

#[test]
fn a_fifo_as_the_baseline_or_the_gitignore_is_an_error() {
    let dir = project(r#"["rules"]"#);
    mkfifo(&dir.path().join("trueup.baseline.jsonl"));
    let mut command = trueup();
    command
        .arg("--project")
        .arg(dir.path().join("trueup.toml"))
        .args(["check", "--baseline", "--no-record"]);
    let run = within_deadline(command);
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(
        run.stderr.contains("trueup.baseline.jsonl")
            && run.stderr.contains("it is a FIFO (named pipe)"),
        "{}",
        run.all()
    );

    let fresh = tempfile::tempdir().unwrap();
    mkfifo(&fresh.path().join(".gitignore"));
    let mut command = trueup();
    command.args(["init"]).arg(fresh.path());
    let run = within_deadline(command);
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(
        run.stderr.contains(".gitignore") && run.stderr.contains("it is a FIFO (named pipe)"),
        "{}",
        run.all()
    );
}
