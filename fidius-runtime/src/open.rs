//! Opening the files a host is handed. A path may name a FIFO, a device, a
//! socket or a directory: opening a FIFO for reading blocks until a writer
//! comes (for good, if none does), and reading a device such as
//! `/dev/zero` never ends. Every file fidius reads whole is opened without
//! blocking and read only if it is a regular file.

use std::fs::File;
use std::path::Path;

/// Opens `path` for reading without blocking on a FIFO. What is opened may
/// be anything: check its type before reading it.
pub(crate) fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        // `O_NONBLOCK` only changes how FIFOs and devices open and read;
        // reads of a regular file behave as without it.
        options.custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32);
    }
    options.open(path)
}

/// Opens `path` for reading, with its length; `Ok(None)` when it is not a
/// regular file (after following symbolic links).
pub(crate) fn open_regular(path: &Path) -> std::io::Result<Option<(File, u64)>> {
    let file = open_nonblocking(path)?;
    let metadata = file.metadata()?;
    Ok(metadata.is_file().then_some((file, metadata.len())))
}

/// Reads `path` whole; `Ok(None)` when it is not a regular file.
pub(crate) fn read_regular(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read as _;
    let Some((mut file, len)) = open_regular(path)? else {
        return Ok(None);
    };
    let mut bytes = Vec::new();
    let _ = bytes.try_reserve_exact(len as usize);
    file.read_to_end(&mut bytes)?;
    Ok(Some(bytes))
}

/// [`read_regular`] as a [`LoadError`](crate::LoadError):
/// [`Io`](crate::LoadError::Io) or [`NotAFile`](crate::LoadError::NotAFile).
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, crate::LoadError> {
    match read_regular(path) {
        Ok(Some(bytes)) => Ok(bytes),
        Ok(None) => Err(crate::LoadError::NotAFile {
            path: path.to_owned(),
        }),
        Err(source) => Err(crate::LoadError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}
