//! Files written whole or not at all (reports, metrics files): to a temporary file in the
//! same folder, synced, then renamed over the target, so that a reader (a web server, a CI
//! step, node_exporter's textfile collector) never sees half of one, and a failure leaves
//! the old file in place. Something at the path that is not a regular file (a FIFO would
//! block, a device would take the bytes, a folder cannot be replaced) is refused up front.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// An error when something at `path` is not a regular file that a `what` ("report",
/// "plan") can be written to; nothing there, or a regular file, is fine.
pub fn refuse_odd_file(path: &Path, what: &str) -> Result<()> {
    match std::fs::metadata(path).map(|m| crate::read::not_regular(&m)) {
        Ok(Some(kind)) => Err(Error::Other(format!(
            "{}: it is {kind}, not a file a {what} can be written to",
            path.display()
        ))),
        _ => Ok(()),
    }
}

/// A file being written; [`OutputFile::commit`] puts it at its path, dropping it leaves
/// nothing behind. The temporary file is `.NAME.XXXXXX.tmp` beside the target, so that a
/// collector reading `*.prom` files never reads it.
pub struct OutputFile {
    what: &'static str,
    path: PathBuf,
    file: io::BufWriter<tempfile::NamedTempFile>,
}

impl OutputFile {
    /// Starts writing a `what` ("report", "metrics file") to `path`.
    pub fn create(path: &Path, what: &'static str) -> Result<OutputFile> {
        let Some(name) = path.file_name() else {
            return Err(Error::Other(format!(
                "`{}` is not a file name to write the {what} to",
                path.display()
            )));
        };
        refuse_odd_file(path, what)?;
        let folder = match path.parent() {
            Some(folder) if !folder.as_os_str().is_empty() => folder,
            _ => Path::new("."),
        };
        let prefix = format!(".{}.", name.to_string_lossy());
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(".tmp");
        // A new file gets the usual mode (the umask applies), not the owner-only one of
        // temporary files.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(std::fs::Permissions::from_mode(0o666));
        }
        let file = builder
            .tempfile_in(folder)
            .map_err(|source| cannot_write(what, path, source))?;
        Ok(OutputFile {
            what,
            path: path.to_owned(),
            file: io::BufWriter::with_capacity(64 * 1024, file),
        })
    }

    /// Flushes and syncs the file and renames it to its path, replacing what was there
    /// (whose permissions it keeps).
    pub fn commit(self) -> Result<()> {
        let (what, path) = (self.what, self.path);
        let file = self
            .file
            .into_inner()
            .map_err(|e| cannot_write(what, &path, e.into_error()))?;
        if let Ok(existing) = std::fs::metadata(&path) {
            file.as_file()
                .set_permissions(existing.permissions())
                .map_err(|e| cannot_write(what, &path, e))?;
        }
        file.as_file()
            .sync_all()
            .map_err(|e| cannot_write(what, &path, e))?;
        file.persist(&path)
            .map_err(|e| cannot_write(what, &path, e.error))?;
        Ok(())
    }
}

impl Write for OutputFile {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.file.write(bytes)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

fn cannot_write(what: &'static str, path: &Path, source: io::Error) -> Error {
    Error::Write {
        what,
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_file_is_replaced_whole_and_nothing_else_stays() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.html");
        std::fs::write(&path, "old").unwrap();
        let mut file = OutputFile::create(&path, "report").unwrap();
        file.write_all(b"new").unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "old",
            "not before commit"
        );
        file.commit().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(names(dir.path()), ["report.html"]);

        let mut dropped = OutputFile::create(&path, "report").unwrap();
        dropped.write_all(b"half").unwrap();
        drop(dropped);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(names(dir.path()), ["report.html"]);
    }

    #[cfg(unix)]
    #[test]
    fn a_replaced_file_keeps_its_mode_and_a_new_one_gets_the_usual_one() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        let kept = dir.path().join("kept.prom");
        std::fs::write(&kept, "old").unwrap();
        std::fs::set_permissions(&kept, std::fs::Permissions::from_mode(0o640)).unwrap();
        OutputFile::create(&kept, "metrics file")
            .unwrap()
            .commit()
            .unwrap();
        assert_eq!(mode(&kept), 0o640);

        let usual = dir.path().join("usual");
        std::fs::File::create(&usual).unwrap();
        let new = dir.path().join("new.prom");
        OutputFile::create(&new, "metrics file")
            .unwrap()
            .commit()
            .unwrap();
        assert_eq!(mode(&new), mode(&usual), "as any new file, not owner-only");
    }

    #[cfg(unix)]
    #[test]
    fn what_is_no_file_to_write_is_refused_up_front() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        for (path, expected) in [
            (fifo.as_path(), "not a file a report can be written to"),
            (dir.path(), "not a file a report can be written to"),
            (Path::new(".."), "is not a file name"),
        ] {
            let Err(err) = OutputFile::create(path, "report") else {
                panic!("{} was taken", path.display());
            };
            assert!(err.to_string().contains(expected), "{err}");
        }
        assert_eq!(names(dir.path()), ["fifo"]);
    }
}
