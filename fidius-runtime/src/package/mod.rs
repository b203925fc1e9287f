//! Signed `.fidpkg` packages and signed loose artifacts (feature
//! `package`).
//!
//! [`Package::open`] reads a package, verifies its signature against a
//! [`TrustPolicy`], checks every artifact's size and SHA-256 against the
//! signed manifest, writes the artifact for this host into a private,
//! content-addressed cache **from the verified bytes**, and opens it there;
//! the original file is read once and never again. [`open_signed_library`]
//! does the same for a loose cdylib with a detached `.sig`.
//!
//! The format is specified in `docs/src/fidpkg.md`.

mod archive;
pub(crate) mod cache;
mod error;
pub(crate) mod keys;
mod manifest;
mod python;
#[expect(
    unsafe_code,
    reason = "inflating into a buffer's spare capacity, lent out piece by piece"
)]
mod spare;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub use archive::{MANIFEST, SIGNATURE};
pub use error::{ErrorKind, PackageError};
pub use keys::{ALGORITHM, PublicKey, SecretKey, Signature};
pub use manifest::{
    Artifact, ArtifactKind, CAPABILITY_FORMS, FORMAT_VERSION, Manifest, PackageInfo, PluginEntry,
    is_capability,
};
pub use python::{PYTHON_TARGET, python_artifact};

use crate::{LoadError, PluginClient, PluginLibrary};

/// The target triple this runtime was built for (the host's native
/// artifacts are looked up by it).
pub const HOST_TARGET: &str = env!("FIDIUS_HOST_TARGET");

/// Size limits for reading packages; exceeding one is
/// [`PackageError::LimitExceeded`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest decompressed archive (guards against decompression bombs).
    /// Default 1 GiB.
    pub max_total_bytes: u64,
    /// Largest single artifact. Default 512 MiB.
    pub max_entry_bytes: u64,
    /// Largest manifest or signature. Default 1 MiB.
    pub max_manifest_bytes: u64,
    /// Most entries. Default 256.
    pub max_entries: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_total_bytes: 1 << 30,
            max_entry_bytes: 512 << 20,
            max_manifest_bytes: 1 << 20,
            max_entries: 256,
        }
    }
}

/// Which signatures a host accepts, and where verified artifacts are
/// cached.
///
/// Signatures are required by default; [`allow_unsigned`](Self::allow_unsigned)
/// is the explicit opt-out (unsigned input is then accepted, but a signature
/// that is present must still verify with a trusted key).
#[derive(Debug, Clone, Default)]
pub struct TrustPolicy {
    keys: Vec<PublicKey>,
    allow_unsigned: bool,
    limits: Limits,
    cache_dir: Option<PathBuf>,
    #[cfg(feature = "wasm")]
    wasm: Option<WasmChoice>,
    #[cfg(feature = "python")]
    python: bool,
}

/// How a host runs WASM artifacts: see [`TrustPolicy::wasm`].
#[cfg(feature = "wasm")]
#[derive(Debug, Clone)]
struct WasmChoice {
    runtime: std::sync::Arc<crate::wasm::WasmRuntime>,
    grant: crate::wasm::Capabilities,
    prefer: bool,
}

impl TrustPolicy {
    /// A policy that trusts no key yet and requires signatures.
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts signatures by `key`.
    #[must_use]
    pub fn trust(mut self, key: PublicKey) -> Self {
        self.keys.push(key);
        self
    }

    /// Accepts unsigned packages and artifacts (development only).
    #[must_use]
    pub fn allow_unsigned(mut self) -> Self {
        self.allow_unsigned = true;
        self
    }

    /// Replaces the size limits.
    #[must_use]
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Where verified artifacts are written (created with mode 0700).
    /// Default: `$FIDIUS_CACHE_DIR`, else `$XDG_CACHE_HOME/fidius`, else
    /// `$HOME/.cache/fidius`, else a per-user directory under the system
    /// temporary directory.
    #[must_use]
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// Lets [`Package::open`] run the package's WASM component in
    /// `runtime`'s sandbox with `grant` when the package has no native
    /// artifact for this host. Loading fails with
    /// [`LoadError::CapabilitiesNotGranted`] when the component requests
    /// more than `grant`.
    #[cfg(feature = "wasm")]
    #[must_use]
    pub fn wasm(
        mut self,
        runtime: std::sync::Arc<crate::wasm::WasmRuntime>,
        grant: crate::wasm::Capabilities,
    ) -> Self {
        self.wasm = Some(WasmChoice {
            runtime,
            grant,
            prefer: false,
        });
        self
    }

    /// With [`wasm`](Self::wasm): pick the WASM component even when there
    /// is a native artifact for this host (sandboxed beats native).
    #[cfg(feature = "wasm")]
    #[must_use]
    pub fn prefer_wasm(mut self) -> Self {
        if let Some(w) = &mut self.wasm {
            w.prefer = true;
        }
        self
    }

    /// Lets [`Package::open`] run the package's Python artifact in the
    /// embedded interpreter when it has no native artifact for this host
    /// (and no WASM one the policy runs). Python plugins run with the
    /// host's authority: enable this only for packages you would run
    /// natively.
    #[cfg(feature = "python")]
    #[must_use]
    pub fn python(mut self) -> Self {
        self.python = true;
        self
    }

    /// The trusted keys.
    pub fn keys(&self) -> &[PublicKey] {
        &self.keys
    }

    fn cache_root(&self) -> PathBuf {
        self.cache_dir.clone().unwrap_or_else(cache::default_root)
    }

    /// Checks `signature` (the detached signature of `message`, read from
    /// `path`) against the policy; `Ok(Some(key id))` when signed by a
    /// trusted key, `Ok(None)` when unsigned and allowed.
    fn check(
        &self,
        path: &Path,
        message: &[u8],
        signature: Option<&[u8]>,
    ) -> Result<Option<String>, PackageError> {
        let Some(signature) = signature else {
            if self.allow_unsigned {
                return Ok(None);
            }
            return Err(PackageError::Unsigned {
                path: path.to_owned(),
            });
        };
        let text =
            std::str::from_utf8(signature).map_err(|_| PackageError::MalformedSignature {
                detail: "not UTF-8 text".into(),
            })?;
        let signature = Signature::parse(text)?;
        let Some(key) = self.keys.iter().find(|k| k.id() == signature.key_id) else {
            return Err(PackageError::UnknownKey {
                path: path.to_owned(),
                key_id: signature.key_id,
                trusted: self.keys.iter().map(|k| k.id().to_owned()).collect(),
            });
        };
        if !key.verifies(message, &signature) {
            return Err(PackageError::BadSignature {
                path: path.to_owned(),
                key_id: signature.key_id,
            });
        }
        Ok(Some(signature.key_id))
    }
}

/// What [`VerifiedPackage::inspect`] found out about a signature.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureStatus {
    /// Signed by this trusted key, and it verifies.
    Verified {
        /// The key id.
        key_id: String,
    },
    /// No signature.
    Unsigned,
    /// Signed by a key the policy does not trust (not checked).
    UnknownKey {
        /// The signer's key id.
        key_id: String,
    },
    /// Signed by a trusted key, but it does not verify.
    Bad {
        /// The key id.
        key_id: String,
    },
}

impl std::fmt::Display for SignatureStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Verified { key_id } => write!(f, "signed by key {key_id} (verified)"),
            Self::Unsigned => f.write_str("unsigned"),
            Self::UnknownKey { key_id } => {
                write!(f, "signed by key {key_id} (not verified: key not given)")
            }
            Self::Bad { key_id } => write!(f, "signed by key {key_id} (INVALID signature)"),
        }
    }
}

/// Opens the package file at `path` if it is at most the limit: the file,
/// and the length its gzip trailer declares (a hint for sizing buffers).
fn open_file(path: &Path, limits: &Limits) -> Result<(std::fs::File, Option<u64>), PackageError> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let io = |e| PackageError::io(path, e);
    let (mut file, len) = open_regular_file(path)?;
    if len > limits.max_total_bytes {
        return Err(PackageError::LimitExceeded {
            path: path.to_owned(),
            what: "the file".into(),
            limit: limits.max_total_bytes,
        });
    }
    let mut tail = [0u8; 4];
    if len < 4 {
        return Ok((file, None));
    }
    file.seek(SeekFrom::End(-4))
        .and_then(|_| file.read_exact(&mut tail))
        .and_then(|()| file.seek(SeekFrom::Start(0)))
        .map_err(io)?;
    Ok((file, Some(declared_len(tail, len))))
}

/// The decompressed length a gzip trailer's last 4 bytes declare, within
/// what deflate can expand `file_len` bytes to (about 1032:1), which
/// bounds what an attacker's trailer can make us reserve.
fn declared_len(tail: [u8; 4], file_len: u64) -> u64 {
    u64::from(u32::from_le_bytes(tail)).min(file_len.saturating_mul(1032))
}

/// Opens `path` for reading, with its length, if it is a regular file
/// (never blocking on a FIFO): [`PackageError::Io`], or
/// [`LoadError::NotAFile`] for anything else.
fn open_regular_file(path: &Path) -> Result<(std::fs::File, u64), PackageError> {
    match crate::open::open_regular(path) {
        Ok(Some(opened)) => Ok(opened),
        Ok(None) => Err(LoadError::NotAFile {
            path: path.to_owned(),
        }
        .into()),
        Err(e) => Err(PackageError::io(path, e)),
    }
}

/// Reads `path` whole if it is at most `limit` bytes.
fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, PackageError> {
    use std::io::Read as _;
    let (file, len) = open_regular_file(path)?;
    // Sized from the file's length (within the limit), so the read is one
    // copy without reallocations.
    let len = len.min(limit);
    let mut bytes = Vec::new();
    let _ = bytes.try_reserve_exact(len as usize + 1);
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| PackageError::io(path, e))?;
    if bytes.len() as u64 > limit {
        return Err(PackageError::LimitExceeded {
            path: path.to_owned(),
            what: "the file".into(),
            limit,
        });
    }
    Ok(bytes)
}

/// SHA-256 in lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    keys::hex(&Sha256::digest(bytes))
}

/// Work on a package done as it is decompressed, while its artifacts'
/// digests are still being computed ([`archive::Stage`]), finished once
/// the manifest's signature is checked and every artifact is present with
/// its listed size. It sees bytes not yet verified: its result is used
/// only once the package is.
trait Prepare {
    /// What it prepares.
    type Output;

    /// Called with each piece of the decompressed data in order: the
    /// bytes at `at..` (nothing checked yet).
    fn progress(&mut self, _at: usize, _piece: &[u8]) {}

    /// Called with the checked manifest and the archive's entries.
    ///
    /// # Errors
    /// Fails the read.
    fn finish(
        self,
        manifest: &Manifest,
        entries: &archive::Entries,
        tar: &[u8],
    ) -> Result<Self::Output, PackageError>;
}

impl Prepare for () {
    type Output = ();

    fn finish(self, _: &Manifest, _: &archive::Entries, _: &[u8]) -> Result<(), PackageError> {
        Ok(())
    }
}

/// The manifest checks (signature, listing, sizes) as the archive stage,
/// then `prepare`.
struct Checked<'a, P> {
    path: &'a Path,
    policy: &'a TrustPolicy,
    lenient: bool,
    prepare: P,
}

impl<P: Prepare> archive::Stage for Checked<'_, P> {
    type Output = (Manifest, Option<String>, SignatureStatus, P::Output);

    fn progress(&mut self, at: usize, piece: &[u8]) {
        self.prepare.progress(at, piece);
    }

    fn finish(self, entries: &archive::Entries, tar: &[u8]) -> Result<Self::Output, PackageError> {
        let path = self.path;
        let read = |name: &str| entries.get(name).map(|r| &tar[r.clone()]);
        let manifest_bytes =
            read(archive::MANIFEST).ok_or_else(|| PackageError::MissingManifest {
                path: path.to_owned(),
            })?;
        let signature = read(archive::SIGNATURE);
        let (manifest, signer, status) = VerifiedPackage::check_manifest(
            path,
            manifest_bytes,
            signature,
            self.policy,
            self.lenient,
        )?;
        for name in entries.keys() {
            if name != archive::MANIFEST
                && name != archive::SIGNATURE
                && !manifest.artifacts.iter().any(|a| &a.path == name)
            {
                return Err(PackageError::UnlistedEntry {
                    path: path.to_owned(),
                    entry: name.clone(),
                });
            }
        }
        for artifact in &manifest.artifacts {
            let Some(range) = entries.get(&artifact.path) else {
                return Err(PackageError::MissingEntry {
                    path: path.to_owned(),
                    entry: artifact.path.clone(),
                });
            };
            check_size(path, artifact, range.len())?;
        }
        let prepared = self.prepare.finish(&manifest, entries, tar)?;
        Ok((manifest, signer, status, prepared))
    }
}

/// A package whose signature, manifest and artifacts are verified, held in
/// memory; nothing has been written or loaded.
#[derive(Debug)]
pub struct VerifiedPackage {
    path: PathBuf,
    manifest: Manifest,
    signer: Option<String>,
    /// The decompressed archive; artifacts are read from it in place.
    contents: archive::Contents,
}

impl VerifiedPackage {
    /// Reads and verifies the package at `path` under `policy`.
    ///
    /// # Errors
    /// Every [`PackageError`] but `Load`: I/O, a malformed or hostile
    /// archive, a missing, unknown or bad signature, a malformed manifest or
    /// unsupported `format_version`, or content that differs from the
    /// manifest.
    pub fn read(path: impl AsRef<Path>, policy: &TrustPolicy) -> Result<Self, PackageError> {
        let path = path.as_ref();
        let (file, declared) = open_file(path, &policy.limits)?;
        Self::parse(path, file, declared, policy, false, ()).map(|(package, ..)| package)
    }

    /// As [`read`](Self::read), for package bytes already in memory
    /// (`path` only names them in errors).
    ///
    /// # Errors
    /// As [`read`](Self::read).
    pub fn from_bytes(
        path: &Path,
        bytes: &[u8],
        policy: &TrustPolicy,
    ) -> Result<Self, PackageError> {
        let declared = bytes
            .last_chunk::<4>()
            .map(|tail| declared_len(*tail, bytes.len() as u64));
        Self::parse(path, bytes, declared, policy, false, ()).map(|(package, ..)| package)
    }

    /// Reads a package for inspection: like [`read`](Self::read), but a
    /// missing, unknown or bad signature is reported in the returned
    /// [`SignatureStatus`] instead of failing. Structural and content
    /// checks still fail. Never use this to decide whether to load.
    ///
    /// # Errors
    /// As [`read`](Self::read), except the signature errors.
    pub fn inspect(
        path: impl AsRef<Path>,
        policy: &TrustPolicy,
    ) -> Result<(Self, SignatureStatus), PackageError> {
        let path = path.as_ref();
        let (file, declared) = open_file(path, &policy.limits)?;
        Self::parse(path, file, declared, policy, true, ())
            .map(|(package, status, ())| (package, status))
    }

    /// Reads and verifies the package from `input`. `prepare` sees it as
    /// it is decompressed (see [`Prepare`]): its result must not be used
    /// before this returns `Ok`.
    fn parse<P: Prepare>(
        path: &Path,
        input: impl std::io::Read,
        declared: Option<u64>,
        policy: &TrustPolicy,
        lenient: bool,
        prepare: P,
    ) -> Result<(Self, SignatureStatus, P::Output), PackageError> {
        let checked = Checked {
            path,
            policy,
            lenient,
            prepare,
        };
        let (contents, (manifest, signer, status, staged)) =
            archive::read(path, input, declared, &policy.limits, checked)?;
        for artifact in &manifest.artifacts {
            let digest = contents.sha256(&artifact.path).unwrap_or_default();
            check_digest(path, artifact, &digest)?;
        }
        contents.check_canonical(path)?;
        let package = Self {
            path: path.to_owned(),
            manifest,
            signer,
            contents,
        };
        Ok((package, status, staged))
    }

    /// Checks the manifest's signature under `policy` (reporting instead of
    /// failing when `lenient`) and parses it.
    fn check_manifest(
        path: &Path,
        manifest_bytes: &[u8],
        signature: Option<&[u8]>,
        policy: &TrustPolicy,
        lenient: bool,
    ) -> Result<(Manifest, Option<String>, SignatureStatus), PackageError> {
        let (signer, status) = match policy.check(path, manifest_bytes, signature) {
            Ok(Some(key)) => (Some(key.clone()), SignatureStatus::Verified { key_id: key }),
            Ok(None) => (None, SignatureStatus::Unsigned),
            Err(PackageError::Unsigned { .. }) if lenient => (None, SignatureStatus::Unsigned),
            Err(PackageError::UnknownKey { key_id, .. }) if lenient => {
                (None, SignatureStatus::UnknownKey { key_id })
            }
            Err(PackageError::BadSignature { key_id, .. }) if lenient => {
                (None, SignatureStatus::Bad { key_id })
            }
            Err(e) => return Err(e),
        };
        let manifest = Manifest::from_bytes(path, manifest_bytes)?;
        Ok((manifest, signer, status))
    }

    /// Writes the artifact at `path` into the policy's cache and returns
    /// the cached file (for reading its metadata, or loading it).
    ///
    /// # Errors
    /// [`PackageError::MissingEntry`] or [`PackageError::Io`].
    pub fn cache_artifact(
        &self,
        path: &str,
        policy: &TrustPolicy,
    ) -> Result<PathBuf, PackageError> {
        let artifact = self
            .manifest
            .artifacts
            .iter()
            .find(|a| a.path == path)
            .ok_or_else(|| PackageError::MissingEntry {
                path: self.path.clone(),
                entry: path.to_owned(),
            })?;
        let bytes = self.artifact_bytes(path).unwrap_or_default();
        let file_name = path.rsplit('/').next().unwrap_or("artifact");
        cache::store(&policy.cache_root(), &artifact.sha256, file_name, bytes)
    }

    /// The signed manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Id of the key that signed it, `None` when unsigned (and allowed).
    pub fn signer(&self) -> Option<&str> {
        self.signer.as_deref()
    }

    /// The package file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The verified bytes of the artifact at `path` in the archive.
    pub fn artifact_bytes(&self, path: &str) -> Option<&[u8]> {
        if path == archive::MANIFEST || path == archive::SIGNATURE {
            return None;
        }
        self.contents.get(path)
    }

    /// The artifact of `kind` for `target`.
    ///
    /// # Errors
    /// [`PackageError::NoArtifact`], listing the artifacts there are.
    pub fn artifact_for(
        &self,
        kind: ArtifactKind,
        target: &str,
    ) -> Result<&Artifact, PackageError> {
        find_artifact(&self.path, &self.manifest, kind, target)
    }
}

/// The artifact of `kind` for `target` in the manifest of the package at
/// `path`.
fn find_artifact<'m>(
    path: &Path,
    manifest: &'m Manifest,
    kind: ArtifactKind,
    target: &str,
) -> Result<&'m Artifact, PackageError> {
    manifest
        .artifacts
        .iter()
        .find(|a| a.kind == kind && a.target == target)
        .ok_or_else(|| PackageError::NoArtifact {
            path: path.to_owned(),
            kind: kind.as_str(),
            target: target.to_owned(),
            available: manifest
                .artifacts
                .iter()
                .map(|a| format!("{}/{}", a.kind.as_str(), a.target))
                .collect(),
        })
}

fn check_size(path: &Path, artifact: &Artifact, len: usize) -> Result<(), PackageError> {
    if len as u64 != artifact.size {
        return Err(PackageError::SizeMismatch {
            path: path.to_owned(),
            entry: artifact.path.clone(),
            expected: artifact.size,
            found: len as u64,
        });
    }
    Ok(())
}

fn check_digest(path: &Path, artifact: &Artifact, sha256: &[u8; 32]) -> Result<(), PackageError> {
    let digest = keys::hex(sha256);
    if digest != artifact.sha256 {
        return Err(PackageError::DigestMismatch {
            path: path.to_owned(),
            entry: artifact.path.clone(),
            expected: artifact.sha256.clone(),
            found: digest,
        });
    }
    Ok(())
}

/// The target WASM artifacts are built for.
pub const WASM_TARGET: &str = "wasm32-wasip2";

/// Package::open's preparation: picks the artifact and stages its cache
/// copy (compared with the cached file, or written to a temporary one) as
/// the archive is decompressed, so that little is left to do once the
/// digests are in. What it guessed from the unchecked prefix is used only
/// when the checked manifest and entries agree with it.
struct CacheCopy<'a> {
    path: &'a Path,
    policy: &'a TrustPolicy,
    early: Early,
    /// The decompressed bytes the current state still needs.
    window: Window,
}

/// How far [`CacheCopy`] got with the decompressed data.
enum Early {
    /// Waiting for the manifest, the archive's first entry.
    Manifest,
    /// Looking for the native artifact's header at this offset.
    Seeking { at: usize, artifact: Artifact },
    /// Copying the artifact's data (at this range) into the sink.
    Copying {
        artifact: Artifact,
        range: std::ops::Range<usize>,
        sink: cache::Sink,
    },
    /// Nothing more to do early (a WASM artifact, or an unexpected layout).
    Off,
}

/// The decompressed data from `start` on, as far as it has come.
#[derive(Default)]
struct Window {
    start: usize,
    bytes: Vec<u8>,
}

impl Window {
    /// Where the data that has come ends.
    fn end(&self) -> usize {
        self.start + self.bytes.len()
    }

    /// Drops what comes before `from` (which never goes back).
    fn keep_from(&mut self, from: usize) {
        let gone = from.saturating_sub(self.start).min(self.bytes.len());
        self.bytes.drain(..gone);
        self.start = self.start.max(from);
    }

    /// Takes the next piece, the bytes at `at..`, keeping only those from
    /// `from` on.
    fn push(&mut self, at: usize, piece: &[u8], from: usize) {
        self.keep_from(from);
        let skip = self.start.saturating_sub(at);
        self.bytes
            .extend_from_slice(piece.get(skip..).unwrap_or_default());
    }

    /// The bytes at `range`, once they have all come.
    fn get(&self, range: std::ops::Range<usize>) -> Option<&[u8]> {
        let from = range.start.checked_sub(self.start)?;
        self.bytes.get(from..from + range.len())
    }
}

impl CacheCopy<'_> {
    /// The cache entry's file name for `artifact`.
    fn file_name(artifact: &Artifact) -> &str {
        artifact.path.rsplit('/').next().unwrap_or("artifact")
    }

    /// The entry header at `at`: its path and data range (`None` until
    /// its block has come).
    fn header(&self, at: usize) -> Option<Option<(String, std::ops::Range<usize>)>> {
        let block = self.window.get(at..at + 512)?.first_chunk::<512>()?;
        let header = tar::Header::from_byte_slice(block);
        let size = header
            .entry_size()
            .ok()
            .and_then(|s| usize::try_from(s).ok());
        let name = std::str::from_utf8(&header.path_bytes())
            .ok()
            .map(str::to_owned);
        Some(
            name.zip(size)
                .map(|(name, size)| (name, at + 512..at + 512 + size)),
        )
    }

    fn advance(&mut self) -> Option<Early> {
        match &mut self.early {
            Early::Manifest => {
                let Some((name, range)) = self.header(0)? else {
                    return Some(Early::Off);
                };
                let text = std::str::from_utf8(self.window.get(range.clone())?);
                // Validated like the checked one: its digests and file
                // names become paths in the cache.
                let manifest = (name == archive::MANIFEST)
                    .then_some(text.ok())
                    .flatten()
                    .and_then(|text| toml::from_str::<Manifest>(text).ok())
                    .filter(|m| m.validate().is_ok());
                let chosen = manifest
                    .as_ref()
                    .map(|m| Package::choose(self.path, m, self.policy));
                let next = match chosen {
                    Some(Ok((artifact, Pick::Native(())))) => Early::Seeking {
                        at: range.end.next_multiple_of(512),
                        artifact: artifact.clone(),
                    },
                    _ => Early::Off,
                };
                Some(next)
            }
            Early::Seeking { at, artifact } => {
                let at = *at;
                let artifact = artifact.clone();
                let Some((name, range)) = self.header(at)? else {
                    return Some(Early::Off);
                };
                if name != artifact.path {
                    return Some(Early::Seeking {
                        at: range.end.next_multiple_of(512),
                        artifact,
                    });
                }
                let root = self.policy.cache_root();
                let file_name = Self::file_name(&artifact);
                Some(
                    match cache::Sink::open(&root, &artifact.sha256, file_name, artifact.size) {
                        Ok(mut sink) if range.len() as u64 == artifact.size => {
                            // What of the data has come already.
                            let end = self.window.end().clamp(range.start, range.end);
                            if let Some(data) = self.window.get(range.start..end) {
                                sink.feed(data);
                            }
                            self.window = Window::default();
                            Early::Copying {
                                artifact,
                                range,
                                sink,
                            }
                        }
                        _ => Early::Off,
                    },
                )
            }
            Early::Copying { .. } | Early::Off => None,
        }
    }
}

impl Prepare for CacheCopy<'_> {
    type Output = (Artifact, Pick<Result<cache::Staged, PackageError>>);

    fn progress(&mut self, at: usize, piece: &[u8]) {
        let from = match &mut self.early {
            Early::Copying { range, sink, .. } => {
                // The rest of the artifact's data in this piece (pieces come
                // in order, so it starts at the next byte the sink wants).
                let from = range.start + sink.written() as usize;
                let to = range.end.min(at + piece.len());
                if let Some(data) = from
                    .checked_sub(at)
                    .and_then(|start| piece.get(start..to.checked_sub(at)?))
                {
                    sink.feed(data);
                }
                return;
            }
            Early::Off => return,
            Early::Manifest => 0,
            Early::Seeking { at, .. } => *at,
        };
        self.window.push(at, piece, from);
        while let Some(next) = self.advance() {
            self.early = next;
            if let Early::Seeking { at, .. } = self.early {
                // Drop what is before the next header.
                self.window.keep_from(at);
            }
        }
    }

    fn finish(
        self,
        manifest: &Manifest,
        entries: &archive::Entries,
        tar: &[u8],
    ) -> Result<Self::Output, PackageError> {
        let (artifact, pick) = Package::choose(self.path, manifest, self.policy)?;
        let staged = match pick {
            Pick::Native(()) => {
                let range = entries[&artifact.path].clone();
                let early = match self.early {
                    Early::Copying {
                        artifact: guessed,
                        range: guessed_range,
                        sink,
                    } if guessed == *artifact && guessed_range == range => sink.finish(),
                    _ => None,
                };
                Pick::Native(early.map(Ok).unwrap_or_else(|| {
                    cache::stage(
                        &self.policy.cache_root(),
                        &artifact.sha256,
                        Self::file_name(artifact),
                        &tar[range],
                    )
                }))
            }
            #[cfg(feature = "wasm")]
            Pick::Wasm(choice) => Pick::Wasm(choice),
            #[cfg(feature = "python")]
            Pick::Python => Pick::Python,
        };
        Ok((artifact.clone(), staged))
    }
}

/// The backend that runs a package's artifact: native, with `N` (the
/// cache copy being staged), or WASM as the policy says.
enum Pick<N> {
    Native(N),
    #[cfg(feature = "wasm")]
    Wasm(WasmChoice),
    #[cfg(feature = "python")]
    Python,
}

/// A verified package with the artifact picked for this host opened: its
/// native library for [`HOST_TARGET`] (from the cache), or, when the policy
/// enables WASM ([`TrustPolicy::wasm`]) and there is no native artifact (or
/// the policy prefers WASM), its component in the sandbox.
#[derive(Debug)]
pub struct Package {
    verified: VerifiedPackage,
    artifact: Artifact,
    library: Library,
}

#[derive(Debug)]
enum Library {
    Native(PluginLibrary),
    #[cfg(feature = "wasm")]
    Wasm {
        library: crate::wasm::WasmLibrary,
        grant: crate::wasm::Capabilities,
    },
    #[cfg(feature = "python")]
    Python {
        library: crate::python::PythonLibrary,
        /// What its classes declare, as records.
        plugins: Vec<crate::PluginInfo>,
    },
}

impl Package {
    /// Verifies the package at `path` under `policy` (see
    /// [`VerifiedPackage::read`]) and opens the artifact for this host: the
    /// native library for [`HOST_TARGET`] (written into the cache from the
    /// verified bytes and opened there, without loading it yet), or the WASM
    /// component (see [`TrustPolicy::wasm`]), compiled from the verified
    /// bytes after its requested capabilities are checked against the
    /// grant.
    ///
    /// # Errors
    /// Any [`PackageError`]; [`PackageError::NoArtifact`] when the package
    /// has no artifact this host can run; [`PackageError::Load`] when the
    /// artifact is not a valid plugin library or component for this host,
    /// or ([`LoadError::CapabilitiesNotGranted`]) requests capabilities the
    /// policy does not grant.
    pub fn open(path: impl AsRef<Path>, policy: &TrustPolicy) -> Result<Self, PackageError> {
        let path = path.as_ref();
        let (file, declared) = open_file(path, &policy.limits)?;
        // The artifact is picked from the signed manifest, and a native
        // one's cache copy is compared or written while the digests are
        // still being computed; it is put in place only once they match.
        let copy = CacheCopy {
            path,
            policy,
            early: Early::Manifest,
            window: Window::default(),
        };
        let (verified, _, (artifact, pick)) =
            VerifiedPackage::parse(path, file, declared, policy, false, copy)?;
        match pick {
            Pick::Native(staged) => {
                let library = open_staged_library(staged?)?;
                Ok(Self {
                    verified,
                    artifact,
                    library: Library::Native(library),
                })
            }
            #[cfg(feature = "wasm")]
            Pick::Wasm(choice) => Self::open_wasm(verified, artifact, &choice),
            #[cfg(feature = "python")]
            Pick::Python => Self::open_python(verified, artifact, policy),
        }
    }

    #[cfg(feature = "python")]
    fn open_python(
        verified: VerifiedPackage,
        artifact: Artifact,
        policy: &TrustPolicy,
    ) -> Result<Self, PackageError> {
        let bytes = verified.artifact_bytes(&artifact.path).unwrap_or_default();
        // The manifest's digest of these bytes was checked on the way in.
        let module = python::unpack(
            verified.path(),
            &artifact.path,
            &policy.cache_root(),
            &artifact.sha256,
            bytes,
        )?;
        let library = crate::python::PythonLibrary::open(&module)?;
        let plugins = library
            .plugins()
            .iter()
            .map(|p| {
                fidius_guest::meta::PluginMeta::declared(
                    &p.interface_name,
                    p.interface_version,
                    p.interface_hash,
                    &p.plugin_name,
                )
            })
            .collect();
        Ok(Self {
            verified,
            artifact,
            library: Library::Python { library, plugins },
        })
    }

    /// The artifact this host runs: the native one for [`HOST_TARGET`], or
    /// the WASM one when the policy enables WASM and prefers it or there is
    /// no native one.
    fn choose<'m>(
        path: &Path,
        manifest: &'m Manifest,
        policy: &TrustPolicy,
    ) -> Result<(&'m Artifact, Pick<()>), PackageError> {
        let native = find_artifact(path, manifest, ArtifactKind::Native, HOST_TARGET);
        #[cfg(feature = "wasm")]
        if let Some(choice) = &policy.wasm
            && let Ok(wasm) = find_artifact(path, manifest, ArtifactKind::Wasm, WASM_TARGET)
            && (choice.prefer || native.is_err())
        {
            return Ok((wasm, Pick::Wasm(choice.clone())));
        }
        #[cfg(feature = "python")]
        if policy.python
            && native.is_err()
            && let Ok(python) =
                find_artifact(path, manifest, ArtifactKind::Python, python::PYTHON_TARGET)
        {
            return Ok((python, Pick::Python));
        }
        #[cfg(not(any(feature = "wasm", feature = "python")))]
        let _ = policy;
        native.map(|artifact| (artifact, Pick::Native(())))
    }

    #[cfg(feature = "wasm")]
    fn open_wasm(
        verified: VerifiedPackage,
        artifact: Artifact,
        choice: &WasmChoice,
    ) -> Result<Self, PackageError> {
        let in_package = verified.path().join(&artifact.path);
        let missing = choice.grant.missing(&artifact.capabilities)?;
        if !missing.is_empty() {
            return Err(LoadError::CapabilitiesNotGranted {
                path: in_package,
                missing,
            }
            .into());
        }
        let bytes = verified.artifact_bytes(&artifact.path).unwrap_or_default();
        // The manifest's digest of these bytes was checked on the way in.
        let library = choice
            .runtime
            .open_digested(&in_package, bytes, Some(&artifact.sha256))?;
        Ok(Self {
            verified,
            artifact,
            library: Library::Wasm {
                library,
                grant: choice.grant.clone(),
            },
        })
    }

    /// The signed manifest.
    pub fn manifest(&self) -> &Manifest {
        self.verified.manifest()
    }

    /// Id of the key that signed the package (`None` if unsigned and
    /// allowed).
    pub fn signer(&self) -> Option<&str> {
        self.verified.signer()
    }

    /// The artifact that was picked for this host.
    pub fn artifact(&self) -> &Artifact {
        &self.artifact
    }

    /// The native library, when the native artifact was picked.
    pub fn native_library(&self) -> Option<&PluginLibrary> {
        match &self.library {
            Library::Native(library) => Some(library),
            #[cfg(feature = "wasm")]
            Library::Wasm { .. } => None,
            #[cfg(feature = "python")]
            Library::Python { .. } => None,
        }
    }

    /// The WASM component, when it was picked.
    #[cfg(feature = "wasm")]
    pub fn wasm_library(&self) -> Option<&crate::wasm::WasmLibrary> {
        match &self.library {
            Library::Wasm { library, .. } => Some(library),
            _ => None,
        }
    }

    /// The Python module, when it was picked.
    #[cfg(feature = "python")]
    pub fn python_library(&self) -> Option<&crate::python::PythonLibrary> {
        match &self.library {
            Library::Python { library, .. } => Some(library),
            _ => None,
        }
    }

    /// The plugins of the picked artifact, from its static metadata.
    pub fn plugins(&self) -> &[crate::PluginInfo] {
        match &self.library {
            Library::Native(library) => library.plugins(),
            #[cfg(feature = "wasm")]
            Library::Wasm { library, .. } => library.plugins(),
            #[cfg(feature = "python")]
            Library::Python { plugins, .. } => plugins,
        }
    }

    /// Plugins implementing `C`'s interface (by name).
    pub fn plugins_for<C: PluginClient>(&self) -> impl Iterator<Item = &crate::PluginInfo> {
        let name = <C::Interface as fidius_guest::Interface>::INFO.name;
        self.plugins()
            .iter()
            .filter(move |p| p.interface_name == name)
    }

    /// Loads plugin `name` as `C` (see [`PluginLibrary::load`]; a WASM
    /// component runs with the policy's grant).
    ///
    /// # Errors
    /// See [`PluginLibrary::load`] and
    /// [`WasmInstanceBuilder::build`](crate::wasm::WasmInstanceBuilder::build).
    pub fn load<C: PluginClient>(&self, name: &str) -> Result<C, LoadError> {
        self.instance(name).build()
    }

    /// A builder for a configured instance, or one with the host's
    /// implementation of the interface's host interface.
    pub fn instance<'a, C: PluginClient>(&'a self, name: &'a str) -> PackageInstanceBuilder<'a, C> {
        PackageInstanceBuilder {
            package: self,
            name,
            config: None,
            host: None,
            _client: std::marker::PhantomData,
        }
    }
}

/// Builds an instance of a package's plugin: see [`Package::instance`].
#[must_use = "call `.build()` to create the instance"]
pub struct PackageInstanceBuilder<'a, C: PluginClient> {
    package: &'a Package,
    name: &'a str,
    config: Option<Result<Vec<u8>, fidius_guest::wire::WireError>>,
    host: Option<std::sync::Arc<<C::Interface as fidius_guest::Interface>::Host>>,
    _client: std::marker::PhantomData<fn() -> C>,
}

impl<C: PluginClient> std::fmt::Debug for PackageInstanceBuilder<'_, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackageInstanceBuilder")
            .field("plugin", &self.name)
            .field("configured", &self.config.is_some())
            .finish_non_exhaustive()
    }
}

impl<C: PluginClient> PackageInstanceBuilder<'_, C> {
    /// The configuration for a plugin built with `config = Cfg`.
    pub fn config<Cfg: fidius_guest::__private::serde::Serialize + ?Sized>(
        mut self,
        config: &Cfg,
    ) -> Self {
        self.config = Some(fidius_guest::wire::encode(config));
        self
    }

    /// The host's implementation of the interface's host interface.
    pub fn host(
        mut self,
        host: std::sync::Arc<<C::Interface as fidius_guest::Interface>::Host>,
    ) -> Self {
        self.host = Some(host);
        self
    }

    /// Creates the instance.
    ///
    /// # Errors
    /// As [`InstanceBuilder::build`](crate::InstanceBuilder::build) or
    /// [`WasmInstanceBuilder::build`](crate::wasm::WasmInstanceBuilder::build).
    pub fn build(self) -> Result<C, LoadError> {
        match &self.package.library {
            Library::Native(library) => {
                let mut b = library.instance::<C>(self.name).encoded_config(self.config);
                if let Some(host) = self.host {
                    b = b.host(host);
                }
                b.build()
            }
            #[cfg(feature = "wasm")]
            Library::Wasm { library, grant } => {
                let mut b = library
                    .instance::<C>(self.name)
                    .encoded_config(self.config)
                    .capabilities(grant.clone());
                if let Some(host) = self.host {
                    b = b.host(host);
                }
                b.build()
            }
            #[cfg(feature = "python")]
            Library::Python { library, .. } => {
                let mut b = library.instance::<C>(self.name).encoded_config(self.config);
                if let Some(host) = self.host {
                    b = b.host(host);
                }
                b.build()
            }
        }
    }
}

/// The detached signature file of `artifact`: `<artifact>.sig`.
pub fn signature_path(artifact: &Path) -> PathBuf {
    let mut name = artifact.as_os_str().to_owned();
    name.push(".sig");
    PathBuf::from(name)
}

/// Verifies a loose artifact and its detached signature
/// ([`signature_path`]) under `policy`, returning its bytes and the signer.
///
/// # Errors
/// [`PackageError::Io`], [`PackageError::Unsigned`] (no `.sig` and
/// signatures required), [`PackageError::MalformedSignature`],
/// [`PackageError::UnknownKey`] or [`PackageError::BadSignature`].
pub fn verify_artifact(
    path: impl AsRef<Path>,
    policy: &TrustPolicy,
) -> Result<(Vec<u8>, Option<String>), PackageError> {
    let path = path.as_ref();
    let bytes = read_limited(path, policy.limits.max_entry_bytes)?;
    let sig_path = signature_path(path);
    let signature = match read_limited(&sig_path, policy.limits.max_manifest_bytes) {
        Ok(sig) => Some(sig),
        Err(PackageError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            None
        }
        Err(e) => return Err(e),
    };
    let signer = policy.check(path, &bytes, signature.as_deref())?;
    Ok((bytes, signer))
}

/// Opens a loose, signed plugin library: verifies `path` against
/// `path.sig` under `policy`, writes the verified bytes into the cache and
/// opens that copy, so the bytes that were checked are the bytes that load.
///
/// # Errors
/// As [`verify_artifact`], plus [`PackageError::Load`].
pub fn open_signed_library(
    path: impl AsRef<Path>,
    policy: &TrustPolicy,
) -> Result<PluginLibrary, PackageError> {
    let path = path.as_ref();
    let (bytes, _) = verify_artifact(path, policy)?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("artifact");
    open_staged_library(cache::stage(
        &policy.cache_root(),
        &sha256_hex(&bytes),
        name,
        &bytes,
    )?)
}

/// Puts a verified library's cache entry in place and opens it. A library
/// this host refuses (wrong ABI, target…) is not left in the cache by the
/// call that wrote it.
fn open_staged_library(staged: cache::Staged) -> Result<PluginLibrary, PackageError> {
    let new = staged.is_new();
    let cached = staged.commit()?;
    Ok(PluginLibrary::open(&cached).inspect_err(|_| {
        if new {
            cache::discard(&cached);
        }
    })?)
}

/// Writes a package: the manifest (with every artifact's size and digest
/// filled in from `artifacts`), its signature when `key` is given, and the
/// artifacts, in the canonical layout. The same inputs always give the same
/// bytes.
///
/// `artifacts` maps each manifest artifact's `path` to its bytes.
///
/// # Errors
/// [`PackageError::BadManifest`] when the manifest is invalid, an artifact
/// is missing, or a path does not fit the archive format.
pub fn write_package(
    manifest: &Manifest,
    artifacts: &BTreeMap<String, Vec<u8>>,
    key: Option<&SecretKey>,
) -> Result<Vec<u8>, PackageError> {
    let bad = |detail: String| PackageError::BadManifest {
        path: PathBuf::from(archive::MANIFEST),
        detail,
    };
    let mut manifest = manifest.clone();
    manifest.format_version = FORMAT_VERSION;
    manifest.artifacts.sort_by(|a, b| a.path.cmp(&b.path));
    for artifact in &mut manifest.artifacts {
        let data = artifacts
            .get(&artifact.path)
            .ok_or_else(|| bad(format!("no bytes for artifact `{}`", artifact.path)))?;
        artifact.size = data.len() as u64;
        artifact.sha256 = sha256_hex(data);
    }
    manifest.validate().map_err(bad)?;
    if let Some(extra) = artifacts
        .keys()
        .find(|p| !manifest.artifacts.iter().any(|a| &a.path == *p))
    {
        return Err(bad(format!("artifact `{extra}` is not in the manifest")));
    }
    let text = manifest.to_toml();
    let signature = key.map(|k| k.sign(text.as_bytes()).to_file_text());
    archive::write(
        text.as_bytes(),
        signature.as_ref().map(String::as_bytes),
        artifacts,
    )
    .map_err(bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    /// The early cache copy finds the native artifact behind another one
    /// and gets every byte of it, however the data is cut into pieces.
    #[test]
    fn cache_copy_is_fed_in_pieces() {
        let artifact = |kind, target: &str, file: &str| Artifact {
            kind,
            target: target.into(),
            path: format!("artifacts/{target}/{file}"),
            size: 0,
            sha256: String::new(),
            capabilities: Vec::new(),
        };
        let wasm = artifact(ArtifactKind::Wasm, WASM_TARGET, "a.wasm");
        let native = artifact(ArtifactKind::Native, HOST_TARGET, "liba.so");
        let manifest = Manifest {
            format_version: FORMAT_VERSION,
            package: PackageInfo {
                name: "a".into(),
                version: "1.0.0".into(),
            },
            plugins: Vec::new(),
            artifacts: vec![wasm.clone(), native.clone()],
        };
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 31 % 251) as u8).collect();
        let artifacts = BTreeMap::from([
            (wasm.path.clone(), vec![7; 3000]),
            (native.path.clone(), data.clone()),
        ]);
        let package = write_package(&manifest, &artifacts, None).unwrap();
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(package.as_slice())
            .read_to_end(&mut tar)
            .unwrap();
        let root = std::env::temp_dir().join(format!("fidius-cache-copy-{}", std::process::id()));
        let policy = TrustPolicy::new().allow_unsigned().cache_dir(&root);
        for size in [1, 100, 511, 512, 4096, tar.len()] {
            let mut copy = CacheCopy {
                path: Path::new("a.fidpkg"),
                policy: &policy,
                early: Early::Manifest,
                window: Window::default(),
            };
            for (i, piece) in tar.chunks(size).enumerate() {
                copy.progress(i * size, piece);
            }
            let Early::Copying { artifact, sink, .. } = copy.early else {
                panic!("pieces of {size}: the copy did not start");
            };
            assert_eq!(artifact.path, native.path);
            let staged = sink.finish().expect("every byte written");
            let path = staged.commit().unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), data, "pieces of {size}");
            std::fs::remove_file(path).unwrap();
        }
        let _ = std::fs::remove_dir_all(root);
    }
}
