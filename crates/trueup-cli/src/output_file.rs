//! `--output FILE`: a report written whole or not at all (core's [`OutputFile`]), or to
//! stdout without one.

use std::io::{self, Write};
use std::path::Path;

pub use trueup_core::write::OutputFile;

/// Starts writing a report to `path`.
pub fn create(path: &Path) -> anyhow::Result<OutputFile> {
    Ok(OutputFile::create(path, "report")?)
}

/// Writes what `write` writes to `file` and puts it in place, or to stdout without one.
pub fn write_to(
    file: Option<OutputFile>,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> anyhow::Result<()> {
    match file {
        Some(mut file) => {
            write(&mut file)?;
            Ok(file.commit()?)
        }
        None => {
            let mut out = io::BufWriter::with_capacity(64 * 1024, io::stdout().lock());
            write(&mut out)?;
            Ok(out.flush()?)
        }
    }
}
