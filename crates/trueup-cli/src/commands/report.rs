//! `trueup report [RUN]`: a recorded run and its trend as Markdown, HTML, JSON or JUnit
//! XML (`trueup_core::report` builds and renders it), to stdout or `--output FILE`.

use std::path::Path;

use trueup_core::load::Project;
use trueup_core::report::{self, Format, Options};
use trueup_core::rule::Severity;

use crate::ExitStatus;
use crate::args::{ReportArgs, ReportFormat};
use crate::commands::read_store;
use crate::output_file::{self, write_to};
use crate::printer::Printer;

pub async fn run(
    args: &ReportArgs,
    project_path: &Path,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let store = read_store(project_path).await?;
    // Refused now, before any work, when it cannot be written.
    let file = args
        .output
        .as_deref()
        .map(output_file::create)
        .transpose()?;
    // Titles, owners and runbooks are the rule files' when they load; otherwise the report
    // shows what the run recorded.
    let project = match Project::load(project_path) {
        Ok(project) => Some(project),
        Err(err) => {
            printer.status(format!(
                "the project does not load ({}; `trueup validate` says more): the report \
                 shows the owners and runbooks the run recorded, and no titles",
                trueup_core::error::chain(&err)
            ));
            None
        }
    };
    let options = Options {
        show: usize::from(args.show),
        trend: usize::from(args.trend),
        fail_on: args
            .fail_on
            .or(project.as_ref().map(|p| p.defaults.fail_on))
            .unwrap_or(Severity::Low),
    };
    let built = async {
        let id = store.resolve(&args.run).await?;
        report::from_store(&store, id, &options, project.as_ref()).await
    }
    .await;
    store.close().await;
    let built = built?;
    write_to(file, |out| report::render(&built, format(args.format), out))?;
    Ok(ExitStatus::Success)
}

fn format(format: ReportFormat) -> Format {
    match format {
        ReportFormat::Markdown => Format::Markdown,
        ReportFormat::Html => Format::Html,
        ReportFormat::Json => Format::Json,
        ReportFormat::Junit => Format::Junit,
    }
}
