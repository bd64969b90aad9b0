//! One module per subcommand.

mod baseline;
mod check;
mod compile;
mod demo;
mod diff;
mod gc;
mod init;
mod plugin;
mod repair;
mod report;
mod rules;
mod runs;
mod schema;
mod serve;
mod show;
mod validate;

use crate::ExitStatus;
use crate::args::{Cli, Command};
use crate::printer::Printer;

pub async fn run(cli: Cli, printer: &Printer) -> anyhow::Result<ExitStatus> {
    let project = &cli.global.project;
    match &cli.command {
        Command::Init(args) => init::run(args, printer),
        Command::Validate(args) => validate::run(args, project, printer).await,
        Command::Schema(args) => schema::run(args),
        Command::Check(args) => check::run(args, project, printer).await,
        Command::Compile(args) => compile::run(args, project),
        Command::Rules(args) => rules::run(args, project),
        Command::Demo(args) => demo::run(args, printer).await,
        Command::Runs(args) => runs::run(args, project).await,
        Command::Show(args) => show::run(args, project).await,
        Command::Diff(args) => diff::run(args, project, printer).await,
        Command::Baseline(args) => baseline::run(args, project, printer).await,
        Command::Gc(args) => gc::run(args, project, printer).await,
        Command::Plugin(args) => plugin::run(args, &cli.global, printer),
        Command::Plan(args) => repair::plan(args, project).await,
        Command::Apply(args) => repair::apply(args, project).await,
        Command::Undo(args) => repair::undo(args, project, printer).await,
        Command::Repairs(args) => repair::repairs(args, project).await,
        Command::Serve(args) => serve::run(args, project, printer).await,
        Command::Report(args) => report::run(args, project, printer).await,
    }
}

/// The state store of the project at `project` (`.trueup/state.db` beside it, or its
/// `[state] url`), which `check` creates: no other command creates a SQLite one.
pub async fn open_store(project: &std::path::Path) -> anyhow::Result<trueup_core::store::Store> {
    let location = store_location(project)?;
    Ok(trueup_core::store::Store::open_location(&location).await?)
}

/// The state store of the project at `project`, opened to read only: the commands that
/// only read it work on a store the user may read but not write.
pub async fn read_store(project: &std::path::Path) -> anyhow::Result<trueup_core::store::Store> {
    let location = store_location(project)?;
    Ok(trueup_core::store::Store::open_read_only(&location).await?)
}

fn store_location(project: &std::path::Path) -> anyhow::Result<trueup_core::store::StoreLocation> {
    if !project.is_file() {
        anyhow::bail!(
            "there is no project file {}: run history lives beside it",
            project.display()
        );
    }
    let location = trueup_core::store::StoreLocation::of_project(project)?;
    if let trueup_core::store::StoreLocation::File(path) = &location
        && !path.is_file()
    {
        anyhow::bail!(
            "no runs recorded yet in {}: `trueup check` records one",
            path.display()
        );
    }
    Ok(location)
}

/// The baseline file of the project at `project`.
pub fn baseline_path(project: &std::path::Path) -> std::path::PathBuf {
    project
        .parent()
        .unwrap_or(std::path::Path::new(""))
        .join(trueup_core::store::baseline::FILE)
}
