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
mod keys;
mod manifest;

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

/// Reads `path` whole if it is at most `limit` bytes.
fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, PackageError> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).map_err(|e| PackageError::io(path, e))?;
    // Sized from the file's length (within the limit), so the read is one
    // copy without reallocations.
    let len = file.metadata().map_or(0, |m| m.len()).min(limit);
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
        let bytes = read_limited(path, policy.limits.max_total_bytes)?;
        Self::from_bytes(path, &bytes, policy)
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
        Self::parse(path, bytes, policy, false).map(|(package, _)| package)
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
        let bytes = read_limited(path, policy.limits.max_total_bytes)?;
        Self::parse(path, &bytes, policy, true)
    }

    fn parse(
        path: &Path,
        bytes: &[u8],
        policy: &TrustPolicy,
        lenient: bool,
    ) -> Result<(Self, SignatureStatus), PackageError> {
        let contents = archive::read(path, bytes, &policy.limits)?;
        let manifest_bytes = contents
            .get(archive::MANIFEST)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| PackageError::MissingManifest {
                path: path.to_owned(),
            })?;
        let checked = policy.check(path, &manifest_bytes, contents.get(archive::SIGNATURE));
        let (signer, status) = match checked {
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
        let bad = |detail: String| PackageError::BadManifest {
            path: path.to_owned(),
            detail,
        };
        let text = std::str::from_utf8(&manifest_bytes).map_err(|_| bad("not UTF-8".into()))?;
        // Read the version first, so a newer format is reported as such
        // rather than as unknown fields.
        #[derive(serde::Deserialize)]
        struct Version {
            format_version: u32,
        }
        let version: Version = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        if version.format_version != FORMAT_VERSION {
            return Err(PackageError::UnsupportedFormat {
                path: path.to_owned(),
                found: version.format_version,
                supported: FORMAT_VERSION,
            });
        }
        let manifest: Manifest = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        manifest.validate().map_err(bad)?;

        let listed: BTreeMap<&str, &Artifact> = manifest
            .artifacts
            .iter()
            .map(|a| (a.path.as_str(), a))
            .collect();
        for name in contents.files.keys() {
            if name != archive::MANIFEST
                && name != archive::SIGNATURE
                && !listed.contains_key(name.as_str())
            {
                return Err(PackageError::UnlistedEntry {
                    path: path.to_owned(),
                    entry: name.clone(),
                });
            }
        }
        for artifact in &manifest.artifacts {
            let Some(data) = contents.get(&artifact.path) else {
                return Err(PackageError::MissingEntry {
                    path: path.to_owned(),
                    entry: artifact.path.clone(),
                });
            };
            let digest = contents.sha256(&artifact.path).unwrap_or_default();
            check_artifact(path, artifact, data.len(), &digest)?;
        }
        contents.check_canonical(path)?;
        let package = Self {
            path: path.to_owned(),
            manifest,
            signer,
            contents,
        };
        Ok((package, status))
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
    pub fn artifact_for(
        &self,
        kind: ArtifactKind,
        target: &str,
    ) -> Result<&Artifact, PackageError> {
        self.manifest
            .artifacts
            .iter()
            .find(|a| a.kind == kind && a.target == target)
            .ok_or_else(|| PackageError::NoArtifact {
                path: self.path.clone(),
                kind: kind.as_str(),
                target: target.to_owned(),
                available: self
                    .manifest
                    .artifacts
                    .iter()
                    .map(|a| format!("{}/{}", a.kind.as_str(), a.target))
                    .collect(),
            })
    }
}

fn check_artifact(
    path: &Path,
    artifact: &Artifact,
    len: usize,
    sha256: &[u8; 32],
) -> Result<(), PackageError> {
    if len as u64 != artifact.size {
        return Err(PackageError::SizeMismatch {
            path: path.to_owned(),
            entry: artifact.path.clone(),
            expected: artifact.size,
            found: len as u64,
        });
    }
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
        let verified = VerifiedPackage::read(path, policy)?;
        #[cfg(feature = "wasm")]
        if let Some(choice) = &policy.wasm {
            let native = verified.artifact_for(ArtifactKind::Native, HOST_TARGET);
            let wasm = verified.artifact_for(ArtifactKind::Wasm, WASM_TARGET);
            if let Ok(artifact) = wasm
                && (choice.prefer || native.is_err())
            {
                let artifact = artifact.clone();
                return Self::open_wasm(verified, artifact, choice);
            }
        }
        let artifact = verified
            .artifact_for(ArtifactKind::Native, HOST_TARGET)?
            .clone();
        let bytes = verified.artifact_bytes(&artifact.path).unwrap_or_default();
        let file_name = artifact.path.rsplit('/').next().unwrap_or("artifact");
        let cached = cache::store(&policy.cache_root(), &artifact.sha256, file_name, bytes)?;
        let library = PluginLibrary::open(&cached)?;
        Ok(Self {
            verified,
            artifact,
            library: Library::Native(library),
        })
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
        }
    }

    /// The WASM component, when it was picked.
    #[cfg(feature = "wasm")]
    pub fn wasm_library(&self) -> Option<&crate::wasm::WasmLibrary> {
        match &self.library {
            Library::Native(_) => None,
            Library::Wasm { library, .. } => Some(library),
        }
    }

    /// The plugins of the picked artifact, from its static metadata.
    pub fn plugins(&self) -> &[crate::PluginInfo] {
        match &self.library {
            Library::Native(library) => library.plugins(),
            #[cfg(feature = "wasm")]
            Library::Wasm { library, .. } => library.plugins(),
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
    let cached = cache::store(&policy.cache_root(), &sha256_hex(&bytes), name, &bytes)?;
    Ok(PluginLibrary::open(cached)?)
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
