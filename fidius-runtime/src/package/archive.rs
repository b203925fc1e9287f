//! Reading and writing the `.fidpkg` container: a gzip-compressed ustar
//! archive in one canonical byte layout (spec: `docs/src/fidpkg.md`).
//!
//! Reading is strict: the whole archive is decompressed into memory within
//! [`Limits`], every entry must be a plain file with a safe relative path,
//! and after the contents are checked the archive must be byte-for-byte
//! what [`write`] produces for them, so not a single byte (header field,
//! padding, gzip header) can change unnoticed. Nothing is written to disk
//! here.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use super::{Limits, PackageError};

/// The manifest's name in the archive.
pub const MANIFEST: &str = "fidius.toml";
/// The manifest signature's name in the archive.
pub const SIGNATURE: &str = "fidius.toml.sig";

/// The fixed start of every package: the gzip header (deflate, flag
/// FEXTRA, mtime 0, no extra flags, OS "unknown"), then the extra field's
/// length (8) and its one subfield `FD` of 4 bytes, which holds the CRC-32
/// of everything after it (deflate data and gzip trailer).
///
/// Deflate has bits that do not change the decompressed data (block
/// padding); the check makes a change to any byte of the file detectable
/// (CRC-32 catches every error burst of up to 32 bits). It is not a
/// security feature (anyone can recompute it): the signature over the
/// manifest, and the manifest's artifact digests, are.
const GZIP_PREFIX: [u8; 16] = [
    0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 0xff, 8, 0, b'F', b'D', 4, 0,
];
/// Length of the prefix plus the CRC.
const GZIP_HEADER_LEN: usize = GZIP_PREFIX.len() + 4;

fn crc32(bytes: &[u8]) -> [u8; 4] {
    let mut crc = flate2::Crc::new();
    crc.update(bytes);
    crc.sum().to_le_bytes()
}

/// The files of an archive, by path.
#[derive(Debug, Default)]
pub(crate) struct Contents {
    /// Where each file's bytes are in `canonical`.
    pub(crate) files: BTreeMap<String, std::ops::Range<usize>>,
    /// The decompressed tar stream, for [`Contents::check_canonical`].
    canonical: Vec<u8>,
}

/// Builds the canonical archive: the manifest, then the signature (if
/// any), then the artifacts sorted by path; mode 0644, uid/gid 0, mtime 0,
/// no user or group names.
///
/// # Errors
/// A message when a path does not fit a ustar header (100 bytes).
pub(crate) fn write(
    manifest: &[u8],
    signature: Option<&[u8]>,
    artifacts: &BTreeMap<String, Vec<u8>>,
) -> Result<Vec<u8>, String> {
    let tar = tar_bytes(manifest, signature, artifacts)?;
    let mut encoder =
        flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut encoder, &tar).map_err(|e| e.to_string())?;
    let mut body = encoder.finish().map_err(|e| e.to_string())?;
    let mut crc = flate2::Crc::new();
    crc.update(&tar);
    body.extend_from_slice(&crc.sum().to_le_bytes());
    body.extend_from_slice(&(tar.len() as u32).to_le_bytes());
    let mut gz = Vec::with_capacity(GZIP_HEADER_LEN + body.len());
    gz.extend_from_slice(&GZIP_PREFIX);
    gz.extend_from_slice(&crc32(&body));
    gz.extend_from_slice(&body);
    Ok(gz)
}

fn tar_bytes(
    manifest: &[u8],
    signature: Option<&[u8]>,
    artifacts: &BTreeMap<String, Vec<u8>>,
) -> Result<Vec<u8>, String> {
    let entries = artifacts.iter().map(|(p, d)| (p.as_str(), d.as_slice()));
    write_tar(Vec::new(), manifest, signature, entries)
}

/// Writes the canonical tar stream into `out`.
fn write_tar<'a, W: std::io::Write>(
    out: W,
    manifest: &[u8],
    signature: Option<&[u8]>,
    artifacts: impl Iterator<Item = (&'a str, &'a [u8])>,
) -> Result<W, String> {
    let mut builder = tar::Builder::new(out);
    let mut append = |path: &str, data: &[u8]| -> Result<(), String> {
        if path.len() > 100 {
            return Err(format!("archive path `{path}` is longer than 100 bytes"));
        }
        let mut header = tar::Header::new_ustar();
        header
            .set_path(path)
            .map_err(|e| format!("archive path `{path}`: {e}"))?;
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        builder
            .append(&header, data)
            .map_err(|e| format!("archive entry `{path}`: {e}"))
    };
    append(MANIFEST, manifest)?;
    if let Some(signature) = signature {
        append(SIGNATURE, signature)?;
    }
    for (path, data) in artifacts {
        append(path, data)?;
    }
    builder.into_inner().map_err(|e| e.to_string())
}

/// A writer that compares what is written with `expected` instead of
/// storing it.
struct Compare<'a> {
    expected: &'a [u8],
    at: usize,
    equal: bool,
}

impl std::io::Write for Compare<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let end = self.at + buf.len();
        self.equal &= self.expected.get(self.at..end) == Some(buf);
        self.at = end;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Why an entry path is unsafe, if it is.
fn unsafe_path(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("empty path");
    }
    if name.starts_with('/') || name.starts_with('\\') {
        return Some("absolute path");
    }
    if name.contains('\\') || name.contains(':') || name.contains('\0') {
        return Some("path with `\\`, `:` or NUL");
    }
    for part in name.split('/') {
        match part {
            ".." => return Some("path with `..`"),
            "" | "." => return Some("path with an empty or `.` component"),
            _ => {}
        }
    }
    None
}

/// Decompresses and reads `bytes` (the package at `path`), checking
/// structure and limits; the contents are not yet verified.
pub(crate) fn read(path: &Path, bytes: &[u8], limits: &Limits) -> Result<Contents, PackageError> {
    let archive_err = |detail: String| PackageError::Archive {
        path: path.to_owned(),
        detail,
    };
    if bytes.len() < 2 || bytes[..2] != GZIP_PREFIX[..2] {
        return Err(archive_err("not gzip-compressed".into()));
    }
    if bytes.len() < GZIP_HEADER_LEN || bytes[..GZIP_PREFIX.len()] != GZIP_PREFIX {
        return Err(archive_err(
            "the gzip header is not a .fidpkg header (flags, mtime, extra field or OS byte differ)"
                .into(),
        ));
    }
    if bytes[GZIP_PREFIX.len()..GZIP_HEADER_LEN] != crc32(&bytes[GZIP_HEADER_LEN..]) {
        return Err(archive_err(
            "the compressed data does not match the check value in the gzip header (corrupt or truncated)"
                .into(),
        ));
    }
    let mut decoder = flate2::bufread::GzDecoder::new(bytes);
    // Size the buffer from the gzip trailer's length (mod 2^32), within the
    // limit; a wrong value only costs a reallocation.
    let declared = bytes
        .get(bytes.len().saturating_sub(4)..)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map_or(0, |b| u64::from(u32::from_le_bytes(b)));
    // Deflate expands at most about 1032:1, which bounds what an attacker's
    // trailer can make us reserve; a failed reservation just grows later.
    let capacity = declared
        .min(limits.max_total_bytes)
        .min((bytes.len() as u64).saturating_mul(1032));
    let mut tar = Vec::new();
    let _ = tar.try_reserve_exact(capacity as usize + 1);
    (&mut decoder)
        .take(limits.max_total_bytes.saturating_add(1))
        .read_to_end(&mut tar)
        .map_err(|e| archive_err(format!("gzip: {e}")))?;
    if tar.len() as u64 > limits.max_total_bytes {
        return Err(PackageError::LimitExceeded {
            path: path.to_owned(),
            what: "the decompressed archive".into(),
            limit: limits.max_total_bytes,
        });
    }
    if !decoder.into_inner().is_empty() {
        return Err(archive_err("data after the end of the gzip stream".into()));
    }

    let mut contents = Contents::default();
    let mut archive = tar::Archive::new(tar.as_slice());
    let entries = archive
        .entries()
        .map_err(|e| archive_err(format!("tar: {e}")))?;
    for entry in entries {
        let entry = entry.map_err(|e| archive_err(format!("tar: {e}")))?;
        let name = String::from_utf8(entry.path_bytes().into_owned())
            .map_err(|_| archive_err("an entry name is not UTF-8".into()))?;
        if name.chars().any(char::is_control) {
            return Err(PackageError::HostileEntry {
                path: path.to_owned(),
                entry: name.escape_debug().to_string(),
                reason: "control characters in the path",
            });
        }
        let hostile = |reason| PackageError::HostileEntry {
            path: path.to_owned(),
            entry: name.clone(),
            reason,
        };
        match entry.header().entry_type() {
            tar::EntryType::Regular => {}
            tar::EntryType::Symlink => return Err(hostile("symbolic links are not allowed")),
            tar::EntryType::Link => return Err(hostile("hard links are not allowed")),
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                return Err(hostile("device files and FIFOs are not allowed"));
            }
            tar::EntryType::Directory => return Err(hostile("directories are not allowed")),
            _ => return Err(hostile("only plain files are allowed")),
        }
        if let Some(reason) = unsafe_path(&name) {
            return Err(hostile(reason));
        }
        if contents.files.contains_key(&name) {
            return Err(PackageError::DuplicateEntry {
                path: path.to_owned(),
                entry: name,
            });
        }
        if contents.files.len() >= limits.max_entries {
            return Err(PackageError::LimitExceeded {
                path: path.to_owned(),
                what: "the number of entries".into(),
                limit: limits.max_entries as u64,
            });
        }
        let size = entry
            .header()
            .size()
            .map_err(|e| archive_err(format!("tar: {e}")))?;
        let limit = if name == MANIFEST || name == SIGNATURE {
            limits.max_manifest_bytes
        } else {
            limits.max_entry_bytes
        };
        if size > limit {
            return Err(PackageError::LimitExceeded {
                path: path.to_owned(),
                what: format!("entry `{name}` ({size} bytes)"),
                limit,
            });
        }
        // The data stays in the decompressed buffer; only its range is kept.
        let start = usize::try_from(entry.raw_file_position()).unwrap_or(usize::MAX);
        let range = start..start.saturating_add(size as usize);
        if range.end > tar.len() {
            return Err(archive_err(format!(
                "tar entry `{name}` runs past the end of the archive"
            )));
        }
        contents.files.insert(name, range);
    }
    contents.canonical = tar;
    Ok(contents)
}

impl Contents {
    /// The bytes of file `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&[u8]> {
        self.files.get(name).map(|r| &self.canonical[r.clone()])
    }

    /// Checks that the decompressed archive is exactly the canonical layout
    /// of its contents (call after the contents are verified, so a changed
    /// manifest or artifact is reported as such first).
    pub(crate) fn check_canonical(&self, path: &Path) -> Result<(), PackageError> {
        let artifacts = self
            .files
            .iter()
            .filter(|(p, _)| *p != MANIFEST && *p != SIGNATURE)
            .map(|(p, r)| (p.as_str(), &self.canonical[r.clone()]));
        let compare = Compare {
            expected: &self.canonical,
            at: 0,
            equal: true,
        };
        let manifest = self.get(MANIFEST).unwrap_or_default();
        let signature = self.get(SIGNATURE);
        let compare = write_tar(compare, manifest, signature, artifacts).map_err(|detail| {
            PackageError::Archive {
                path: path.to_owned(),
                detail,
            }
        })?;
        if !compare.equal || compare.at != self.canonical.len() {
            return Err(PackageError::Archive {
                path: path.to_owned(),
                detail: "the archive is not in canonical form (a header, padding or order \
                         differs from what `cargo fidius package` writes)"
                    .into(),
            });
        }
        Ok(())
    }
}
