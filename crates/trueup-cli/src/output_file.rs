//! `--output FILE`: a report written whole or not at all. It is written to a temporary file
//! in the same folder and renamed over FILE once complete, so that a reader (a web server,
//! a CI step, a cron job's mail) never sees half of one, and a failed run leaves the last
//! report in place. Something at FILE that is not a regular file (a FIFO would block,
//! a device would take the report, a folder cannot be replaced) is refused up front.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;

/// A file being written; [`OutputFile::commit`] puts it at its path, dropping it leaves
/// nothing behind.
pub struct OutputFile {
    path: PathBuf,
    file: io::BufWriter<tempfile::NamedTempFile>,
}

impl OutputFile {
    pub fn create(path: &Path) -> anyhow::Result<OutputFile> {
        if let Ok(metadata) = std::fs::metadata(path)
            && let Some(what) = trueup_core::read::not_regular(&metadata)
        {
            anyhow::bail!(
                "{}: it is {what}, not a file a report can be written to",
                path.display()
            );
        }
        let folder = match path.parent() {
            Some(folder) if !folder.as_os_str().is_empty() => folder,
            _ => Path::new("."),
        };
        let name = path.file_name().map_or_else(
            || "report".into(),
            |name| name.to_string_lossy().into_owned(),
        );
        let file = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".tmp")
            .tempfile_in(folder)
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(OutputFile {
            path: path.to_owned(),
            file: io::BufWriter::with_capacity(64 * 1024, file),
        })
    }

    /// Flushes the file and renames it to its path, replacing what was there. It gets the
    /// permissions of the file it replaces, or those a new file gets (the temporary file's
    /// are for its owner only).
    pub fn commit(self) -> anyhow::Result<()> {
        let failed = || format!("cannot write {}", self.path.display());
        let file = self
            .file
            .into_inner()
            .map_err(io::IntoInnerError::into_error);
        let file = file.with_context(failed)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = match std::fs::metadata(&self.path) {
                Ok(existing) => existing.permissions().mode() & 0o7777,
                Err(_) => 0o666 & !umask(),
            };
            file.as_file()
                .set_permissions(std::fs::Permissions::from_mode(mode))
                .with_context(failed)?;
        }
        file.as_file().sync_all().with_context(failed)?;
        file.persist(&self.path)
            .map_err(|e| e.error)
            .with_context(failed)?;
        Ok(())
    }
}

/// The process's umask, as Linux tells it (setting it to read it would race with the
/// threads that create files); elsewhere the usual `022`.
#[cfg(unix)]
fn umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Umask:"))
                .and_then(|mask| u32::from_str_radix(mask.trim(), 8).ok())
        })
        .unwrap_or(0o022)
}

impl Write for OutputFile {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.file.write(bytes)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Writes what `write` writes to `file` and puts it in place, or to stdout without one.
pub fn write_to(
    file: Option<OutputFile>,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> anyhow::Result<()> {
    match file {
        Some(mut file) => {
            write(&mut file)?;
            file.commit()
        }
        None => {
            let mut out = io::BufWriter::with_capacity(64 * 1024, io::stdout().lock());
            write(&mut out)?;
            Ok(out.flush()?)
        }
    }
}
