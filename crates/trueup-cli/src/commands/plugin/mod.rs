//! `trueup plugin`: the plugin author's loop. `new` scaffolds a crate, `build` compiles it to
//! WebAssembly and checks the result loads, `test` runs it on the cases of its
//! `fixtures.toml` with the same host `check` uses, `describe` shows what a `.wasm` says of
//! itself.

mod build;
mod cell;
mod describe;
mod fixtures;
mod new;
mod report;
mod test;

use std::path::{Path, PathBuf};

use serde::Serialize;
use trueup_core::plugin::Plugin;

use crate::ExitStatus;
use crate::args::{GlobalArgs, PluginArgs, PluginCommand};
use crate::printer::Printer;

pub fn run(
    args: &PluginArgs,
    global: &GlobalArgs,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    match &args.command {
        PluginCommand::New(args) => new::run(args, printer),
        PluginCommand::Build(args) => build::run(args, global, printer),
        PluginCommand::Test(args) => test::run(args, global, printer),
        PluginCommand::Describe(args) => describe::run(args),
    }
}

/// What `build` and `describe` report of a plugin.
#[derive(Debug, Serialize)]
struct PluginInfo {
    name: String,
    version: String,
    description: String,
    /// The `.wasm` file, relative to the current folder when it is inside it.
    path: PathBuf,
    /// The module's content hash (what a rule's definition records).
    hash: String,
    /// The JSON Schema of its `config` (`describe` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    config_schema: Option<serde_json::Value>,
}

impl PluginInfo {
    fn of(plugin: &Plugin) -> PluginInfo {
        PluginInfo {
            name: plugin.description.name.clone(),
            version: plugin.description.version.clone(),
            description: plugin.description.description.clone(),
            path: shown_path(&plugin.path),
            hash: plugin.hash.clone(),
            config_schema: None,
        }
    }

    /// The line a rule's detector names the plugin with.
    fn rule_line(&self) -> String {
        rule_line(&self.path)
    }
}

/// `plugin = "path"`, the line a rule's detector names a plugin with.
fn rule_line(wasm: &Path) -> String {
    format!("plugin = {}", toml_string(&wasm.display().to_string()))
}

/// `path` relative to the current folder when it is inside it, as given otherwise.
fn shown_path(path: &Path) -> PathBuf {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok())
        .map_or_else(|| path.to_owned(), Path::to_path_buf)
}

/// `text` as a TOML string, quoted and escaped.
fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}
