//! `cargo fidius keygen --out NAME`: a new Ed25519 key pair.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use fidius_runtime::package::SecretKey;

use crate::shell;

/// Generate an Ed25519 signing key pair: NAME.key (secret, mode 0600) and
/// NAME.pub (public, for hosts).
#[derive(Debug, clap::Args)]
pub(crate) struct Keygen {
    /// Path prefix of the two files to write (`NAME.key`, `NAME.pub`).
    #[arg(long, value_name = "NAME")]
    out: PathBuf,
}

impl Keygen {
    pub(crate) fn exec(self) -> anyhow::Result<()> {
        let with = |ext: &str| {
            let mut name = self.out.clone().into_os_string();
            name.push(ext);
            PathBuf::from(name)
        };
        let (secret_path, public_path) = (with(".key"), with(".pub"));
        for path in [&secret_path, &public_path] {
            if path.exists() {
                bail!("`{}` already exists; not overwriting a key", path.display());
            }
        }
        let key = SecretKey::generate()?;
        write_new(&secret_path, key.to_file_text().as_bytes(), 0o600)?;
        if let Err(e) = write_new(
            &public_path,
            key.public_key().to_file_text().as_bytes(),
            0o644,
        ) {
            // Do not leave half a key pair behind.
            let _ = std::fs::remove_file(&secret_path);
            return Err(e);
        }
        shell::status(
            "Generated",
            format!(
                "key {} (secret `{}`, public `{}`)",
                key.id(),
                secret_path.display(),
                public_path.display()
            ),
        );
        println!("{}", key.id());
        Ok(())
    }
}

/// Creates `path` (failing if it exists) with `mode` on Unix.
pub(crate) fn write_new(path: &std::path::Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options
        .open(path)
        .with_context(|| format!("failed to create `{}`", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("failed to write `{}`", path.display()))
}
