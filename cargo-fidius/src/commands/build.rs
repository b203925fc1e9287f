//! `cargo fidius build`: build every plugin package for every target.

use super::cargo::{Built, CargoArgs};

/// Build plugin packages (those with `[package.metadata.fidius]`) for each
/// target and collect their artifacts into `<target-dir>/fidius/`.
#[derive(Debug, clap::Args)]
pub(crate) struct Build {
    #[command(flatten)]
    cargo: CargoArgs,
}

impl Build {
    pub(crate) fn exec(self) -> anyhow::Result<Vec<Built>> {
        self.cargo.plan()?.build()
    }
}
