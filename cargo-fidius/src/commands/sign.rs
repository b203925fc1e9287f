//! `cargo fidius sign --key SECRET FILE...`: detached signatures.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use fidius_runtime::package::signature_path;

use crate::shell;

/// Sign files: writes a detached `FILE.sig` next to each FILE.
///
/// The key comes from `--key`, or from the `FIDIUS_SIGNING_KEY` environment
/// variable holding the secret key file's contents (for CI secrets).
#[derive(Debug, clap::Args)]
pub(crate) struct Sign {
    /// The secret key file (from `cargo fidius keygen`).
    #[arg(long, value_name = "SECRET")]
    key: Option<PathBuf>,
    /// The files to sign.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

impl Sign {
    pub(crate) fn exec(self) -> anyhow::Result<()> {
        let Some(key) = super::secret_key(self.key.as_deref())? else {
            bail!(
                "no signing key: pass `--key SECRET` or set `${}`",
                super::SIGNING_KEY_VAR
            );
        };
        for file in &self.files {
            let bytes = std::fs::read(file)
                .with_context(|| format!("failed to read `{}`", file.display()))?;
            let sig = signature_path(file);
            std::fs::write(&sig, key.sign(&bytes).to_file_text())
                .with_context(|| format!("failed to write `{}`", sig.display()))?;
            shell::status(
                "Signed",
                format!(
                    "`{}` with key {} (`{}`)",
                    file.display(),
                    key.id(),
                    sig.display()
                ),
            );
        }
        Ok(())
    }
}
