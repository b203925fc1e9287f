//! The content-addressed cache verified artifacts are loaded from:
//! `<root>/<sha256>/<file name>`, directories mode 0700, files written to a
//! temporary name and renamed into place.
//!
//! A cached file is compared with the verified bytes before it is reused,
//! so a corrupted or replaced cache entry is rewritten, never loaded. The
//! cache root must be private to the user (it is created 0700): whoever can
//! write into it could swap a file between that check and the load.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::PackageError;

pub(crate) fn default_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("FIDIUS_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("fidius");
    }
    if let Some(home) = std::env::var_os("HOME") {
        return PathBuf::from(home).join(".cache").join("fidius");
    }
    let user = std::env::var("USER").unwrap_or_else(|_| "user".into());
    std::env::temp_dir().join(format!("fidius-cache-{user}"))
}

fn create_private_dir(dir: &Path) -> Result<(), PackageError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| PackageError::io(dir, e))?;
    check_private(dir)
}

/// Refuses a cache directory that is a symlink or that others can write
/// to: whoever can write into it could swap a verified file before it is
/// loaded.
pub(crate) fn check_private(dir: &Path) -> Result<(), PackageError> {
    let meta = std::fs::symlink_metadata(dir).map_err(|e| PackageError::io(dir, e))?;
    let refuse = |why: &str| {
        PackageError::io(
            dir,
            std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!("refusing to use it as the package cache: {why}"),
            ),
        )
    };
    if !meta.is_dir() {
        return Err(refuse("it is not a directory (or is a symbolic link)"));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        if meta.mode() & 0o022 != 0 {
            return Err(refuse("it is writable by group or others (use mode 0700)"));
        }
    }
    Ok(())
}

/// Whether the file at `path` holds exactly `bytes` (compared in chunks,
/// without reading it whole).
pub(crate) fn same_contents(path: &Path, bytes: &[u8]) -> bool {
    use std::io::Read as _;
    let Ok(mut file) = std::fs::File::open(path) else {
        return false;
    };
    if file.metadata().map(|m| m.len()).ok() != Some(bytes.len() as u64) {
        return false;
    }
    let mut chunk = vec![0u8; 256 * 1024];
    for piece in bytes.chunks(256 * 1024) {
        let buf = &mut chunk[..piece.len()];
        if file.read_exact(buf).is_err() || buf != piece {
            return false;
        }
    }
    matches!(file.read(&mut chunk[..1]), Ok(0))
}

/// A cache entry being prepared: either already holding the bytes, or
/// written to a temporary file that [`Staged::commit`] renames into place
/// (and that is removed if it is dropped instead).
#[derive(Debug)]
pub(crate) struct Staged {
    path: PathBuf,
    tmp: Option<PathBuf>,
}

impl Staged {
    /// Whether committing writes a new entry (rather than finding it
    /// already in place).
    pub(crate) fn is_new(&self) -> bool {
        self.tmp.is_some()
    }

    /// Puts the entry in place and returns its path.
    pub(crate) fn commit(mut self) -> Result<PathBuf, PackageError> {
        let path = std::mem::take(&mut self.path);
        if let Some(tmp) = self.tmp.take() {
            std::fs::rename(&tmp, &path).map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                PackageError::io(&path, e)
            })?;
        }
        Ok(path)
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            let _ = std::fs::remove_file(&tmp);
            // The digest's directory, when nothing else is in it: a refused
            // package leaves nothing behind. (Another stager that finds it
            // gone makes it again: see `create_temporary`.)
            if let Some(dir) = tmp.parent() {
                let _ = std::fs::remove_dir(dir);
            }
        }
    }
}

/// Removes the entry at `path` (and its digest's directory when that is
/// left empty): for an entry just committed whose contents the host then
/// refused.
pub(crate) fn discard(path: &Path) {
    let _ = std::fs::remove_file(path);
    if let Some(dir) = path.parent() {
        let _ = std::fs::remove_dir(dir);
    }
}

/// Creates the private directories for `<root>/<digest>/<name>` and
/// returns that path.
pub(crate) fn entry_path(root: &Path, digest: &str, name: &str) -> Result<PathBuf, PackageError> {
    create_private_dir(root)?;
    let dir = root.join(digest);
    create_private_dir(&dir)?;
    Ok(dir.join(name))
}

/// A new temporary file beside `path`, staged to be renamed onto it.
fn create_temporary(path: PathBuf) -> Result<(std::fs::File, Staged), PackageError> {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.{}.{n}.tmp", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    // A new file, never one that exists (or a symlink planted there).
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = match options.open(&tmp) {
        // The directory was just removed by a stager that gave up (see
        // `Staged`'s `Drop`): make it again, once.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = tmp.parent() {
                create_private_dir(dir)?;
            }
            options.open(&tmp)
        }
        other => other,
    }
    .map_err(|e| PackageError::io(&tmp, e))?;
    Ok((
        file,
        Staged {
            path,
            tmp: Some(tmp),
        },
    ))
}

/// Prepares `<root>/<digest>/<name>` to hold exactly `bytes`: nothing to do
/// when it already does, else they are written to a temporary file beside
/// it. Nothing appears under the final name before [`Staged::commit`], so
/// this may run on bytes not yet verified.
pub(crate) fn stage(
    root: &Path,
    digest: &str,
    name: &str,
    bytes: &[u8],
) -> Result<Staged, PackageError> {
    let path = entry_path(root, digest, name)?;
    if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) && same_contents(&path, bytes) {
        return Ok(Staged { path, tmp: None });
    }
    let (mut file, staged) = create_temporary(path)?;
    // No fsync: a copy lost in a crash is found to differ from the
    // verified bytes on the next open and rewritten.
    file.write_all(bytes)
        .map_err(|e| PackageError::io(&staged.path, e))?;
    Ok(staged)
}

/// [`stage`] for bytes that arrive in pieces: each piece is compared with
/// the cached file as it comes, or written to the temporary file. Any
/// mismatch or error only gives up (`finish` returns `None`); the caller
/// then stages the whole bytes the ordinary way.
pub(crate) struct Sink {
    staged: Staged,
    /// The cached file to compare with, or the temporary file to write.
    file: std::fs::File,
    compare: Option<Vec<u8>>,
    len: u64,
    done: u64,
    failed: bool,
}

impl Sink {
    /// A sink for `len` bytes to go to `<root>/<digest>/<name>`.
    pub(crate) fn open(
        root: &Path,
        digest: &str,
        name: &str,
        len: u64,
    ) -> Result<Self, PackageError> {
        let path = entry_path(root, digest, name)?;
        let sink = |staged, file, compare| Self {
            staged,
            file,
            compare,
            len,
            done: 0,
            failed: false,
        };
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file() && m.len() == len)
            && let Ok(file) = std::fs::File::open(&path)
        {
            return Ok(sink(Staged { path, tmp: None }, file, Some(Vec::new())));
        }
        let (file, staged) = create_temporary(path)?;
        // Reserving the blocks up front makes the writes cheaper (ext4:
        // about 1 ms less for 10 MiB). Only an optimization: file systems
        // without `fallocate` just get the writes.
        #[cfg(target_os = "linux")]
        let _ = rustix::fs::fallocate(&file, rustix::fs::FallocateFlags::empty(), 0, len);
        Ok(sink(staged, file, None))
    }

    /// How many bytes it was fed.
    pub(crate) fn written(&self) -> u64 {
        self.done
    }

    /// The next piece of the bytes.
    pub(crate) fn feed(&mut self, piece: &[u8]) {
        use std::io::Read as _;
        if self.failed {
            return;
        }
        self.done += piece.len() as u64;
        self.failed = self.done > self.len
            || match &mut self.compare {
                Some(buf) => {
                    buf.resize(piece.len(), 0);
                    self.file.read_exact(buf).is_err() || buf.as_slice() != piece
                }
                None => self.file.write_all(piece).is_err(),
            };
    }

    /// The staged entry, when every byte came and matched or was written.
    pub(crate) fn finish(self) -> Option<Staged> {
        (!self.failed && self.done == self.len).then_some(self.staged)
    }
}

/// Makes `<root>/<digest>/<name>` hold exactly `bytes` and returns its
/// path.
pub(crate) fn store(
    root: &Path,
    digest: &str,
    name: &str,
    bytes: &[u8],
) -> Result<PathBuf, PackageError> {
    stage(root, digest, name, bytes)?.commit()
}
