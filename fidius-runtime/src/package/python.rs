//! Python artifacts: the plugin's files
//! as an uncompressed tar, `artifacts/python3/<module>.tar`, whose root
//! holds `<module>.py`, the module hosts load.
//!
//! [`Package::open`](super::Package::open) unpacks the verified tar into the
//! cache, `<root>/<sha256>/python/`, and imports the module from there. An
//! unpacked tree is reused only when it holds exactly the tar's files with
//! the same bytes; otherwise it is unpacked afresh beside it and renamed
//! into place. Only regular files and directories with plain relative
//! names are accepted.

use std::path::{Component, PathBuf};
#[cfg(feature = "python")]
use {
    super::{PackageError, cache},
    std::io::Read as _,
    std::path::Path,
};

/// The target Python artifacts are listed under.
pub const PYTHON_TARGET: &str = "python3";

/// The files of a Python artifact: relative path and bytes.
#[cfg(feature = "python")]
type Files = Vec<(PathBuf, Vec<u8>)>;

/// Reads the tar `bytes` (artifact `entry` of the package at `path`).
#[cfg(feature = "python")]
fn files(path: &Path, entry: &str, bytes: &[u8]) -> Result<Files, PackageError> {
    let hostile = |reason: &'static str| PackageError::HostileEntry {
        path: path.to_owned(),
        entry: entry.to_owned(),
        reason,
    };
    let mut archive = tar::Archive::new(bytes);
    let mut files = Vec::new();
    let entries = archive
        .entries()
        .map_err(|_| hostile("the Python artifact is not a tar archive"))?;
    for item in entries {
        let mut item = item.map_err(|_| hostile("the Python artifact is not a tar archive"))?;
        let kind = item.header().entry_type();
        let name = item
            .path()
            .map_err(|_| hostile("a file name in the Python artifact is not valid"))?
            .into_owned();
        if !name
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(hostile(
                "a file in the Python artifact has an absolute path or `..`",
            ));
        }
        if kind.is_dir() {
            continue;
        }
        if !kind.is_file() {
            return Err(hostile(
                "the Python artifact holds something else than files and directories",
            ));
        }
        let mut data = Vec::new();
        item.read_to_end(&mut data)
            .map_err(|_| hostile("the Python artifact is truncated"))?;
        files.push((name, data));
    }
    Ok(files)
}

/// Whether `dir` holds exactly `files` (no other file).
#[cfg(feature = "python")]
fn holds(dir: &Path, files: &Files) -> bool {
    fn count(dir: &Path) -> Option<usize> {
        let mut n = 0;
        for entry in std::fs::read_dir(dir).ok()? {
            let entry = entry.ok()?;
            let kind = entry.file_type().ok()?;
            if kind.is_dir() {
                n += count(&entry.path())?;
            } else if kind.is_file() {
                n += 1;
            } else {
                return None;
            }
        }
        Some(n)
    }
    count(dir) == Some(files.len())
        && files
            .iter()
            .all(|(name, data)| cache::same_contents(&dir.join(name), data))
}

/// Unpacks the verified Python artifact `bytes` (SHA-256 `digest`) into the
/// cache under `root`; returns the path of `<module>.py` in it.
#[cfg(feature = "python")]
pub(crate) fn unpack(
    path: &Path,
    entry: &str,
    root: &Path,
    digest: &str,
    bytes: &[u8],
) -> Result<PathBuf, PackageError> {
    let module = Path::new(entry)
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".tar"))
        .filter(|m| !m.is_empty())
        .ok_or_else(|| PackageError::HostileEntry {
            path: path.to_owned(),
            entry: entry.to_owned(),
            reason: "a Python artifact is named `<module>.tar`",
        })?;
    let files = files(path, entry, bytes)?;
    let main = PathBuf::from(format!("{module}.py"));
    if !files.iter().any(|(name, _)| *name == main) {
        return Err(PackageError::HostileEntry {
            path: path.to_owned(),
            entry: entry.to_owned(),
            reason: "the Python artifact has no `<module>.py` at its root",
        });
    }
    let dir = cache::entry_path(root, digest, "python")?;
    if holds(&dir, &files) {
        return Ok(dir.join(main));
    }
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.with_file_name(format!(".python.{}.{n}.tmp", std::process::id()));
    let written = (|| {
        for (name, data) in &files {
            let to = tmp.join(name);
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent).map_err(|e| PackageError::io(parent, e))?;
            }
            std::fs::write(&to, data).map_err(|e| PackageError::io(&to, e))?;
        }
        // Whatever was there does not hold exactly these files.
        if std::fs::symlink_metadata(&dir).is_ok() {
            std::fs::remove_dir_all(&dir).map_err(|e| PackageError::io(&dir, e))?;
        }
        std::fs::rename(&tmp, &dir).map_err(|e| PackageError::io(&dir, e))
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&tmp);
        // Another process may have unpacked the same files meanwhile.
        if !holds(&dir, &files) {
            return Err(e);
        }
    }
    Ok(dir.join(main))
}

/// A Python artifact: the tar of `files` (relative path, bytes), in a
/// stable order, for `<module>.tar`.
///
/// # Errors
/// A path that is absolute or holds `..`.
pub fn python_artifact(files: &[(PathBuf, Vec<u8>)]) -> Result<Vec<u8>, String> {
    let mut sorted: Vec<&(PathBuf, Vec<u8>)> = files.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut builder = tar::Builder::new(Vec::new());
    for (name, data) in sorted {
        if !name.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(format!("`{}` is not a plain relative path", name.display()));
        }
        let mut header = tar::Header::new_ustar();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, name, data.as_slice())
            .map_err(|e| format!("`{}`: {e}", name.display()))?;
    }
    builder.into_inner().map_err(|e| e.to_string())
}
