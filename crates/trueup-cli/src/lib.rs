//! The `trueup` command line: argument parsing, output, exit codes. Commands live in
//! `commands/`, one file each; what a user reads is rendered in `render/`.

mod args;
mod checking;
mod commands;
mod output_file;
mod printer;
mod render;

use std::process::ExitCode;

use clap::Parser;

pub use args::Cli;
use printer::Printer;

/// How `trueup` exits: what CI and cron act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Nothing at or above the failing severity.
    Success,
    /// Findings at or above the failing severity.
    Failure,
    /// Usage, configuration, connection or rule errors.
    Error,
    /// Stopped by SIGINT or SIGTERM (128 + SIGINT, as shells report it).
    Interrupted,
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> Self {
        ExitCode::from(match status {
            ExitStatus::Success => 0,
            ExitStatus::Failure => 1,
            ExitStatus::Error => 2,
            ExitStatus::Interrupted => 130,
        })
    }
}

/// Parses argv, runs the command and prints any error as `error:` with its causes.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return if err.use_stderr() {
                ExitStatus::Error.into()
            } else {
                ExitStatus::Success.into()
            };
        }
    };
    let printer = Printer::new(&cli.global);
    match run(cli, &printer) {
        Ok(status) => status.into(),
        Err(err) if is_broken_pipe(&err) => ExitStatus::Success.into(),
        Err(err) => {
            printer.error(&err);
            ExitStatus::Error.into()
        }
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli, printer: &Printer) -> anyhow::Result<ExitStatus> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(commands::run(cli, printer))
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        let kind = cause
            .downcast_ref::<std::io::Error>()
            .map(std::io::Error::kind)
            .or_else(|| {
                cause
                    .downcast_ref::<serde_json::Error>()
                    .and_then(serde_json::Error::io_error_kind)
            });
        kind == Some(std::io::ErrorKind::BrokenPipe)
    })
}
