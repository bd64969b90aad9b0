//! `trueup plugin new`: a plugin crate that builds, tests and passes its fixtures as
//! written, to change into the check one needs.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use super::build::TARGET;
use crate::ExitStatus;
use crate::args::PluginNewArgs;
use crate::printer::Printer;

const CARGO_TOML: &str = include_str!("scaffold/Cargo.toml.in");
const LIB_RS: &str = include_str!("scaffold/lib.rs.in");
const FIXTURES: &str = include_str!("scaffold/fixtures.toml.in");
const README: &str = include_str!("scaffold/README.md.in");
const GITIGNORE: &str = include_str!("scaffold/gitignore.in");

/// The SDK this trueup was built from, when its source is still there.
const BUILT_FROM_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../trueup-plugin-sdk");

/// Names the scaffold's source already uses: a plugin type so named gets `Check` appended.
const TAKEN: [&str; 10] = [
    "Columns", "Config", "Finding", "Plugin", "Row", "Value", "Option", "Result", "String", "Some",
];

/// Names cargo or Rust refuse for a crate.
const RESERVED: [&str; 48] = [
    "as",
    "async",
    "await",
    "break",
    "const",
    "continue",
    "crate",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "fn",
    "for",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "match",
    "mod",
    "move",
    "mut",
    "pub",
    "ref",
    "return",
    "self",
    "static",
    "struct",
    "super",
    "trait",
    "true",
    "type",
    "unsafe",
    "use",
    "where",
    "while",
    "abstract",
    "yield",
    "try",
    "gen",
    "test",
    "core",
    "std",
    "alloc",
    "proc_macro",
    "proc-macro",
    "build",
];

pub fn run(args: &PluginNewArgs, printer: &Printer) -> anyhow::Result<ExitStatus> {
    check_name(&args.name)?;
    let dir = if args.dir == Path::new(".") {
        PathBuf::from(&args.name)
    } else {
        args.dir.join(&args.name)
    };
    refuse_to_overwrite(&dir)?;
    let (sdk, sdk_shown) = sdk_dependency(args.sdk.as_deref())?;
    let crate_name = args.name.replace('-', "_");
    let fill = |template: &str| {
        template
            .replace("{{name}}", &args.name)
            .replace("{{crate}}", &crate_name)
            .replace("{{Type}}", &type_name(&args.name))
            .replace("{{sdk}}", &sdk)
    };
    let files = [
        ("Cargo.toml", fill(CARGO_TOML)),
        ("src/lib.rs", fill(LIB_RS)),
        ("fixtures.toml", fill(FIXTURES)),
        ("README.md", fill(README)),
        (".gitignore", GITIGNORE.to_owned()),
    ];
    for (name, text) in &files {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        printer.status(format!("created {}", path.display()));
    }
    printer.status(format!("trueup-plugin-sdk: {sdk_shown}"));
    let shown = dir.display();
    let wasm = dir
        .join("target")
        .join(TARGET)
        .join("release")
        .join(format!("{crate_name}.wasm"));
    printer.status(format!(
        "\nnext:\n  \
         trueup plugin build {shown}    compile it to WebAssembly ({TARGET})\n  \
         trueup plugin test {shown}     build it and run the cases of fixtures.toml\n\
         \nthen run it from a rule (the path below is from here: write it relative to the rule file):\n  \
         [rule.detector]\n  \
         kind = \"plugin\"\n  \
         {}\n  \
         query = \"SELECT id, name FROM customers\"\n  \
         key = [\"id\"]\n  \
         config = {{ column = \"name\" }}",
        super::rule_line(&wasm),
    ));
    Ok(ExitStatus::Success)
}

fn check_name(name: &str) -> anyhow::Result<()> {
    let valid = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !valid {
        bail!(
            "`{name}` is not a valid plugin name: use lowercase letters, digits, `-` and `_`, \
             starting with a letter (e.g. `blank-names`)"
        );
    }
    if RESERVED.contains(&name) {
        bail!("`{name}` is reserved in Rust or by cargo: choose another plugin name");
    }
    Ok(())
}

/// `blank-names` → `BlankNames`.
fn type_name(name: &str) -> String {
    let mut camel: String = name
        .split(['-', '_'])
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect();
    if TAKEN.contains(&camel.as_str()) {
        camel.push_str("Check");
    }
    camel
}

fn refuse_to_overwrite(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        let empty = dir
            .read_dir()
            .with_context(|| format!("{} exists and is not a folder", dir.display()))?
            .next()
            .is_none();
        if !empty {
            bail!(
                "{} already exists and is not empty: choose another name or --dir",
                dir.display()
            );
        }
    }
    Ok(())
}

/// The SDK dependency (a TOML value) and how to show it: `--sdk`, else the SDK this trueup
/// was built from if its source is still there, else this trueup's version on crates.io.
fn sdk_dependency(sdk: Option<&Path>) -> anyhow::Result<(String, String)> {
    let local = match sdk {
        Some(path) => {
            let path = path
                .canonicalize()
                .with_context(|| format!("--sdk {}: no such folder", path.display()))?;
            if !path.join("Cargo.toml").is_file() {
                bail!(
                    "--sdk {}: there is no Cargo.toml there; point at the trueup-plugin-sdk crate's folder",
                    path.display()
                );
            }
            Some(path)
        }
        None => Path::new(BUILT_FROM_SDK)
            .canonicalize()
            .ok()
            .filter(|path| path.join("Cargo.toml").is_file()),
    };
    Ok(match local {
        Some(path) => {
            let shown = path.display().to_string();
            (
                format!("{{ path = {} }}", super::toml_string(&shown)),
                format!("path {shown}"),
            )
        }
        None => {
            let version = env!("CARGO_PKG_VERSION");
            (
                format!("\"{version}\""),
                format!("version {version} from crates.io"),
            )
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_are_camel_case_and_clear_of_the_scaffolds_own() {
        assert_eq!(type_name("blank-names"), "BlankNames");
        assert_eq!(type_name("iban_check2"), "IbanCheck2");
        assert_eq!(type_name("config"), "ConfigCheck");
    }

    #[test]
    fn names_must_be_crate_names() {
        assert!(check_name("blank-names").is_ok());
        assert!(check_name("x9_y").is_ok());
        for bad in ["", "Blank", "9lives", "-x", "a b", "naïve", "test", "fn"] {
            assert!(check_name(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
