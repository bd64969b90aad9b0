//! `trueup gc`: prune old runs so that a nightly schedule never grows the store for ever.

use std::path::Path;

use anyhow::bail;

use crate::ExitStatus;
use crate::args::GcArgs;
use crate::commands::open_store;
use crate::printer::Printer;

pub async fn run(args: &GcArgs, project: &Path, printer: &Printer) -> anyhow::Result<ExitStatus> {
    if args.keep.is_none() && args.older_than.is_none() {
        bail!(
            "say what to delete: --keep N (keep the N newest runs) and/or --older-than AGE (e.g. 30d)"
        );
    }
    let store = open_store(project).await?;
    let deleted = store
        .gc(args.keep, args.older_than.map(|age| age.0))
        .await?;
    store.close().await;
    printer.status(format!(
        "deleted {deleted} run(s) from {}",
        store.location()
    ));
    Ok(ExitStatus::Success)
}
