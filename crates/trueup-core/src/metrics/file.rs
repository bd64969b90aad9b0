//! The metrics as a file for node_exporter's textfile collector, replaced atomically: a
//! scrape sees the old file or the new one, never half of one.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::Metrics;
use crate::{Error, Result};

/// Writes the metrics for node_exporter's textfile collector: temp file in the same folder, then rename.
///
/// The temporary file is `.NAME.PID.tmp` beside `path` (the collector reads only `*.prom`
/// files, and a rename within one file system is atomic); it is synced before the rename
/// and removed when anything fails.
pub fn write_file(path: &Path, metrics: &Metrics) -> Result<()> {
    let mut text = String::with_capacity(64 * 1024);
    metrics.render(&mut text);
    let temporary = temporary_path(path)?;
    let written =
        write_synced(&temporary, text.as_bytes()).and_then(|()| std::fs::rename(&temporary, path));
    written.map_err(|source| {
        let _ = std::fs::remove_file(&temporary);
        Error::Context {
            context: format!("cannot write the metrics file {}", path.display()),
            source: Box::new(Error::Output(source)),
        }
    })
}

/// Where the file is written before it is renamed to `path`.
fn temporary_path(path: &Path) -> Result<PathBuf> {
    let name = path
        .file_name()
        .filter(|_| !path.as_os_str().is_empty())
        .ok_or_else(|| {
            Error::Other(format!(
                "`{}` is not a file name for the metrics (write e.g. /var/lib/node_exporter/textfile/trueup.prom)",
                path.display()
            ))
        })?;
    let mut temporary = std::ffi::OsString::from(".");
    temporary.push(name);
    temporary.push(format!(".{}.tmp", std::process::id()));
    Ok(path.with_file_name(temporary))
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_is_replaced_and_no_temporary_file_stays() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trueup.prom");
        std::fs::write(&path, "old").unwrap();
        let mut metrics = Metrics::new();
        metrics.declare("check");
        write_file(&path, &metrics).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("trueup_runs_total{schedule=\"check\",status=\"complete\"} 0\n"));
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["trueup.prom"]);
    }

    #[test]
    fn a_folder_that_is_missing_is_an_error_that_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("trueup.prom");
        let err = write_file(&path, &Metrics::new()).unwrap_err();
        let text = crate::error::chain(&err);
        assert!(text.contains("trueup.prom"), "{text}");
        assert!(write_file(Path::new(".."), &Metrics::new()).is_err());
    }
}
