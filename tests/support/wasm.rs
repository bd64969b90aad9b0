//! Plugins built from source for the tests: `cargo build --release --target
//! wasm32-unknown-unknown` of a plugin workspace of this repository (`plugins/`,
//! `tests/plugins/`), once per test process. Included by the integration tests of several
//! crates (`#[path = ...] mod wasm;`). `scripts/test` adds the wasm target and builds the
//! workspaces first, so that here the builds are up to date and cost nothing.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The repository's root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The `.wasm` of `artifact` (the crate name with `_` for `-`) from the plugin workspace
/// `workspace` (e.g. `"tests/plugins"`), built first if this process has not yet.
pub fn plugin(workspace: &str, artifact: &str) -> PathBuf {
    static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let root = repo_root().join(workspace);
    // Always the workspace's own target folder, whatever CARGO_TARGET_DIR says: the rule
    // packs name the .wasm files there.
    let target = root.join("target");
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !built.iter().any(|w| w == workspace) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let output = std::process::Command::new(cargo)
            .args([
                "build",
                "--release",
                "--locked",
                "--target",
                "wasm32-unknown-unknown",
            ])
            .arg("--manifest-path")
            .arg(root.join("Cargo.toml"))
            .arg("--target-dir")
            .arg(&target)
            .output()
            .expect("run cargo");
        assert!(
            output.status.success(),
            "building the plugins in {workspace} failed (is the target installed? `rustup target add wasm32-unknown-unknown`; scripts/test does it):\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        built.push(workspace.to_owned());
    }
    target
        .join("wasm32-unknown-unknown/release")
        .join(format!("{artifact}.wasm"))
}
