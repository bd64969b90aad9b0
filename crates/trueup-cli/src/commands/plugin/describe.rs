//! `trueup plugin describe`: what a `.wasm` (or the one a crate folder builds) says of
//! itself, and the options its rules' `config` takes.

use std::io::Write;

use anstream::println;
use trueup_core::plugin::Plugin;
use trueup_core::text::Escaped;

use super::PluginInfo;
use crate::ExitStatus;
use crate::args::{Format, GlobalArgs, PluginDescribeArgs};
use crate::printer::{BOLD, DIM, Printer};

pub fn run(
    args: &PluginDescribeArgs,
    global: &GlobalArgs,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let wasm = match args.wasm.is_dir() {
        true => super::test::one_plugin(
            super::build::build(&args.wasm, global, printer)?,
            &args.wasm,
        )?,
        false => args.wasm.clone(),
    };
    let plugin = Plugin::load(&wasm)?;
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
            // What the plugin says of itself is its own text: shown escaped.
            let (name, version) = (Escaped(&info.name), Escaped(&info.version));
            println!("{BOLD}{name}{BOLD:#} {version}");
            println!("{}", Escaped(&info.description));
            println!(
                "{DIM}{} · {}{DIM:#}",
                Escaped(info.path.display()),
                info.hash
            );
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
                        Escaped(&option.name),
                        Escaped(&option.summary),
                        option
                            .description
                            .as_deref()
                            .map_or_else(String::new, |d| format!(" · {}", Escaped(d))),
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

/// The top-level properties of `schema`: the required ones first, in the schema's order,
/// then the others by name.
fn options(schema: &serde_json::Value) -> Vec<ConfigOption> {
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    let Some(properties) = schema["properties"].as_object() else {
        return Vec::new();
    };
    let mut names: Vec<&String> = properties.keys().collect();
    names.sort_by_key(|name| {
        required
            .iter()
            .position(|r| r == name)
            .unwrap_or(usize::MAX)
    });
    names
        .into_iter()
        .map(|name| {
            let property = &properties[name];
            let presence = if required.contains(&name.as_str()) {
                "required".to_owned()
            } else if let Some(default) = property.get("default") {
                format!("default {default}")
            } else {
                "optional".to_owned()
            };
            ConfigOption {
                name: name.clone(),
                summary: format!("{}, {presence}", kind(schema, property)),
                description: property["description"]
                    .as_str()
                    .map(|d| d.split_whitespace().collect::<Vec<_>>().join(" ")),
            }
        })
        .collect()
}

/// What a property takes: its type, or its values (`"luhn" | "gtin"`) for a choice, looking
/// through a `$ref` into the schema's `$defs`.
fn kind(schema: &serde_json::Value, property: &serde_json::Value) -> String {
    let resolved = property["$ref"]
        .as_str()
        .and_then(|r| r.strip_prefix("#/$defs/"))
        .map_or(property, |name| &schema["$defs"][name]);
    let choices: Vec<String> = match (&resolved["enum"], &resolved["oneOf"]) {
        (serde_json::Value::Array(values), _) => values.iter().map(ToString::to_string).collect(),
        (_, serde_json::Value::Array(alternatives)) => alternatives
            .iter()
            .filter_map(|a| a.get("const"))
            .map(ToString::to_string)
            .collect(),
        _ => Vec::new(),
    };
    if !choices.is_empty() {
        return choices.join(" | ");
    }
    match &resolved["type"] {
        serde_json::Value::String(kind) => kind.clone(),
        serde_json::Value::Array(kinds) => kinds
            .iter()
            .filter_map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(" or "),
        _ => "value".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_show_choices_and_put_required_ones_first() {
        let schema = serde_json::json!({
            "$defs": { "Algorithm": { "oneOf": [
                { "const": "luhn", "type": "string" },
                { "const": "gtin", "type": "string" }
            ] } },
            "properties": {
                "a-flag": { "type": "boolean", "default": false },
                "column": { "type": "string", "description": "The\n   column." },
                "algorithm": { "$ref": "#/$defs/Algorithm" },
                "level": { "enum": ["low", "high"] }
            },
            "required": ["column", "algorithm"]
        });
        let shown: Vec<(String, String, Option<String>)> = options(&schema)
            .into_iter()
            .map(|o| (o.name, o.summary, o.description))
            .collect();
        assert_eq!(
            shown,
            [
                (
                    "column".into(),
                    "string, required".into(),
                    Some("The column.".into())
                ),
                (
                    "algorithm".into(),
                    r#""luhn" | "gtin", required"#.into(),
                    None
                ),
                ("a-flag".into(), "boolean, default false".into(), None),
                ("level".into(), r#""low" | "high", optional"#.into(), None),
            ]
        );
    }
}
