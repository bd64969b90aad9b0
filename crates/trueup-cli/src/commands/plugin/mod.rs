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
        PluginCommand::Describe(args) => describe::run(args, global, printer),
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
    /// The file's SHA-256, what a rule's `sha256` pins it to.
    sha256: String,
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
            sha256: plugin.sha256.clone(),
            config_schema: None,
        }
    }

    /// The line a rule's detector names the plugin with.
    fn rule_line(&self) -> String {
        rule_line(&self.path)
    }

    /// The line that pins a rule to this very file.
    fn sha256_line(&self) -> String {
        format!("sha256 = \"{}\"", self.sha256)
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

/// `text` as a TOML string on one line, safe to print and to paste into a fixture: a
/// literal string (`'say "hi"'`) when it holds quotes or backslashes and nothing to escape,
/// else a basic string with `"`, `\` and every character unfit for a terminal (newlines,
/// ESC, bidi controls: `trueup_core::text::is_unsafe`) escaped.
fn toml_string(text: &str) -> String {
    use std::fmt::Write as _;
    let unsafe_char = text.chars().any(trueup_core::text::is_unsafe);
    if !unsafe_char && !text.contains('\'') && text.contains(['"', '\\']) {
        return format!("'{text}'");
    }
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push_str("\\t"),
            c if trueup_core::text::is_unsafe(c) => {
                let _ = write!(quoted, "\\u{:04X}", u32::from(c));
            }
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use super::toml_string;

    #[test]
    fn hardening_8_toml_strings_are_one_safe_line_that_reads_back() {
        for text in [
            "row 4",
            r#""2139" is not a US postal code"#,
            r"C:\plugins\a.wasm",
            "it's \"quoted\"",
            "\u{1b}]0;title\u{7}over\rwrite\u{202e}gnp.exe\n✓ ok\tforged",
        ] {
            let quoted = toml_string(text);
            assert!(
                !quoted.chars().any(trueup_core::text::is_unsafe),
                "{quoted:?}"
            );
            let read: toml::Value = toml::from_str(&format!("v = {quoted}")).unwrap();
            assert_eq!(read["v"].as_str(), Some(text), "{quoted}");
        }
        assert_eq!(toml_string("say \"hi\""), "'say \"hi\"'");
    }
}
