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

use super::spare::{self, Stop};
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
    /// SHA-256 of entries, computed while decompressing, with the range
    /// each covers.
    digests: BTreeMap<String, (std::ops::Range<usize>, [u8; 32])>,
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
        let header = entry_header(path, data.len())?;
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

/// The canonical ustar header of a file of `len` bytes at `path`.
fn entry_header(path: &str, len: usize) -> Result<tar::Header, String> {
    if path.len() > 100 {
        return Err(format!("archive path `{path}` is longer than 100 bytes"));
    }
    let mut header = tar::Header::new_ustar();
    header
        .set_path(path)
        .map_err(|e| format!("archive path `{path}`: {e}"))?;
    header.set_size(len as u64);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    Ok(header)
}

/// The tar block size; data is padded with zeros to a multiple of it, and
/// two zero blocks end the archive.
const BLOCK: usize = 512;

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

/// The files of an archive: each path and where its bytes are in the
/// decompressed stream.
pub(crate) type Entries = BTreeMap<String, std::ops::Range<usize>>;

/// Decompresses and reads the package at `path` from `input`, checking
/// structure and limits; the contents are not yet verified. `declared` is
/// the gzip trailer's length field when known in advance (only a hint for
/// sizing the buffer).
///
/// The file is read in chunks as it is decompressed, and a second thread
/// computes the entries' SHA-256 digests from copies of the decompressed
/// chunks as they appear. `stage` sees the decompressed data grow (while
/// the hashing goes on), and finishes once the container is checked and
/// its entries are known (see [`Stage`]).
pub(crate) fn read<S: Stage>(
    path: &Path,
    mut input: impl Read,
    declared: Option<u64>,
    limits: &Limits,
    mut stage: S,
) -> Result<(Contents, S::Output), PackageError> {
    let archive_err = |detail: String| PackageError::Archive {
        path: path.to_owned(),
        detail,
    };
    let mut header = [0u8; GZIP_HEADER_LEN];
    let got = read_full(&mut input, &mut header).map_err(|e| PackageError::io(path, e))?;
    if got < 2 || header[..2] != GZIP_PREFIX[..2] {
        return Err(archive_err("not gzip-compressed".into()));
    }
    if got < GZIP_HEADER_LEN || header[..GZIP_PREFIX.len()] != GZIP_PREFIX {
        return Err(archive_err(
            "the gzip header is not a .fidpkg header (flags, mtime, extra field or OS byte differ)"
                .into(),
        ));
    }
    let check_value = <[u8; 4]>::try_from(&header[GZIP_PREFIX.len()..]).unwrap_or_default();
    let mut source = Source::new(input, limits.max_total_bytes);
    let mut inflater = flate2::Decompress::new(false);
    // Sized from the gzip trailer's length (mod 2^32, and within what the
    // file can inflate to), within the limit. The data is inflated straight
    // into it (no zeroing pass first), and the hashing thread reads the
    // filled part in place. A wrong length only costs the sequential tail
    // below.
    let mut tar = Vec::new();
    let _ = tar.try_reserve_exact(declared.unwrap_or(0).min(limits.max_total_bytes) as usize);
    let capacity = tar.capacity();
    // The CRC-32 for the gzip trailer is computed per piece and combined
    // after. Either thread may take a piece's CRC (the first to claim it):
    // the hashing thread when it has nothing to hash, this one a piece
    // late. So whichever has time to spare does it: this thread when the
    // cache copy is compared, the other when it is written.
    let claims: Vec<std::sync::atomic::AtomicBool> = (0..=capacity.div_ceil(INFLATE_CHUNK))
        .map(|_| std::sync::atomic::AtomicBool::new(false))
        .collect();
    // Whether the caller takes piece `index`'s CRC; `beyond`: its answer
    // for a piece past the table (the inflating thread takes those).
    let claim = |index: usize, beyond: bool| {
        claims.get(index).map_or(beyond, |c| {
            !c.swap(true, std::sync::atomic::Ordering::Relaxed)
        })
    };
    let piece_crc = |index: usize, piece: &[u8]| {
        let mut crc = flate2::Crc::new();
        crc.update(piece);
        (index, crc)
    };
    let mut crcs: Vec<(usize, flate2::Crc)> = Vec::new();
    let inflated = spare::fill(&mut tar, |spare| {
        std::thread::scope(|scope| {
            let (to_hash, pieces) = std::sync::mpsc::channel::<(usize, &[u8])>();
            let hasher = scope.spawn(move || {
                let mut scan = TarDigests::default();
                let mut crcs = Vec::new();
                let mut next = next_piece(&pieces);
                while let Some((index, piece)) = next {
                    scan.feed(piece);
                    next = pieces.try_recv().ok();
                    if next.is_none() {
                        // Nothing to hash yet: the CRC, unless taken.
                        if claim(index, false) {
                            crcs.push(piece_crc(index, piece));
                        }
                        next = next_piece(&pieces);
                    }
                }
                (scan, crcs)
            });
            let mut index = 0;
            let mut last: &[u8] = &[];
            let inflated = loop {
                let at = spare.filled();
                let (piece, ended) = match spare.inflate(&mut inflater, &mut source, INFLATE_CHUNK)
                {
                    Ok(inflated) => inflated,
                    Err(e) => break Err(e),
                };
                if piece.is_empty() && !ended {
                    // The buffer is full; anything more follows below.
                    break Ok(false);
                }
                // The hashing thread only stops early if it panicked; the
                // digests and CRCs are then computed after.
                let _ = to_hash.send((index, piece));
                if index > 0 && claim(index - 1, true) {
                    crcs.push(piece_crc(index - 1, last));
                }
                stage.progress(at, piece);
                last = piece;
                index += 1;
                if ended {
                    break Ok(true);
                }
            };
            if index > 0 && claim(index - 1, true) {
                crcs.push(piece_crc(index - 1, last));
            }
            drop(to_hash);
            (inflated, index, hasher.join().ok())
        })
    });
    let (inflated, mut index, hashed) = inflated;
    let hashed_all = hashed.is_some();
    let (mut scan, theirs) = hashed.unwrap_or_default();
    crcs.extend(theirs);
    let inflated = match inflated {
        // Only when the trailer's length was wrong: the rest, on this
        // thread, a chunk at a time.
        Ok(false) => loop {
            let at = tar.len();
            if tar.try_reserve(INFLATE_CHUNK).is_err() {
                break Err(Stop::Limit);
            }
            let ended = spare::fill(&mut tar, |spare| {
                spare
                    .inflate(&mut inflater, &mut source, INFLATE_CHUNK)
                    .map(|(_, ended)| ended)
            });
            if tar.len() as u64 > limits.max_total_bytes {
                break Err(Stop::Limit);
            }
            let piece = &tar[at..];
            scan.feed(piece);
            crcs.push(piece_crc(index, piece));
            index += 1;
            stage.progress(at, piece);
            match ended {
                Ok(false) => {}
                ended => break ended.map(|_| ()),
            }
        },
        ended => ended.map(|_| ()),
    };
    let trailer = match inflated {
        // The file's check value first, as for any other failure.
        Err(Stop::Limit) => Err(source.check_rest(path, check_value).map_or_else(
            |failure| failure,
            |_| PackageError::LimitExceeded {
                path: path.to_owned(),
                what: "the decompressed archive".into(),
                limit: limits.max_total_bytes,
            },
        )),
        Err(Stop::Gzip(e)) => Err(source
            .end(path, check_value)
            .map_or_else(|failure| failure, |_| archive_err(format!("gzip: {e}")))),
        Ok(()) => source.end(path, check_value),
    }?;
    let digests = scan.finish();
    let crc = if hashed_all {
        crcs.sort_unstable_by_key(|(index, _)| *index);
        crcs.iter().fold(flate2::Crc::new(), |mut all, (_, crc)| {
            all.combine(crc);
            all
        })
    } else {
        piece_crc(0, &tar).1
    };
    if trailer[..4] != crc.sum().to_le_bytes() || trailer[4..] != (tar.len() as u32).to_le_bytes() {
        return Err(archive_err(
            "gzip: the trailer's CRC or length does not match the decompressed data".into(),
        ));
    }
    let entries = parse_entries(path, &tar, limits)?;
    let staged = stage.finish(&entries, &tar)?;
    let contents = Contents {
        files: entries,
        canonical: tar,
        digests,
    };
    Ok((contents, staged))
}

/// Work on a package's bytes done as they are decompressed, while their
/// digests are still being computed: it sees bytes not yet verified, so
/// its result must only be used once the package is.
pub(crate) trait Stage {
    /// What it prepares.
    type Output;

    /// Called with each piece of the decompressed data in order: the
    /// bytes at `at..` (container not yet checked).
    fn progress(&mut self, _at: usize, _piece: &[u8]) {}

    /// Called once the container is checked and its entries are known.
    ///
    /// # Errors
    /// Fails the read.
    fn finish(self, entries: &Entries, tar: &[u8]) -> Result<Self::Output, PackageError>;
}

impl<T, F: FnOnce(&Entries, &[u8]) -> Result<T, PackageError>> Stage for F {
    type Output = T;

    fn finish(self, entries: &Entries, tar: &[u8]) -> Result<T, PackageError> {
        self(entries, tar)
    }
}

/// The next message from the inflating thread, `None` once it is done.
/// This thread hashes faster than that one inflates, so it usually waits
/// for each piece; it polls for a short while before it sleeps, so that the
/// inflating thread seldom has to wake it (a wake-up costs that thread
/// about 10 µs here, on the critical path).
fn next_piece<T>(pieces: &std::sync::mpsc::Receiver<T>) -> Option<T> {
    let polling = std::time::Instant::now();
    loop {
        match pieces.try_recv() {
            Ok(piece) => return Some(piece),
            Err(std::sync::mpsc::TryRecvError::Disconnected) => return None,
            Err(std::sync::mpsc::TryRecvError::Empty)
                if polling.elapsed() < std::time::Duration::from_micros(200) =>
            {
                std::hint::spin_loop();
            }
            Err(std::sync::mpsc::TryRecvError::Empty) => return pieces.recv().ok(),
        }
    }
}

/// The package file after the gzip header, as the deflate decoder reads
/// it: in chunks, with the CRC-32 of every byte read (the header's check
/// value covers them all) and the file's size limit.
struct Source<R> {
    input: R,
    buf: Box<[u8]>,
    pos: usize,
    filled: usize,
    crc: flate2::Crc,
    /// Bytes that may still be read.
    left: u64,
    /// The largest file allowed.
    limit: u64,
    /// Why reading stopped, when it was not the end of the file.
    failure: Option<std::io::Error>,
    over_limit: bool,
}

impl<R: Read> Source<R> {
    /// `input` positioned after the gzip header of a file of at most
    /// `limit` bytes.
    fn new(input: R, limit: u64) -> Self {
        Self {
            limit,
            input,
            buf: vec![0; READ_CHUNK].into_boxed_slice(),
            pos: 0,
            filled: 0,
            crc: flate2::Crc::new(),
            left: limit.saturating_sub(GZIP_HEADER_LEN as u64),
            failure: None,
            over_limit: false,
        }
    }

    /// Reads the rest of the file and checks it: the CRC-32 of everything
    /// after the header must be the header's check value, and what the
    /// deflate stream left must be exactly the 8-byte gzip trailer, which is
    /// returned.
    fn end(&mut self, path: &Path, check_value: [u8; 4]) -> Result<[u8; 8], PackageError> {
        let rest = self.check_rest(path, check_value)?;
        let archive_err = |detail: &str| PackageError::Archive {
            path: path.to_owned(),
            detail: detail.into(),
        };
        match <[u8; 8]>::try_from(rest.as_slice()) {
            Ok(trailer) => Ok(trailer),
            Err(_) if rest.len() < 8 => Err(archive_err("gzip: the file is truncated")),
            Err(_) => Err(archive_err("data after the end of the gzip stream")),
        }
    }

    /// Reads the rest of the file and checks the header's check value (and
    /// that the file could be read, within its limit); returns what was
    /// left, or its first 16 bytes and more.
    fn check_rest(&mut self, path: &Path, check_value: [u8; 4]) -> Result<Vec<u8>, PackageError> {
        let mut rest = Vec::new();
        loop {
            let available = match std::io::BufRead::fill_buf(self) {
                Ok([]) => break,
                Ok(available) => available,
                Err(_) => break,
            };
            if rest.len() < 16 {
                rest.extend_from_slice(&available[..available.len().min(16)]);
            } else {
                rest.push(0);
            }
            let n = available.len();
            std::io::BufRead::consume(self, n);
        }
        if let Some(e) = self.failure.take() {
            return Err(PackageError::io(path, e));
        }
        if self.over_limit {
            return Err(PackageError::LimitExceeded {
                path: path.to_owned(),
                what: "the file".into(),
                limit: self.limit,
            });
        }
        let archive_err = |detail: &str| PackageError::Archive {
            path: path.to_owned(),
            detail: detail.into(),
        };
        if self.crc.sum().to_le_bytes() != check_value {
            return Err(archive_err(
                "the compressed data does not match the check value in the gzip header (corrupt \
                 or truncated)",
            ));
        }
        Ok(rest)
    }
}

impl<R: Read> Read for Source<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let available = std::io::BufRead::fill_buf(self)?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        std::io::BufRead::consume(self, n);
        Ok(n)
    }
}

impl<R: Read> std::io::BufRead for Source<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.pos == self.filled && self.failure.is_none() && !self.over_limit {
            // One byte past the limit tells a file that exceeds it.
            let want = self.buf.len().min(self.left.saturating_add(1) as usize);
            let n = loop {
                match self.input.read(&mut self.buf[..want]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        self.failure = Some(e);
                        break 0;
                    }
                }
            };
            if n as u64 > self.left {
                self.over_limit = true;
            } else {
                self.left -= n as u64;
                self.crc.update(&self.buf[..n]);
                self.pos = 0;
                self.filled = n;
            }
        }
        if self.failure.is_some() || self.over_limit {
            return Err(std::io::Error::other("reading the package failed"));
        }
        Ok(&self.buf[self.pos..self.filled])
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.filled);
    }
}

/// Reads the tar headers: every entry a plain file with a safe, unique
/// path, within the limits.
fn parse_entries(path: &Path, tar: &[u8], limits: &Limits) -> Result<Entries, PackageError> {
    let archive_err = |detail: String| PackageError::Archive {
        path: path.to_owned(),
        detail,
    };
    let mut files = Entries::new();
    // Seekable, so entry data is skipped rather than copied through.
    let mut archive = tar::Archive::new(std::io::Cursor::new(tar));
    let entries = archive
        .entries_with_seek()
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
        if files.contains_key(&name) {
            return Err(PackageError::DuplicateEntry {
                path: path.to_owned(),
                entry: name,
            });
        }
        if files.len() >= limits.max_entries {
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
        // Only the data's range is kept.
        let start = usize::try_from(entry.raw_file_position()).unwrap_or(usize::MAX);
        let range = start..start.saturating_add(size as usize);
        if range.end > tar.len() {
            return Err(archive_err(format!(
                "tar entry `{name}` runs past the end of the archive"
            )));
        }
        files.insert(name, range);
    }
    Ok(files)
}

/// How much is inflated before the hashing thread gets it (a multiple of
/// the 512-byte tar block, so headers never straddle two chunks).
const INFLATE_CHUNK: usize = 1 << 18;

/// How much of the package file is read at a time.
const READ_CHUNK: usize = 1 << 18;

/// Fills `buf` from `reader` until it is full or the reader ends; the
/// number of bytes read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// SHA-256 of each tar entry's data, computed from the decompressed stream
/// as it arrives in chunks. Only an optimization: it reads headers
/// leniently, and [`Contents::sha256`] uses a digest only when its range is
/// the one the strict parse found.
#[derive(Default)]
struct TarDigests {
    /// Stream offset of the next byte fed.
    at: usize,
    /// The entry whose data is being hashed: name, data start, bytes left.
    current: Option<(String, usize, usize, sha2::Sha256)>,
    /// Padding bytes to skip after the current entry's data.
    skip: usize,
    /// Finished entries.
    done: BTreeMap<String, (std::ops::Range<usize>, [u8; 32])>,
    /// Set at the end-of-archive block or anything unexpected.
    stopped: bool,
}

impl TarDigests {
    fn feed(&mut self, mut chunk: &[u8]) {
        use sha2::Digest as _;
        while !chunk.is_empty() && !self.stopped {
            if let Some((_, _, left, hasher)) = &mut self.current {
                let n = (*left).min(chunk.len());
                hasher.update(&chunk[..n]);
                *left -= n;
                self.advance(&mut chunk, n);
                self.finish_entry();
                continue;
            }
            if self.skip > 0 {
                let n = self.skip.min(chunk.len());
                self.skip -= n;
                self.advance(&mut chunk, n);
                continue;
            }
            // A header block; chunks are whole blocks, so it is all here.
            let Some(block) = chunk.first_chunk::<BLOCK>() else {
                self.stopped = true;
                break;
            };
            let header = tar::Header::from_byte_slice(block);
            let size = header
                .entry_size()
                .ok()
                .and_then(|s| usize::try_from(s).ok());
            let (Some(size), false) = (size, block.iter().all(|&b| b == 0)) else {
                self.stopped = true;
                break;
            };
            let name = String::from_utf8_lossy(&header.path_bytes()).into_owned();
            self.advance(&mut chunk, BLOCK);
            self.skip = size.next_multiple_of(BLOCK) - size;
            self.current = Some((name, self.at, size, sha2::Sha256::new()));
            self.finish_entry();
        }
    }

    /// Records the current entry once all its data is hashed.
    fn finish_entry(&mut self) {
        use sha2::Digest as _;
        if self.current.as_ref().is_some_and(|c| c.2 == 0)
            && let Some((name, start, _, hasher)) = self.current.take()
        {
            self.done
                .insert(name, (start..self.at, hasher.finalize().into()));
        }
    }

    fn advance(&mut self, chunk: &mut &[u8], n: usize) {
        *chunk = &chunk[n..];
        self.at += n;
    }

    fn finish(self) -> BTreeMap<String, (std::ops::Range<usize>, [u8; 32])> {
        self.done
    }
}

impl Contents {
    /// The bytes of file `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&[u8]> {
        self.files.get(name).map(|r| &self.canonical[r.clone()])
    }

    /// The SHA-256 of file `name`: the one computed while decompressing
    /// when it covers exactly the file's bytes, else computed now.
    pub(crate) fn sha256(&self, name: &str) -> Option<[u8; 32]> {
        let range = self.files.get(name)?;
        match self.digests.get(name) {
            Some((hashed, digest)) if hashed == range => Some(*digest),
            _ => {
                use sha2::Digest as _;
                Some(sha2::Sha256::digest(&self.canonical[range.clone()]).into())
            }
        }
    }

    /// Checks that the decompressed archive is exactly the canonical layout
    /// of its contents (call after the contents are verified, so a changed
    /// manifest or artifact is reported as such first).
    pub(crate) fn check_canonical(&self, path: &Path) -> Result<(), PackageError> {
        // The layout `write` produces (what `tar::Builder` writes): per file
        // in order, its header block, its data, zeros to the next block;
        // then two zero blocks. Data is not compared: the files' ranges point
        // into this very buffer, so only their position is checked.
        let not_canonical = || PackageError::Archive {
            path: path.to_owned(),
            detail: "the archive is not in canonical form (a header, padding or order \
                     differs from what `cargo fidius package` writes)"
                .into(),
        };
        let order = [MANIFEST, SIGNATURE]
            .into_iter()
            .filter(|name| self.files.contains_key(*name))
            .chain(
                self.files
                    .keys()
                    .map(String::as_str)
                    .filter(|p| *p != MANIFEST && *p != SIGNATURE),
            );
        let all = &*self.canonical;
        let zeros = |range: std::ops::Range<usize>| {
            all.get(range).is_some_and(|b| b.iter().all(|&x| x == 0))
        };
        let mut at = 0;
        for name in order {
            let range = &self.files[name];
            let header =
                entry_header(name, range.len()).map_err(|detail| PackageError::Archive {
                    path: path.to_owned(),
                    detail,
                })?;
            if all.get(at..at + BLOCK) != Some(header.as_bytes().as_slice())
                || range.start != at + BLOCK
            {
                return Err(not_canonical());
            }
            at = range.end;
            let padded = at.next_multiple_of(BLOCK);
            if !zeros(at..padded) {
                return Err(not_canonical());
            }
            at = padded;
        }
        if all.len() != at + 2 * BLOCK || !zeros(at..all.len()) {
            return Err(not_canonical());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest as _;

    #[test]
    fn entries_are_hashed_while_decompressing() {
        // Sizes around block and chunk boundaries, and an empty file.
        let artifacts: BTreeMap<String, Vec<u8>> = [0usize, 1, 511, 512, 513, INFLATE_CHUNK + 7]
            .iter()
            .map(|&len| {
                let data = (0..len).map(|i| (i * 7 + len) as u8).collect();
                (format!("artifacts/t/{len}.bin"), data)
            })
            .collect();
        let package = write(b"manifest = 1\n", Some(b"sig"), &artifacts).unwrap();
        let trailer_len = package.last_chunk::<4>().map(|t| u32::from_le_bytes(*t));
        // With the trailer's length the buffer is sized right and all is
        // done while hashing; without it (or when it lies) the rest is read
        // after, and digests are computed then.
        for declared in [trailer_len.map(u64::from), None, Some(100)] {
            // The stage sees every entry, across the chunk boundaries.
            let (contents, staged) = read(
                Path::new("p.fidpkg"),
                package.as_slice(),
                declared,
                &Limits::default(),
                |entries: &Entries, tar: &[u8]| {
                    Ok(entries
                        .iter()
                        .map(|(name, range)| (name.clone(), tar[range.clone()].to_vec()))
                        .collect::<BTreeMap<_, _>>())
                },
            )
            .unwrap();
            assert_eq!(staged[MANIFEST], b"manifest = 1\n");
            contents.check_canonical(Path::new("p.fidpkg")).unwrap();
            if declared == trailer_len.map(u64::from) {
                assert_eq!(contents.digests.len(), artifacts.len() + 2);
            }
            for (name, data) in &artifacts {
                if let Some((range, _)) = contents.digests.get(name) {
                    assert_eq!(range, &contents.files[name], "{name}");
                }
                assert_eq!(contents.get(name), Some(data.as_slice()));
                assert_eq!(&staged[name], data, "{name}");
                let expected: [u8; 32] = sha2::Sha256::digest(data).into();
                assert_eq!(contents.sha256(name), Some(expected), "{name}");
            }
        }
    }
}
