//! `trueup plugin` end to end: the real binary scaffolds a plugin, builds it to WebAssembly
//! and runs its fixtures; `test` and `describe` also run on the `every-nth` test plugin,
//! built from `tests/plugins/`.
//!
//! The scaffold builds into `tests/plugins/target/` too, with the same lock file: it reuses
//! the dependencies compiled there, and only the first run compiles them.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
#[path = "../../../tests/support/wasm.rs"]
mod wasm;

use common::{Run, run};

/// `trueup` as the other tests run it, with plugin builds in the test plugins' folder.
fn trueup() -> Command {
    let mut command = common::trueup();
    command.env("CARGO_TARGET_DIR", workspace().join("tests/plugins/target"));
    command
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace's folder")
}

/// `text` with `dir` written `[TMP]` and the SDK's folder `[SDK]`.
fn without_paths(text: &str, dir: &Path) -> String {
    let sdk = workspace().join("crates/trueup-plugin-sdk");
    text.replace(&dir.display().to_string(), "[TMP]")
        .replace(&sdk.display().to_string(), "[SDK]")
}

/// The every-nth test plugin's `.wasm`, built from `tests/plugins/`.
fn every_nth() -> PathBuf {
    wasm::plugin("tests/plugins", "every_nth")
}

/// Writes `fixtures` as `fixtures.toml` in a new temp folder.
fn fixture_dir(fixtures: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("fixtures.toml"), fixtures).expect("write fixtures");
    dir
}

/// `trueup plugin test DIR --wasm <every-nth>`.
fn test_every_nth(dir: &Path, extra: &[&str]) -> Run {
    run(trueup()
        .args(["plugin", "test"])
        .arg(dir)
        .arg("--wasm")
        .arg(every_nth())
        .args(extra))
}

/// A temp folder inside this checkout (under the test plugins' ignored `target/`).
fn tempdir_in_checkout() -> tempfile::TempDir {
    let parent = workspace().join("tests/plugins/target/scaffolds");
    std::fs::create_dir_all(&parent).expect("mkdir");
    tempfile::tempdir_in(parent).expect("temp dir")
}

#[test]
fn a_new_plugin_builds_and_passes_its_own_fixtures() {
    // Inside a checkout of trueup, the scaffold depends on its SDK by a relative path.
    let tmp = tempdir_in_checkout();
    let created = run(trueup()
        .args(["plugin", "new", "blank-check", "--dir"])
        .arg(tmp.path()));
    assert_eq!(created.code, Some(0), "{}", created.all());
    let relative_sdk = "../../../../../../crates/trueup-plugin-sdk";
    insta::assert_snapshot!(
        "new_stderr",
        without_paths(&created.stderr, tmp.path()).replace(relative_sdk, "[RELATIVE SDK]")
    );
    let crate_dir = tmp.path().join("blank-check");
    let manifest = std::fs::read_to_string(crate_dir.join("Cargo.toml")).expect("Cargo.toml");
    assert!(
        manifest.contains(&format!(
            "trueup-plugin-sdk = {{ path = \"{relative_sdk}\" }}"
        )),
        "{manifest}"
    );
    // The versions the workspace already has, so that nothing needs downloading.
    std::fs::copy(
        workspace().join("tests/plugins/Cargo.lock"),
        crate_dir.join("Cargo.lock"),
    )
    .expect("copy Cargo.lock");

    let tested = run(trueup().args(["plugin", "test"]).arg(&crate_dir));
    assert_eq!(tested.code, Some(0), "{}", tested.all());
    insta::assert_snapshot!("new_then_test_stdout", tested.stdout);

    let built = run(trueup()
        .args(["--quiet", "plugin", "build", "--format", "json"])
        .arg(&crate_dir));
    assert_eq!(built.code, Some(0), "{}", built.all());
    let plugins = built.json()["plugins"].clone();
    assert_eq!(plugins[0]["name"], "blank-check", "{}", built.all());
    let wasm = PathBuf::from(plugins[0]["path"].as_str().expect("a path"));
    assert!(wasm.is_file(), "{}", wasm.display());
    // The hash a rule pins the file with.
    let sha256 = trueup_core::plugin::sha256_hex(&std::fs::read(&wasm).expect("read"));
    assert_eq!(plugins[0]["sha256"], sha256.as_str(), "{}", built.all());
    let human = run(trueup().args(["plugin", "build"]).arg(&crate_dir));
    assert!(
        human.stdout.contains(&format!("  sha256 = \"{sha256}\"\n")),
        "{}",
        human.all()
    );

    // The .wasm, or its crate's folder (built first, as `test` does).
    for target in [&wasm, &crate_dir] {
        let described = run(trueup().args(["plugin", "describe"]).arg(target));
        assert_eq!(described.code, Some(0), "{}", described.all());
        assert!(
            described
                .stdout
                .contains("column  string, required · The text column to check."),
            "{}",
            described.all()
        );
    }

    // Its unit tests run natively.
    let unit = Command::new("cargo")
        .args(["test", "--quiet"])
        .current_dir(&crate_dir)
        .env("CARGO_TARGET_DIR", workspace().join("tests/plugins/target"))
        .output()
        .expect("run cargo test");
    assert!(
        unit.status.success(),
        "cargo test in the scaffold failed:\n{}{}",
        String::from_utf8_lossy(&unit.stdout),
        String::from_utf8_lossy(&unit.stderr)
    );
}

#[test]
fn typed_values_go_to_the_plugin_and_come_back_as_keys() {
    let dir = fixture_dir(
        r#"
[[case]]
name = "every second row"
config = { n = 2 }
columns = ["id", "name"]
key = ["id"]
rows = [[1, "a"], [2, "b"], [3, "c"], [4, "d"]]
expect = [{ key = [4], message = "row 4", detail = { seen = 4 } }, { key = [2] }]

[[case]]
name = "a keyed finding from finish names its row by typed values"
config = { n = 5, first-again = true }
columns = ["id", "at", "amount", "blob", "nothing", "score", "ok"]
key = ["id", "at", "amount", "blob", "nothing"]
rows = [
  [7, 2026-01-31T12:00:00, { decimal = "12.50" }, { bytes = "00ff" }, { null = true }, 1.5, true],
  [8, 2026-02-01T00:00:00, { decimal = "0.01" }, { bytes = "" }, { null = true }, -2.0, false],
]
expect = [
  { key = [7, 2026-01-31T12:00:00, { decimal = "12.50" }, { bytes = "00ff" }, { null = true }], message = "the first row, again" },
]

[[case]]
name = "refuses n = 0"
config = { n = 0 }
columns = ["id"]
key = ["id"]
expect-error = "must be at least 1"
"#,
    );
    let tested = test_every_nth(dir.path(), &[]);
    assert_eq!(tested.code, Some(0), "{}", tested.all());
    insta::assert_snapshot!("typed_values_stdout", tested.stdout);

    let json = test_every_nth(dir.path(), &["--format", "json"]).json();
    assert_eq!(json["passed"], true);
    assert_eq!(json["summary"]["cases"], 3);
    // Values in JSON as `check --format json` writes them: bytes as `\x` hex.
    assert_eq!(
        json["cases"][1]["findings"][0]["key"],
        serde_json::json!([7, "2026-01-31T12:00:00", "12.50", "\\x00ff", null])
    );
}

#[test]
fn a_failing_expectation_exits_1_and_says_what_differs() {
    let dir = fixture_dir(
        r#"
[[case]]
name = "passes"
config = { n = 1 }
columns = ["id"]
key = ["id"]
rows = [[1]]
expect = [{ key = [1] }]

[[case]]
name = "every second row, miscounted"
config = { n = 2 }
columns = ["id", "name"]
key = ["id"]
rows = [[1, "a"], [2, "b"], [3, "c"], [4, "d"]]
expect = [
  { key = [2], message = "row 2" },
  { key = [3] },
  { key = [4], detail = { seen = 5 } },
]

[[case]]
name = "a refusal that does not come"
config = { n = 3 }
columns = ["id"]
key = ["id"]
expect-error = "must be at least 1"

[[case]]
name = "a config of the wrong type"
config = { n = "two" }
columns = ["id"]
key = ["id"]
rows = [[1]]
expect = [{ key = [1] }]
"#,
    );
    let tested = test_every_nth(dir.path(), &[]);
    assert_eq!(tested.code, Some(1), "{}", tested.all());
    insta::assert_snapshot!("failing_stdout", tested.stdout);

    let json = test_every_nth(dir.path(), &["--format", "json"]);
    assert_eq!(json.code, Some(1), "{}", json.all());
    let json = json.json();
    assert_eq!(json["passed"], false);
    assert_eq!(json["summary"]["failed"], 3);
    assert_eq!(json["cases"][1]["name"], "every second row, miscounted");
    assert_eq!(
        json["cases"][1]["missing"].as_array().map(Vec::len),
        Some(2)
    );
}

#[test]
fn a_malformed_fixture_file_exits_2_and_points_at_the_problem() {
    let syntax = fixture_dir("[[case]]\nname = \"x\"\nrows = [[1], [2,]\n");
    let tested = test_every_nth(syntax.path(), &[]);
    assert_eq!(tested.code, Some(2), "{}", tested.all());
    assert_eq!(tested.stdout, "");
    insta::assert_snapshot!(
        "malformed_syntax_stderr",
        without_paths(&tested.stderr, syntax.path())
    );

    let structure = fixture_dir(
        r#"[[case]]
name = "x"
config = { n = 2 }
columns = ["id", "name"]
key = ["id", "nmae"]
rows = [[1, "a"], [2], [3, { hex = "00" }]]
expect = [{ key = [2, 3] }]
expect-error = "no"
"#,
    );
    let tested = test_every_nth(structure.path(), &[]);
    assert_eq!(tested.code, Some(2), "{}", tested.all());
    insta::assert_snapshot!(
        "malformed_structure_stderr",
        without_paths(&tested.stderr, structure.path())
    );
}

#[test]
fn describe_shows_the_name_and_the_config_schema() {
    let wasm = every_nth();
    let described = run(trueup().args(["plugin", "describe"]).arg(&wasm));
    assert_eq!(described.code, Some(0), "{}", described.all());
    let out = &described.stdout;
    assert!(
        out.starts_with("every-nth 0.1.0\nReports every nth row\n"),
        "{out}"
    );
    assert!(out.contains("  n  "), "{out}");
    assert!(
        out.contains("integer, required · Report one row in `n`."),
        "{out}"
    );
    assert!(out.contains("JSON Schema of config:\n{"), "{out}");

    let json = run(trueup()
        .args(["plugin", "describe", "--format", "json"])
        .arg(&wasm))
    .json();
    assert_eq!(json["name"], "every-nth");
    assert_eq!(json["config_schema"]["required"], serde_json::json!(["n"]));
    assert_eq!(json["config_schema"]["additionalProperties"], false);
}

/// Outside a checkout the scaffold names no folder of this machine: a git dependency on
/// this trueup's tag, or `--sdk`'s folder relative to the crate.
#[test]
fn a_new_plugin_outside_a_checkout_has_no_absolute_path() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let created = run(trueup()
        .args(["plugin", "new", "away", "--dir"])
        .arg(tmp.path()));
    assert_eq!(created.code, Some(0), "{}", created.all());
    let manifest = std::fs::read_to_string(tmp.path().join("away/Cargo.toml")).expect("Cargo.toml");
    let sdk_line = manifest
        .lines()
        .find(|l| l.starts_with("trueup-plugin-sdk"))
        .expect("an SDK dependency");
    assert_eq!(
        sdk_line,
        format!(
            "trueup-plugin-sdk = {{ git = \"https://example.invalid/trueup\", tag = \"v{}\" }}",
            env!("CARGO_PKG_VERSION")
        ),
        "{}",
        created.all()
    );
    assert!(created.stderr.contains("pass --sdk"), "{}", created.all());

    // A vendored SDK next to the plugins: written relative, so the two move together.
    let vendored = tmp.path().join("vendor/trueup-plugin-sdk");
    std::fs::create_dir_all(&vendored).expect("mkdir");
    std::fs::write(vendored.join("Cargo.toml"), "[package]\n").expect("write");
    let created = run(trueup()
        .args(["plugin", "new", "near", "--dir"])
        .arg(tmp.path().join("plugins"))
        .arg("--sdk")
        .arg(&vendored));
    assert_eq!(created.code, Some(0), "{}", created.all());
    let manifest =
        std::fs::read_to_string(tmp.path().join("plugins/near/Cargo.toml")).expect("Cargo.toml");
    assert!(
        manifest.contains("trueup-plugin-sdk = { path = \"../../vendor/trueup-plugin-sdk\" }"),
        "{manifest}"
    );
}

#[test]
fn new_refuses_a_bad_name_and_a_folder_in_use() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let bad = run(trueup()
        .args(["plugin", "new", "Blank Check", "--dir"])
        .arg(tmp.path()));
    assert_eq!(bad.code, Some(2), "{}", bad.all());
    insta::assert_snapshot!("new_bad_name_stderr", bad.stderr);

    std::fs::create_dir(tmp.path().join("taken")).expect("mkdir");
    std::fs::write(tmp.path().join("taken/notes.txt"), "mine").expect("write");
    let taken = run(trueup()
        .args(["plugin", "new", "taken", "--dir"])
        .arg(tmp.path()));
    assert_eq!(taken.code, Some(2), "{}", taken.all());
    assert!(
        taken.stderr.contains("already exists and is not empty"),
        "{}",
        taken.all()
    );
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("taken/notes.txt")).expect("read"),
        "mine"
    );
}

#[test]
fn build_and_test_outside_a_crate_exit_2() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let built = run(trueup().args(["plugin", "build"]).arg(tmp.path()));
    assert_eq!(built.code, Some(2), "{}", built.all());
    assert!(
        built.stderr.contains("has no Cargo.toml"),
        "{}",
        built.all()
    );

    let tested = run(trueup().args(["plugin", "test"]).arg(tmp.path()));
    assert_eq!(tested.code, Some(2), "{}", tested.all());
    assert!(tested.stderr.contains("fixtures.toml"), "{}", tested.all());
}
