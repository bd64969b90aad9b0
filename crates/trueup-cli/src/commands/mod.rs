//! One module per subcommand.

mod check;
mod compile;
mod demo;
mod init;
mod schema;
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
        Command::Demo(args) => demo::run(args, printer).await,
    }
}
