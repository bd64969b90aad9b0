//! `trueup schema`: print the JSON Schema of rule files or of `trueup.toml`.

use std::io::Write;

use crate::ExitStatus;
use crate::args::{SchemaArgs, SchemaKind};

pub fn run(args: &SchemaArgs) -> anyhow::Result<ExitStatus> {
    let schema = match args.kind {
        SchemaKind::Rules => trueup_core::schema::rule_file(),
        SchemaKind::Project => trueup_core::schema::project_file(),
    };
    std::io::stdout().lock().write_all(schema.as_bytes())?;
    Ok(ExitStatus::Success)
}
