//! `cargo fidius verify --key PUBLIC... FILE|PKG`: the host's own checks.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use fidius_runtime::package::{PublicKey, TrustPolicy, VerifiedPackage, verify_artifact};

use crate::shell;

/// Verify a package or a signed artifact exactly as a host would: the
/// signature against the given public keys, and for packages every
/// artifact's size and SHA-256 and the archive's structure.
///
/// Exit codes: 0 verified, 3 bad signature, 4 signed by an unknown key,
/// 5 tampered content, 6 malformed input, 7 unsigned, 1 other errors.
#[derive(Debug, clap::Args)]
pub(crate) struct Verify {
    /// A trusted public key file (repeatable).
    #[arg(long = "key", value_name = "PUBLIC", required = true)]
    keys: Vec<PathBuf>,
    /// A `.fidpkg` package, or an artifact with a detached `.sig`.
    #[arg(value_name = "FILE|PKG")]
    file: PathBuf,
}

/// The trust policy for `keys`.
pub(crate) fn policy(keys: &[PathBuf]) -> anyhow::Result<TrustPolicy> {
    let mut policy = TrustPolicy::new();
    for key in keys {
        policy = policy.trust(
            PublicKey::from_file(key)
                .with_context(|| format!("failed to read the public key `{}`", key.display()))?,
        );
    }
    Ok(policy)
}

/// Whether `path` is a package (by extension or gzip magic).
pub(crate) fn is_package(path: &Path) -> bool {
    if path.extension().is_some_and(|e| e == "fidpkg") {
        return true;
    }
    // Only a regular file is sniffed: opening a FIFO would block. Anything
    // else goes on to the artifact checks, which name what it is.
    if !path.is_file() {
        return false;
    }
    let mut magic = [0u8; 2];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .is_ok()
        && magic == [0x1f, 0x8b]
}

impl Verify {
    pub(crate) fn exec(self) -> anyhow::Result<()> {
        let policy = policy(&self.keys)?;
        let what = self.file.display();
        if is_package(&self.file) {
            let package = VerifiedPackage::read(&self.file, &policy)
                .with_context(|| format!("failed to verify `{what}`"))?;
            let m = package.manifest();
            shell::status(
                "Verified",
                format!(
                    "`{what}`: {} v{}, {} artifact(s), signed by key {}",
                    m.package.name,
                    m.package.version,
                    m.artifacts.len(),
                    package.signer().unwrap_or_default()
                ),
            );
        } else {
            let (_, signer) = verify_artifact(&self.file, &policy)
                .with_context(|| format!("failed to verify `{what}`"))?;
            shell::status(
                "Verified",
                format!("`{what}`: signed by key {}", signer.unwrap_or_default()),
            );
        }
        Ok(())
    }
}
