//! The subcommands, one module each; `cargo.rs` turns cargo-style flags
//! into a build plan shared by `build` and `package`.

mod build;
mod cargo;
mod guest;
mod inspect;
mod keygen;
mod new;
mod package;
mod python;
mod sign;
mod stamp;
mod stub;
mod verify;
mod wit;

use fidius_runtime::package::{ErrorKind, PackageError};

/// Exit codes (documented in `docs/src/cli.md`). 2 is clap's usage error;
/// a failed `cargo build` passes cargo's own code through.
pub(crate) mod exit {
    /// Any other failure.
    pub(crate) const FAILURE: u8 = 1;
    /// A signature does not verify.
    pub(crate) const BAD_SIGNATURE: u8 = 3;
    /// Signed by a key that was not given with `--key`.
    pub(crate) const UNKNOWN_KEY: u8 = 4;
    /// The content differs from the signed manifest.
    pub(crate) const TAMPERED: u8 = 5;
    /// Not a well-formed package, signature or key.
    pub(crate) const MALFORMED: u8 = 6;
    /// Unsigned.
    pub(crate) const UNSIGNED: u8 = 7;
}

/// `cargo build` failed with this exit code; it is passed through.
#[derive(Debug)]
pub(crate) struct CargoFailed(pub(crate) u8);

impl std::fmt::Display for CargoFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cargo build failed (exit code {})", self.0)
    }
}

impl std::error::Error for CargoFailed {}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    New(new::New),
    Build(build::Build),
    Keygen(keygen::Keygen),
    Sign(sign::Sign),
    Verify(verify::Verify),
    Inspect(inspect::Inspect),
    Package(package::Package),
    Wit(wit::Wit),
    Stamp(stamp::Stamp),
    Stub(stub::Stub),
}

impl Command {
    pub(crate) fn exec(self) -> anyhow::Result<()> {
        match self {
            Self::New(cmd) => cmd.exec(),
            Self::Build(cmd) => cmd.exec().map(drop),
            Self::Keygen(cmd) => cmd.exec(),
            Self::Sign(cmd) => cmd.exec(),
            Self::Verify(cmd) => cmd.exec(),
            Self::Inspect(cmd) => cmd.exec(),
            Self::Package(cmd) => cmd.exec(),
            Self::Wit(cmd) => cmd.exec(),
            Self::Stamp(cmd) => cmd.exec(),
            Self::Stub(cmd) => cmd.exec(),
        }
    }
}

pub(crate) fn exit_code(error: &anyhow::Error) -> u8 {
    if let Some(CargoFailed(code)) = error.downcast_ref::<CargoFailed>() {
        return *code;
    }
    let Some(package) = error.chain().find_map(|e| e.downcast_ref::<PackageError>()) else {
        return exit::FAILURE;
    };
    match package.kind() {
        ErrorKind::BadSignature => exit::BAD_SIGNATURE,
        ErrorKind::UnknownKey => exit::UNKNOWN_KEY,
        ErrorKind::Tampered => exit::TAMPERED,
        ErrorKind::Malformed => exit::MALFORMED,
        ErrorKind::Unsigned => exit::UNSIGNED,
        _ => exit::FAILURE,
    }
}

/// The secret key from `--key FILE`, else from `$FIDIUS_SIGNING_KEY` (the
/// key file's contents, for CI secrets).
pub(crate) fn secret_key(
    path: Option<&std::path::Path>,
) -> anyhow::Result<Option<fidius_runtime::package::SecretKey>> {
    use anyhow::Context as _;
    use fidius_runtime::package::SecretKey;
    if let Some(path) = path {
        return SecretKey::from_file(path)
            .map(Some)
            .with_context(|| format!("failed to read the signing key `{}`", path.display()));
    }
    match std::env::var(SIGNING_KEY_VAR) {
        Ok(text) if !text.trim().is_empty() => SecretKey::parse(SIGNING_KEY_VAR, &text)
            .map(Some)
            .with_context(|| format!("failed to read the signing key from `${SIGNING_KEY_VAR}`")),
        _ => Ok(None),
    }
}

/// The environment variable holding a secret key file's contents.
pub(crate) const SIGNING_KEY_VAR: &str = "FIDIUS_SIGNING_KEY";
