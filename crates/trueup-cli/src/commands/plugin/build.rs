//! `trueup plugin build`: `cargo build --release --target wasm32-unknown-unknown` in a plugin
//! crate or a workspace of them, then every `.wasm` it made is loaded the way `check` loads
//! it. Nothing is installed: a missing target is an error that says how to add it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anstream::println;
use anyhow::{Context, bail};
use serde::Deserialize;
use trueup_core::plugin::Plugin;
use trueup_core::text::Escaped;

use super::PluginInfo;
use crate::ExitStatus;
use crate::args::{ColorChoice, Format, GlobalArgs, PluginBuildArgs};
use crate::printer::{OK, Printer};

/// The Rust target plugins are built for: no WASI, nothing to import.
pub const TARGET: &str = "wasm32-unknown-unknown";

pub fn run(
    args: &PluginBuildArgs,
    global: &GlobalArgs,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let plugins = build(&args.dir, global, printer)?
        .iter()
        .map(|artifact| artifact.load())
        .collect::<anyhow::Result<Vec<_>>>()?;
    let infos: Vec<PluginInfo> = plugins.iter().map(PluginInfo::of).collect();
    match args.format {
        Format::Json => {
            let mut out = std::io::stdout().lock();
            serde_json::to_writer_pretty(&mut out, &serde_json::json!({ "plugins": infos }))?;
            writeln!(out)?;
        }
        Format::Human => {
            for info in &infos {
                println!(
                    "{OK}✓{OK:#} {} {}: {}",
                    Escaped(&info.name),
                    Escaped(&info.version),
                    Escaped(&info.description)
                );
                println!("  {}", info.rule_line());
                println!("  {}", info.sha256_line());
            }
            printer.status(
                "in a rule (`kind = \"plugin\"`), the path is relative to the rule file's folder; \
                 `sha256` (optional) makes validate and check refuse any other build of the file",
            );
        }
    }
    Ok(ExitStatus::Success)
}

/// A plugin crate's `.wasm`, where cargo puts it.
#[derive(Debug)]
pub struct Artifact {
    pub package: String,
    /// The package's folder, canonical.
    pub dir: PathBuf,
    pub wasm: PathBuf,
}

impl Artifact {
    /// Loads the `.wasm` as `check` would: compiled, its imports and exports checked, and
    /// its description read.
    pub fn load(&self) -> anyhow::Result<Plugin> {
        if !self.wasm.is_file() {
            bail!(
                "{} does not exist: build the plugin first (`trueup plugin build {}`)",
                self.wasm.display(),
                self.dir.display()
            );
        }
        Plugin::load(&self.wasm).with_context(|| {
            format!(
                "package `{}` built {}, which is not a valid trueup plugin",
                self.package,
                self.wasm.display()
            )
        })
    }
}

/// Checks the target is installed, builds `dir` for it and returns what it built.
pub fn build(dir: &Path, global: &GlobalArgs, printer: &Printer) -> anyhow::Result<Vec<Artifact>> {
    require_manifest(dir)?;
    require_target(dir)?;
    printer.status(format!("building {} for {TARGET}", dir.display()));
    let mut cargo = Command::new("cargo");
    cargo
        .args(["build", "--release", "--target", TARGET])
        .current_dir(dir)
        .stdin(Stdio::null())
        // stdout is trueup's data: cargo's own chatter goes with its stderr.
        .stdout(std::io::stderr());
    match global.color {
        ColorChoice::Auto => {}
        ColorChoice::Always => {
            cargo.args(["--color", "always"]);
        }
        ColorChoice::Never => {
            cargo.args(["--color", "never"]);
        }
    }
    if global.quiet {
        cargo.arg("--quiet");
    }
    let status = cargo
        .status()
        .context("cannot run `cargo`: is Rust installed?")?;
    if !status.success() {
        bail!(
            "`cargo build --release --target {TARGET}` failed in {} ({status})",
            dir.display()
        );
    }
    artifacts(dir)
}

/// What `cargo build` in `dir` makes, found with `cargo metadata`: the package whose
/// manifest is `dir/Cargo.toml`, or else the workspace's default members; of those, each
/// cdylib.
pub fn artifacts(dir: &Path) -> anyhow::Result<Vec<Artifact>> {
    require_manifest(dir)?;
    let output = Command::new("cargo")
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(dir)
        .stdin(Stdio::null())
        // Cargo's errors are its own lines, as during the build; trueup's error line, which
        // it writes escaped, does not carry them.
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run `cargo metadata`: is Rust installed?")?;
    if !output.status.success() {
        bail!(
            "`cargo metadata` failed in {} ({}; its errors are above)",
            dir.display(),
            output.status
        );
    }
    let metadata: Metadata = serde_json::from_slice(&output.stdout)
        .context("cannot read the output of `cargo metadata`")?;
    let manifest = dir.join("Cargo.toml").canonicalize()?;
    let selected: Vec<&Package> = match metadata
        .packages
        .iter()
        .find(|p| p.manifest_path.canonicalize().is_ok_and(|m| m == manifest))
    {
        Some(package) => vec![package],
        None => {
            let members = metadata
                .workspace_default_members
                .as_ref()
                .unwrap_or(&metadata.workspace_members);
            metadata
                .packages
                .iter()
                .filter(|p| members.contains(&p.id))
                .collect()
        }
    };
    let release = metadata.target_directory.join(TARGET).join("release");
    let artifacts: Vec<Artifact> = selected
        .iter()
        .flat_map(|package| {
            package
                .targets
                .iter()
                .filter(|t| t.crate_types.iter().any(|c| c == "cdylib"))
                .map(|target| Artifact {
                    package: package.name.clone(),
                    dir: package
                        .manifest_path
                        .parent()
                        .and_then(|dir| dir.canonicalize().ok())
                        .unwrap_or_default(),
                    wasm: release.join(format!("{}.wasm", target.name.replace('-', "_"))),
                })
        })
        .collect();
    if artifacts.is_empty() {
        bail!(
            "nothing in {} builds a plugin: a plugin crate has `crate-type = [\"cdylib\", \"rlib\"]` \
             in its `[lib]` (`trueup plugin new NAME` makes one)",
            dir.display()
        );
    }
    Ok(artifacts)
}

fn require_manifest(dir: &Path) -> anyhow::Result<()> {
    if !dir.join("Cargo.toml").is_file() {
        bail!(
            "{} has no Cargo.toml: point at a plugin crate or a workspace of them \
             (`trueup plugin new NAME` makes one)",
            dir.display()
        );
    }
    Ok(())
}

/// The output of `cargo metadata --format-version 1 --no-deps`, the parts used here.
#[derive(Debug, Deserialize)]
struct Metadata {
    packages: Vec<Package>,
    workspace_members: Vec<String>,
    /// Absent before cargo 1.71.
    workspace_default_members: Option<Vec<String>>,
    target_directory: PathBuf,
}

#[derive(Debug, Deserialize)]
struct Package {
    id: String,
    name: String,
    manifest_path: PathBuf,
    targets: Vec<Target>,
}

#[derive(Debug, Deserialize)]
struct Target {
    name: String,
    crate_types: Vec<String>,
}

/// Fails, with the command that fixes it, when the Rust toolchain used in `dir` lacks the
/// wasm target. Asks rustup when there is one, else looks into rustc's sysroot.
fn require_target(dir: &Path) -> anyhow::Result<()> {
    let rustup = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success());
    if let Some(output) = rustup {
        if listed(&String::from_utf8_lossy(&output.stdout)) {
            return Ok(());
        }
        bail!(missing_target(None));
    }
    let output = Command::new("rustc")
        .args(["--print", "sysroot"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .context("cannot run `rustc`: is Rust installed?")?;
    if !output.status.success() {
        bail!(
            "`rustc --print sysroot` failed: {}",
            String::from_utf8_lossy(&output.stderr).trim_end()
        );
    }
    let sysroot = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    if in_sysroot(&sysroot) {
        Ok(())
    } else {
        bail!(missing_target(Some(&sysroot)))
    }
}

/// Whether `rustup target list --installed` printed the target.
fn listed(installed: &str) -> bool {
    installed.lines().any(|line| line.trim() == TARGET)
}

/// Whether the toolchain at `sysroot` has the target's standard library.
fn in_sysroot(sysroot: &Path) -> bool {
    sysroot.join("lib").join("rustlib").join(TARGET).is_dir()
}

/// The error for a missing target; `sysroot` when rustup was not there to ask.
fn missing_target(sysroot: Option<&Path>) -> String {
    let place = sysroot.map_or_else(String::new, |s| format!(" (not in {})", s.display()));
    format!(
        "plugins are built for the Rust target {TARGET}, which is not installed{place}; \
         trueup installs nothing: add it with `rustup target add {TARGET}`"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_is_found_in_a_sysroot_that_has_it() {
        let sysroot = tempfile::tempdir().unwrap();
        assert!(!in_sysroot(sysroot.path()));
        std::fs::create_dir_all(sysroot.path().join("lib/rustlib/x86_64-unknown-linux-gnu"))
            .unwrap();
        assert!(!in_sysroot(sysroot.path()));
        std::fs::create_dir_all(
            sysroot
                .path()
                .join("lib/rustlib/wasm32-unknown-unknown/lib"),
        )
        .unwrap();
        assert!(in_sysroot(sysroot.path()));
    }

    #[test]
    fn the_target_is_found_in_rustups_list() {
        assert!(listed("wasm32-unknown-unknown\nx86_64-unknown-linux-gnu\n"));
        assert!(!listed("wasm32-wasip2\nx86_64-unknown-linux-gnu\n"));
        assert!(!listed(""));
    }

    #[test]
    fn a_missing_target_says_how_to_add_it() {
        let message = missing_target(Some(Path::new("/opt/rust")));
        assert!(
            message.contains("not installed (not in /opt/rust)"),
            "{message}"
        );
        assert!(
            message.ends_with("`rustup target add wasm32-unknown-unknown`"),
            "{message}"
        );
    }
}
