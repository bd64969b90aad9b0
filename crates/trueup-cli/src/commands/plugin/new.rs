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
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let (sdk, sdk_shown) = sdk_dependency(args.sdk.as_deref(), &dir)?;
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

/// The SDK dependency (a TOML value) and how to show it. A path is always written relative
/// to the crate's folder `dir`, so that the crate builds wherever the two move together:
/// `--sdk`'s folder; else, when `dir` is inside a checkout of trueup, that checkout's SDK;
/// else a git dependency on this trueup's tag of its repository (the SDK is not on
/// crates.io), which builds on any machine that reaches the repository.
fn sdk_dependency(sdk: Option<&Path>, dir: &Path) -> anyhow::Result<(String, String)> {
    let dir = dir
        .canonicalize()
        .with_context(|| format!("cannot find {}", dir.display()))?;
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
        None => checkout_sdk(&dir),
    };
    Ok(match local {
        Some(path) => {
            let relative = relative_path(&dir, &path);
            (
                format!("{{ path = {} }}", super::toml_string(&relative)),
                format!("path {relative}"),
            )
        }
        None => {
            let (repository, tag) = (SDK_REPOSITORY, concat!("v", env!("CARGO_PKG_VERSION")));
            (
                format!(
                    "{{ git = {}, tag = {} }}",
                    super::toml_string(repository),
                    super::toml_string(tag)
                ),
                format!(
                    "git {repository}, tag {tag} (the crate is not inside a trueup checkout; \
                     on a machine that cannot reach the repository, pass --sdk \
                     <checkout>/crates/trueup-plugin-sdk)"
                ),
            )
        }
    })
}

/// The repository the SDK's git dependency names.
const SDK_REPOSITORY: &str = env!("CARGO_PKG_REPOSITORY");

/// The SDK of the trueup checkout `dir` is inside (the first folder up from it that holds
/// `crates/trueup-plugin-sdk/Cargo.toml`), if any.
fn checkout_sdk(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .map(|folder| folder.join("crates").join("trueup-plugin-sdk"))
        .find(|sdk| sdk.join("Cargo.toml").is_file())
}

/// `to` relative to the folder `from` (both absolute), with `/` between components, which
/// cargo reads on every platform. Paths with no common root (another Windows drive) stay
/// absolute.
fn relative_path(from: &Path, to: &Path) -> String {
    let from: Vec<_> = from.components().collect();
    let to: Vec<_> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    if common == 0 {
        return to.iter().collect::<PathBuf>().display().to_string();
    }
    let ups = std::iter::repeat_n("..".to_owned(), from.len() - common);
    let downs = to[common..]
        .iter()
        .map(|c| c.as_os_str().to_string_lossy().into_owned());
    let parts: Vec<String> = ups.chain(downs).collect();
    if parts.is_empty() {
        ".".to_owned()
    } else {
        parts.join("/")
    }
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
    fn sdk_paths_are_relative_to_the_crate() {
        let at = |p: &str| Path::new(p).to_path_buf();
        assert_eq!(
            relative_path(
                &at("/repo/plugins/blank"),
                &at("/repo/crates/trueup-plugin-sdk")
            ),
            "../../crates/trueup-plugin-sdk"
        );
        assert_eq!(
            relative_path(&at("/repo"), &at("/repo/crates/sdk")),
            "crates/sdk"
        );
        assert_eq!(relative_path(&at("/a/b"), &at("/a/b")), ".");
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
