//! `trueup check`: run the selected rules and report their findings.

use std::path::Path;

use trueup_core::load::Project;

use crate::ExitStatus;
use crate::args::CheckArgs;
use crate::checking::{execute, status};
use crate::printer::Printer;

pub async fn run(
    args: &CheckArgs,
    project_path: &Path,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let project = Project::load(project_path)?;
    printer.warnings(&trueup_core::validate::literal_passwords(&project));
    let report = execute(&project, args, printer, &mut |_| {}).await?;
    Ok(status(&report))
}
