//! `trueup plugin describe`: what a `.wasm` says of itself, and the options its rules'
//! `config` takes.

use std::io::Write;

use anstream::println;
use trueup_core::plugin::Plugin;

use super::PluginInfo;
use crate::ExitStatus;
use crate::args::{Format, PluginDescribeArgs};
use crate::printer::{BOLD, DIM};

pub fn run(args: &PluginDescribeArgs) -> anyhow::Result<ExitStatus> {
    let plugin = Plugin::load(&args.wasm)?;
    let schema = plugin.description.config_schema.clone();
    let info = PluginInfo {
        config_schema: Some(schema.clone()),
        ..PluginInfo::of(&plugin)
    };
    match args.format {
        Format::Json => {
            let mut out = std::io::stdout().lock();
            serde_json::to_writer_pretty(&mut out, &info)?;
            writeln!(out)?;
        }
        Format::Human => {
            println!("{BOLD}{}{BOLD:#} {}", info.name, info.version);
            println!("{}", info.description);
            println!("{DIM}{} · {}{DIM:#}", info.path.display(), info.hash);
            println!();
            let options = options(&schema);
            if options.is_empty() {
                println!("config: none");
            } else {
                println!("config:");
                let width = options.iter().map(|o| o.name.len()).max().unwrap_or(0);
                for option in &options {
                    println!(
                        "  {:width$}  {}{}",
                        option.name,
                        option.summary,
                        option
                            .description
                            .as_deref()
                            .map_or_else(String::new, |d| format!(" · {d}")),
                    );
                }
            }
            println!();
            println!("JSON Schema of config:");
            println!("{}", serde_json::to_string_pretty(&schema)?);
        }
    }
    Ok(ExitStatus::Success)
}

/// One top-level option of a config schema.
struct ConfigOption {
    name: String,
    /// Its type, and whether it is required or its default.
    summary: String,
    description: Option<String>,
}

/// The top-level properties of `schema`, in its order.
fn options(schema: &serde_json::Value) -> Vec<ConfigOption> {
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    let Some(properties) = schema["properties"].as_object() else {
        return Vec::new();
    };
    properties
        .iter()
        .map(|(name, property)| {
            let kind = match &property["type"] {
                serde_json::Value::String(kind) => kind.clone(),
                serde_json::Value::Array(kinds) => kinds
                    .iter()
                    .filter_map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(" or "),
                _ => "value".to_owned(),
            };
            let presence = if required.contains(&name.as_str()) {
                "required".to_owned()
            } else if let Some(default) = property.get("default") {
                format!("default {default}")
            } else {
                "optional".to_owned()
            };
            ConfigOption {
                name: name.clone(),
                summary: format!("{kind}, {presence}"),
                description: property["description"]
                    .as_str()
                    .map(|d| d.split_whitespace().collect::<Vec<_>>().join(" ")),
            }
        })
        .collect()
}
