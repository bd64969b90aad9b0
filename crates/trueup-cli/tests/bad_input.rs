//! Bad input, case by case: every folder under `tests/bad-input/` (repository root) is a
//! small project that is wrong in one way. Each runs through the real `trueup` binary in a
//! fresh temp dir, and what a user reads (exit code, stdout, stderr) is snapshot, one
//! snapshot per case: `snapshots/bad_input__<case>.snap`. Each case is its own test
//! (`cargo test -p trueup-cli --test bad_input -- <case>` runs one).
//!
//! A case folder holds:
//! - `trueup.toml` and `rules/` (either may be missing or empty on purpose);
//! - `command` (optional): the arguments after `--project <tmp>/trueup.toml`, split on
//!   whitespace (default: `validate`);
//! - `expect` (optional): lines the output must contain once the temp dir reads `[TMP]`
//!   (`#` starts a comment line). Cases about a malformed file list the `file:line:col` the
//!   message must point at.
//!
//! When `trueup.toml` mentions `shop.db`, the demo shop (SQLite, `ShopSpec::demo()`) is put
//! next to it. Whatever the case, trueup must exit 2, never panic and never print the
//! password `hunter2` that some fixtures put in URLs.
//!
//! New or changed output: `INSTA_UPDATE=always cargo test -p trueup-cli --test bad_input`,
//! then review the `.snap` diff (or use `cargo insta review`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};

/// The password fixtures put in URLs; it must never be printed.
const PASSWORD: &str = "hunter2";

/// Variables the fixtures name, which must be unset when they run, and colour switches.
const UNSET_VARIABLES: [&str; 5] = [
    "TRUEUP_PROJECT",
    "TRUEUP_TEST_UNSET_PASSWORD",
    "SHOP_DB",
    "CLICOLOR_FORCE",
    "FORCE_COLOR",
];

/// Durations vary from run to run.
const TIME_FILTERS: [(&str, &str); 3] = [
    (r"\b\d+ ms\b", "[TIME]"),
    (r"\b\d+\.\d+ s\b", "[TIME]"),
    (r#""duration_ms": ?\d+"#, r#""duration_ms": [TIME]"#),
];

/// Cases whose output is wrong today, each a product bug reported to the lead, with its
/// snapshot showing the current behaviour. Their checks (exit code, password, `expect`) do
/// not fail the test, but a listed case that passes them all does: remove it once fixed.
/// A panic or a changed snapshot fails the test whatever this list says.
const KNOWN_BUGS: [(&str, &str); 0] = [];

/// One test per case, named after its folder, so one case can be run on its own
/// (`cargo test -p trueup-cli --test bad_input -- <case>`) and a failure names it; and one
/// test that the corpus is all there.
fn main() -> std::process::ExitCode {
    let arguments = libtest_mimic::Arguments::from_args();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/bad-input");
    let cases = case_dirs(&root);
    let shop = Arc::new(OnceLock::new());

    let mut trials = vec![corpus_trial(&root, &cases)];
    for case in cases {
        let name = case_name(&case).to_owned();
        let shop = Arc::clone(&shop);
        trials.push(libtest_mimic::Trial::test(name, move || {
            let shop_db = shop.get_or_init(Shop::create);
            let failures = check_case(&case, &shop_db.path);
            if failures.is_empty() {
                Ok(())
            } else {
                Err(failures.join("\n").into())
            }
        }));
    }
    libtest_mimic::run(&arguments, trials).exit_code()
}

/// The corpus is where the harness looks, and every [`KNOWN_BUGS`] entry is a case.
fn corpus_trial(root: &Path, cases: &[PathBuf]) -> libtest_mimic::Trial {
    let root = root.to_owned();
    let names: Vec<String> = cases.iter().map(|c| case_name(c).to_owned()).collect();
    libtest_mimic::Trial::test("corpus", move || {
        if names.len() < 30 {
            return Err(format!(
                "expected at least 30 cases in {}, found {}",
                root.display(),
                names.len()
            )
            .into());
        }
        for (name, _) in KNOWN_BUGS {
            if !names.iter().any(|case| case == name) {
                return Err(format!("KNOWN_BUGS names `{name}`, which is not a case").into());
            }
        }
        Ok(())
    })
}

/// The demo shop the cases that mention `shop.db` copy, made once per test run.
struct Shop {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Shop {
    fn create() -> Shop {
        let dir = tempfile::tempdir().expect("temp dir for the demo shop");
        let path = dir.path().join("shop.db");
        create_shop(&path);
        Shop { _dir: dir, path }
    }
}

/// Runs a case and weighs its problems against [`KNOWN_BUGS`]; returns the failures.
fn check_case(case: &Path, shop_db: &Path) -> Vec<String> {
    let name = case_name(case);
    let outcome = std::panic::catch_unwind(|| run_case(name, case, shop_db));
    let Ok(Outcome { panicked, problems }) = outcome else {
        return vec![format!("{name}: the snapshot differs (diff above)")];
    };
    let known = KNOWN_BUGS.iter().find(|(bug, _)| *bug == name);
    let mut failures = Vec::new();
    if panicked {
        failures.push(format!("{name}: trueup panicked"));
    }
    match known {
        Some(_) if problems.is_empty() => {
            failures.push(format!("{name}: passes now; remove it from KNOWN_BUGS"));
        }
        Some((_, bug)) => eprintln!("{name}: known bug: {bug}"),
        None => failures.extend(problems.into_iter().map(|p| format!("{name}: {p}"))),
    }
    failures
}

struct Outcome {
    panicked: bool,
    /// What is wrong with the output besides a panic.
    problems: Vec<String>,
}

/// Copies a case to a temp dir, runs trueup there and snapshots what it printed.
fn run_case(name: &str, case: &Path, shop_db: &Path) -> Outcome {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().canonicalize().expect("canonical temp dir");
    copy_dir(case, &dir);
    let project = dir.join("trueup.toml");
    if std::fs::read_to_string(&project).is_ok_and(|text| text.contains("shop.db")) {
        std::fs::copy(shop_db, dir.join("shop.db")).expect("copy the demo shop");
    }
    let command =
        std::fs::read_to_string(case.join("command")).unwrap_or_else(|_| "validate".to_owned());
    let args: Vec<&str> = command.split_whitespace().collect();

    let mut trueup = Command::new(env!("CARGO_BIN_EXE_trueup"));
    trueup
        .arg("--project")
        .arg(&project)
        .args(&args)
        .current_dir(&dir)
        .env("NO_COLOR", "1");
    for variable in UNSET_VARIABLES {
        trueup.env_remove(variable);
    }
    let output = trueup.stdin(Stdio::null()).output().expect("run trueup");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let code = output.status.code();

    let mut problems = Vec::new();
    if code != Some(2) {
        problems.push(format!("exit code {code:?}, expected 2"));
    }
    if stdout.contains(PASSWORD) || stderr.contains(PASSWORD) {
        problems.push(format!("the password `{PASSWORD}` was printed"));
    }

    let printed = format!("{stdout}\n{stderr}").replace(&dir.display().to_string(), "[TMP]");
    if let Ok(expected) = std::fs::read_to_string(case.join("expect")) {
        for line in expected
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            if !printed.contains(line) {
                problems.push(format!("the output does not contain `{line}`"));
            }
        }
    }

    let mut text = String::new();
    let _ = writeln!(
        text,
        "$ trueup --project [TMP]/trueup.toml {}",
        args.join(" ")
    );
    let _ = writeln!(
        text,
        "exit: {}",
        code.map_or_else(|| "killed by a signal".to_owned(), |c| c.to_string())
    );
    let _ = writeln!(text, "----- stdout -----\n{stdout}");
    let _ = write!(text, "----- stderr -----\n{stderr}");
    let text = text.replace(&dir.display().to_string(), "[TMP]");

    insta::with_settings!({ filters => TIME_FILTERS.to_vec(), omit_expression => true }, {
        insta::assert_snapshot!(name, text);
    });
    Outcome {
        panicked: stderr.contains("panicked"),
        problems,
    }
}

fn case_name(case: &Path) -> &str {
    case.file_name()
        .and_then(|n| n.to_str())
        .expect("case folder names are UTF-8")
}

fn case_dirs(root: &Path) -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap_or_else(|err| panic!("cannot list {}: {err}", root.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.is_dir())
        .collect();
    cases.sort();
    cases
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read case dir") {
        let path = entry.expect("directory entry").path();
        let target = to.join(path.file_name().expect("file name"));
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).expect("copy fixture file");
        }
    }
}

fn create_shop(path: &Path) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime
        .block_on(trueup_shop::create_sqlite(
            path,
            &trueup_shop::ShopSpec::demo(),
        ))
        .expect("create the demo shop");
}
