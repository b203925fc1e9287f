//! `cargo fidius build`: build every plugin package for every target, or a
//! guest project in another language (a directory with `fidius.toml`).

use std::path::PathBuf;

use super::cargo::{Built, CargoArgs};
use super::guest::Guest;

/// Build plugin packages (those with `[package.metadata.fidius]`) for each
/// target and collect their artifacts into `<target-dir>/fidius/`; or build
/// the guest project (JavaScript, C, Python, Go) at PATH (or
/// `--manifest-path fidius.toml`, or in the current directory) into a
/// stamped WebAssembly component.
#[derive(Debug, clap::Args)]
pub(crate) struct Build {
    /// A guest project (its directory or its `fidius.toml`).
    #[arg(value_name = "PATH")]
    path: Option<PathBuf>,
    #[command(flatten)]
    cargo: CargoArgs,
}

impl Build {
    pub(crate) fn exec(self) -> anyhow::Result<Vec<Built>> {
        if let Some(manifest) = guest_manifest(self.path.as_deref(), &self.cargo)? {
            let guest = Guest::read(&manifest)?;
            return self.cargo.build_guest(&guest).map(|b| vec![b]);
        }
        self.cargo.plan()?.build()
    }
}

/// The guest project's `fidius.toml` that `path` or the cargo flags name:
/// `PATH`; `--manifest-path` to a `fidius.toml`; or the current directory
/// when it has one and no `Cargo.toml`.
pub(crate) fn guest_manifest(
    path: Option<&std::path::Path>,
    cargo: &CargoArgs,
) -> anyhow::Result<Option<PathBuf>> {
    if let Some(path) = path {
        return Guest::find(path).map(Some).ok_or_else(|| {
            anyhow::anyhow!(
                "`{}` is not a guest project: it has no `{}`",
                path.display(),
                super::guest::MANIFEST
            )
        });
    }
    if let Some(manifest) = &cargo.manifest_path {
        return Ok(Guest::find(manifest));
    }
    let here = std::path::Path::new(".");
    if !here.join("Cargo.toml").exists() {
        return Ok(Guest::find(here));
    }
    Ok(None)
}
