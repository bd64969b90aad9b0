//! `trueup init`: write a commented starter project.

use anyhow::{Context, bail};
use trueup_core::project::{PROJECT_FILE, STARTER};

use crate::ExitStatus;
use crate::args::InitArgs;
use crate::printer::Printer;

/// A commented example rule for a new project.
const EXAMPLE_RULE: &str = include_str!("example-rule.toml");

pub fn run(args: &InitArgs, printer: &Printer) -> anyhow::Result<ExitStatus> {
    let files = [
        (args.dir.join(PROJECT_FILE), STARTER),
        (args.dir.join("rules").join("example.toml"), EXAMPLE_RULE),
    ];
    if let Some((existing, _)) = files.iter().find(|(path, _)| path.exists() && !args.force) {
        bail!(
            "{} already exists; use --force to overwrite it",
            existing.display()
        );
    }
    for (path, text) in &files {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
        printer.status(format!("created {}", path.display()));
    }
    printer.status(
        "next: set the source's url in trueup.toml, then run `trueup validate` and `trueup check`",
    );
    Ok(ExitStatus::Success)
}
