//! `trueup init`: write a commented starter project, and keep its run history out of git.

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
    ignore_state(&args.dir, printer)?;
    let cd = match args.dir == std::path::Path::new(".") {
        true => String::new(),
        false => format!("`cd {}`, ", args.dir.display()),
    };
    printer.status(format!(
        "next: {cd}set the source's url in trueup.toml, then run `trueup validate` and `trueup check`"
    ));
    Ok(ExitStatus::Success)
}

/// What `.gitignore` gets: the folder of the state store (run history, not for git).
const IGNORED: &str = ".trueup/";

/// Writes `dir/.gitignore` ignoring `.trueup/`, or adds the line to the one there.
fn ignore_state(dir: &std::path::Path, printer: &Printer) -> anyhow::Result<()> {
    let path = dir.join(".gitignore");
    let existing = match trueup_core::read::bytes(&path, trueup_core::read::TEXT_LIMIT) {
        Ok(bytes) => Some(
            String::from_utf8(bytes)
                .with_context(|| format!("{} is not UTF-8 text", path.display()))?,
        ),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
        Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
    };
    let text = match &existing {
        None => format!("# trueup's run history (the state store)\n{IGNORED}\n"),
        Some(text)
            if text
                .lines()
                .any(|l| [".trueup", ".trueup/", "/.trueup/"].contains(&l.trim())) =>
        {
            return Ok(());
        }
        Some(text) if text.is_empty() || text.ends_with('\n') => format!("{text}{IGNORED}\n"),
        Some(text) => format!("{text}\n{IGNORED}\n"),
    };
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    printer.status(match existing {
        None => format!("created {}", path.display()),
        Some(_) => format!("added {IGNORED} to {}", path.display()),
    });
    Ok(())
}
