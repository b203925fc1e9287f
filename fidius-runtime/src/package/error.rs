//! [`PackageError`]: one variant per way a package, signature or key is
//! refused.

use std::path::{Path, PathBuf};

use crate::LoadError;

/// Broad classes of [`PackageError`], for exit codes and policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The signature does not verify (wrong key material or changed bytes).
    BadSignature,
    /// Signed by a key the policy does not trust.
    UnknownKey,
    /// Unsigned where a signature is required.
    Unsigned,
    /// The content does not match the manifest (digest, size, entries).
    Tampered,
    /// Not a well-formed package, signature or key file; or hostile
    /// archive structure.
    Malformed,
    /// Everything else: I/O, no artifact for this host, loading.
    Other,
}

/// Why a package, loose artifact, signature or key was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PackageError {
    /// A file could not be read or written.
    #[error("failed to access `{path}`: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// The OS random source failed (key generation).
    #[error("no randomness available: {detail}")]
    Random {
        /// The OS error.
        detail: String,
    },
    /// A key file is malformed (never includes key material).
    #[error("malformed key `{what}`: {detail}")]
    MalformedKey {
        /// Which key (its file).
        what: String,
        /// What is wrong.
        detail: String,
    },
    /// A signature file is malformed.
    #[error("malformed signature: {detail}")]
    MalformedSignature {
        /// What is wrong.
        detail: String,
    },
    /// A signature was required and there is none.
    #[error("`{path}` is not signed, and the trust policy requires a signature")]
    Unsigned {
        /// The package or artifact.
        path: PathBuf,
    },
    /// Signed by a key the policy does not trust.
    #[error("`{path}` is signed by key {key_id}, which the trust policy does not trust (trusted: {})", list(.trusted))]
    UnknownKey {
        /// The package or artifact.
        path: PathBuf,
        /// The signer's key id.
        key_id: String,
        /// The ids of the trusted keys.
        trusted: Vec<String>,
    },
    /// The signature does not verify with the named key.
    #[error(
        "`{path}`: the signature by key {key_id} does not verify: the signed content was changed or the signature is not for it"
    )]
    BadSignature {
        /// The package or artifact.
        path: PathBuf,
        /// The key id.
        key_id: String,
    },
    /// The file is not a gzip-compressed tar archive, or it is truncated.
    #[error("`{path}` is not a valid .fidpkg archive: {detail}")]
    Archive {
        /// The package.
        path: PathBuf,
        /// What the decoder said.
        detail: String,
    },
    /// An entry could escape the cache or is not a plain file.
    #[error("`{path}`: refused archive entry `{entry}`: {reason}")]
    HostileEntry {
        /// The package.
        path: PathBuf,
        /// The entry's name as stored.
        entry: String,
        /// Why (absolute path, `..`, symlink, hard link, device, …).
        reason: &'static str,
    },
    /// The same name appears twice.
    #[error("`{path}`: archive entry `{entry}` appears more than once")]
    DuplicateEntry {
        /// The package.
        path: PathBuf,
        /// The entry.
        entry: String,
    },
    /// An entry the manifest does not list.
    #[error("`{path}`: archive entry `{entry}` is not listed in the manifest")]
    UnlistedEntry {
        /// The package.
        path: PathBuf,
        /// The entry.
        entry: String,
    },
    /// A manifest artifact is not in the archive.
    #[error("`{path}`: artifact `{entry}` listed in the manifest is missing from the archive")]
    MissingEntry {
        /// The package.
        path: PathBuf,
        /// The artifact path.
        entry: String,
    },
    /// An artifact's size differs from the manifest.
    #[error("`{path}`: artifact `{entry}` is {found} bytes, the manifest says {expected}")]
    SizeMismatch {
        /// The package.
        path: PathBuf,
        /// The artifact path.
        entry: String,
        /// Manifest size.
        expected: u64,
        /// Actual size.
        found: u64,
    },
    /// An artifact's SHA-256 differs from the manifest.
    #[error("`{path}`: artifact `{entry}` has SHA-256 {found}, the manifest says {expected}")]
    DigestMismatch {
        /// The package or artifact.
        path: PathBuf,
        /// The artifact path.
        entry: String,
        /// Manifest digest (hex).
        expected: String,
        /// Actual digest (hex).
        found: String,
    },
    /// A size limit was exceeded (decompression bomb, oversized entry, too
    /// many entries).
    #[error("`{path}`: {what} exceeds the limit of {limit} (see `Limits`)")]
    LimitExceeded {
        /// The package.
        path: PathBuf,
        /// What was too large.
        what: String,
        /// The limit.
        limit: u64,
    },
    /// No `fidius.toml`.
    #[error("`{path}` has no `fidius.toml` manifest")]
    MissingManifest {
        /// The package.
        path: PathBuf,
    },
    /// The manifest is not valid TOML or misses fields.
    #[error("`{path}`: malformed manifest `fidius.toml`: {detail}")]
    BadManifest {
        /// The package.
        path: PathBuf,
        /// What the parser said.
        detail: String,
    },
    /// The manifest's `format_version` is not one this runtime reads.
    #[error(
        "`{path}`: unsupported package format_version {found} (this runtime reads {supported})"
    )]
    UnsupportedFormat {
        /// The package.
        path: PathBuf,
        /// The manifest's version.
        found: u32,
        /// What this runtime reads.
        supported: u32,
    },
    /// No artifact for this host.
    #[error("`{path}` has no {kind} artifact for `{target}` (it has: {})", list(.available))]
    NoArtifact {
        /// The package.
        path: PathBuf,
        /// The artifact kind looked for.
        kind: &'static str,
        /// The target triple looked for.
        target: String,
        /// `kind/target` of the artifacts it has.
        available: Vec<String>,
    },
    /// The verified artifact failed to load.
    #[error(transparent)]
    Load(Box<LoadError>),
}

impl From<LoadError> for PackageError {
    fn from(e: LoadError) -> Self {
        Self::Load(Box::new(e))
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}

impl PackageError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_owned(),
            source,
        }
    }

    /// The class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::BadSignature { .. } => ErrorKind::BadSignature,
            Self::UnknownKey { .. } => ErrorKind::UnknownKey,
            Self::Unsigned { .. } => ErrorKind::Unsigned,
            Self::UnlistedEntry { .. }
            | Self::MissingEntry { .. }
            | Self::SizeMismatch { .. }
            | Self::DigestMismatch { .. } => ErrorKind::Tampered,
            Self::MalformedKey { .. }
            | Self::MalformedSignature { .. }
            | Self::Archive { .. }
            | Self::HostileEntry { .. }
            | Self::DuplicateEntry { .. }
            | Self::LimitExceeded { .. }
            | Self::MissingManifest { .. }
            | Self::BadManifest { .. }
            | Self::UnsupportedFormat { .. } => ErrorKind::Malformed,
            Self::Io { .. } | Self::Random { .. } | Self::NoArtifact { .. } | Self::Load(_) => {
                ErrorKind::Other
            }
        }
    }
}
