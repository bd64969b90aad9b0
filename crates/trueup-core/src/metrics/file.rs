//! The metrics as a file for node_exporter's textfile collector, replaced atomically: a
//! scrape sees the old file or the new one, never half of one.

use std::io::Write as _;
use std::path::Path;

use super::Metrics;
use crate::Result;
use crate::write::OutputFile;

/// Writes the metrics for node_exporter's textfile collector, whole or not at all
/// ([`OutputFile`]: a temporary `.NAME.XXXXXX.tmp` beside `path`, which the collector does
/// not read, synced and renamed over it).
pub fn write_file(path: &Path, metrics: &Metrics) -> Result<()> {
    let mut text = String::with_capacity(64 * 1024);
    metrics.render(&mut text);
    let mut file = OutputFile::create(path, "metrics file")?;
    file.write_all(text.as_bytes())
        .map_err(|source| crate::Error::Write {
            what: "metrics file",
            path: path.to_owned(),
            source,
        })?;
    file.commit()
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
