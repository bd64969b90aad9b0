//! Reading the files a project names (`trueup.toml`, rule files, plugins): regular files
//! only, never more than a size limit, and never blocking on a FIFO or a device.
//!
//! A path's metadata is checked before it is opened, so a FIFO or `/dev/zero` is refused
//! without being touched; the file is then opened non-blocking and checked again through its
//! descriptor, so a path swapped for a FIFO in between cannot hang the read either.

use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::path::Path;

use crate::diagnostic::SourceFile;
use crate::size::ByteSize;
use crate::{Error, Result};

/// The largest `trueup.toml` or rule file trueup reads.
pub const TEXT_LIMIT: u64 = 16 << 20;
/// The largest plugin module trueup reads.
pub const PLUGIN_LIMIT: u64 = 64 << 20;

const BOM: &[u8] = "\u{feff}".as_bytes();

/// What a path that is not a regular file is, e.g. "a directory"; `None` for a regular file.
pub fn not_regular(metadata: &Metadata) -> Option<&'static str> {
    let kind = metadata.file_type();
    if kind.is_file() {
        return None;
    }
    if kind.is_dir() {
        return Some("a directory");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return Some("a FIFO (named pipe)");
        }
        if kind.is_socket() {
            return Some("a socket");
        }
        if kind.is_char_device() || kind.is_block_device() {
            return Some("a device");
        }
    }
    Some("not a regular file")
}

/// The bytes of the regular file at `path`, at most `limit` of them. Any other kind of
/// file, or a larger one, is an error of kind `InvalidInput` saying what it is.
pub fn bytes(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let file = open_regular(path)?;
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "it is larger than {}, the most trueup reads of such a file",
                ByteSize(limit)
            ),
        ));
    }
    Ok(bytes)
}

/// The regular file at `path`, opened to read without blocking on a FIFO or a device (its
/// kind is checked before and after opening); any other kind is an `InvalidInput` error
/// saying what it is. For files read as a stream, which [`bytes`] would hold whole.
pub fn open_regular(path: &Path) -> io::Result<File> {
    refuse_odd(&std::fs::metadata(path)?)?;
    let file = open(path)?;
    refuse_odd(&file.metadata()?)?;
    Ok(file)
}

fn refuse_odd(metadata: &Metadata) -> io::Result<()> {
    match not_regular(metadata) {
        None => Ok(()),
        Some(what) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("it is {what}, not a regular file"),
        )),
    }
}

#[cfg(unix)]
fn open(path: &Path) -> io::Result<File> {
    use rustix::fs::{Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    Ok(File::from(rustix::fs::open(path, flags, Mode::empty())?))
}

#[cfg(not(unix))]
fn open(path: &Path) -> io::Result<File> {
    File::open(path)
}

/// A `trueup.toml` or rule file as text. A UTF-8 byte order mark is dropped (positions are
/// counted without it); text that is not UTF-8 is a diagnostic at its first bad byte.
pub fn source_file(path: &Path) -> Result<SourceFile> {
    let bytes = bytes(path, TEXT_LIMIT).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })?;
    let bytes = bytes.strip_prefix(BOM).map(<[u8]>::to_vec).unwrap_or(bytes);
    match String::from_utf8(bytes) {
        Ok(text) => Ok(SourceFile {
            path: path.to_owned(),
            text,
        }),
        Err(err) => {
            let bad = err.utf8_error();
            let byte = err.as_bytes()[bad.valid_up_to()];
            // The text before the bad byte is kept as it is, so positions in it are right.
            let file = SourceFile {
                path: path.to_owned(),
                text: String::from_utf8_lossy(err.as_bytes()).into_owned(),
            };
            let at = bad.valid_up_to();
            let problem = file
                .at_span(at..at + char::REPLACEMENT_CHARACTER.len_utf8(), format!(
                    "the file is not UTF-8 text: byte 0x{byte:02X} here does not belong to a UTF-8 character"
                ))
                .with_hint("save the file as UTF-8");
            Err(Error::Invalid(vec![problem]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_up_to_the_limit_and_refuses_more() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.toml");
        std::fs::write(&path, b"12345").unwrap();
        assert_eq!(bytes(&path, 5).unwrap(), b"12345");
        let err = bytes(&path, 4).unwrap_err();
        assert_eq!(
            err.to_string(),
            "it is larger than 4B, the most trueup reads of such a file"
        );
    }

    #[test]
    fn refuses_a_directory_and_a_device() {
        let dir = tempfile::tempdir().unwrap();
        let err = bytes(dir.path(), 10).unwrap_err();
        assert_eq!(err.to_string(), "it is a directory, not a regular file");
        #[cfg(unix)]
        {
            let err = bytes(Path::new("/dev/zero"), 10).unwrap_err();
            assert_eq!(err.to_string(), "it is a device, not a regular file");
        }
    }

    #[test]
    fn drops_a_byte_order_mark() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.toml");
        std::fs::write(&path, b"\xEF\xBB\xBFid = 1\n").unwrap();
        assert_eq!(source_file(&path).unwrap().text, "id = 1\n");
    }
}
