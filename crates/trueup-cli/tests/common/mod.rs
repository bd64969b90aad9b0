//! What the CLI's integration tests share: running the real binary and reading what it
//! printed.

#![allow(dead_code)]

use std::process::{Command, Stdio};

use serde_json::Value;

/// What a run of `trueup` printed and how it exited.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Both streams, for assertion messages.
    pub fn all(&self) -> String {
        format!(
            "exit: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|err| panic!("stdout is not JSON ({err}):\n{}", self.all()))
    }
}

/// `trueup` with no colour, no terminal and no inherited project.
pub fn trueup() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_trueup"));
    command
        .env("NO_COLOR", "1")
        .env_remove("TRUEUP_PROJECT")
        .env_remove("CLICOLOR_FORCE")
        .stdin(Stdio::null());
    command
}

/// `trueup --project PROJECT ARGS…`: its exit code, stdout and stderr.
pub fn in_project(project: &std::path::Path, args: &[&str]) -> (Option<i32>, String, String) {
    let run = run(trueup().arg("--project").arg(project).args(args));
    (run.code, run.stdout, run.stderr)
}

pub fn run(command: &mut Command) -> Run {
    let output = command.output().expect("run trueup");
    let run = Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    assert!(
        !run.stderr.contains("panicked"),
        "trueup panicked:\n{}",
        run.all()
    );
    run
}

/// A project in a temp dir: `trueup.toml` with one source `db` at `url`, and the rule files
/// `(name, text)` in `rules/`.
pub fn project(url: &str, rule_files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("trueup.toml"),
        format!("rules = [\"rules\"]\n[sources.db]\nurl = \"{url}\"\n"),
    )
    .expect("write trueup.toml");
    std::fs::create_dir(dir.path().join("rules")).expect("rules dir");
    for (name, text) in rule_files {
        std::fs::write(dir.path().join("rules").join(name), text).expect("write a rule file");
    }
    dir
}

/// A copy of the `trueup` binary that any user may run, for tests that run it as `nobody`
/// (root reads everything): CI keeps the build directory under root's home, which other
/// users cannot enter. Made once per test process, in a temp dir that lives as long.
#[cfg(unix)]
pub fn binary_anyone_may_run() -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    static COPY: std::sync::OnceLock<(tempfile::TempDir, std::path::PathBuf)> =
        std::sync::OnceLock::new();
    COPY.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let binary = dir.path().join("trueup");
        std::fs::copy(env!("CARGO_BIN_EXE_trueup"), &binary).expect("copy trueup");
        std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).unwrap();
        (dir, binary)
    })
    .1
    .clone()
}
