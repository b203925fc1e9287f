//! `cargo fidius stub --python`: writes typed Python stubs of each
//! interface (`python/<interface>.py` in its crate): the declaration
//! constants and `plugin()` decorator, the types as `TypedDict`s and
//! `Literal`s, and a `Protocol` per interface (and host interface), for
//! Python plugins, editors and type checkers.

use std::path::PathBuf;

use anyhow::bail;

use super::wit::{GeneratorFlags, generate_each, write_or_check};

/// Write typed stubs of interface crates for plugins in other languages.
#[derive(Debug, clap::Args)]
pub(crate) struct Stub {
    /// Python stubs (the only language so far).
    #[arg(long, required = true)]
    python: bool,
    /// Interface package(s) to process (default: every workspace package
    /// with a `#[plugin_interface]` trait).
    #[arg(short = 'p', long = "package", value_name = "SPEC")]
    packages: Vec<String>,
    /// Directory to write into (default: `python/` in each interface
    /// crate).
    #[arg(long, value_name = "DIRECTORY")]
    out: Option<PathBuf>,
    /// Fail (exit code 1) if a stub file is missing or differs, instead of
    /// writing it.
    #[arg(long)]
    check: bool,
    #[command(flatten)]
    flags: GeneratorFlags,
}

/// The stub module's file name for interface `name` (`ImageFilter` →
/// `image_filter.py`).
pub(crate) fn stub_file(name: &str) -> String {
    format!("{}.py", fidius_runtime::wit_name(name).replace('-', "_"))
}

impl Stub {
    pub(crate) fn exec(self) -> anyhow::Result<()> {
        let _ = self.python;
        let generated = generate_each(
            &self.flags,
            &self.packages,
            "stub-gen",
            "Python stubs",
            |path| format!("<dyn ::{path}>::__fidius_python().map_err(|e| e.to_string())"),
        )?;
        let mut stale = Vec::new();
        for g in generated {
            let text = match g.text {
                Ok(text) => text,
                Err(reason) => bail!("interface `{}` has no Python form: {reason}", g.found.name),
            };
            let dir = self.out.clone().unwrap_or_else(|| g.dir.join("python"));
            let file = dir.join(stub_file(&g.found.name));
            stale.extend(write_or_check(&g.found.name, &file, &text, self.check)?);
        }
        if !stale.is_empty() {
            bail!(
                "the Python stubs are out of date; run `cargo fidius stub --python`:\n  {}",
                stale.join("\n  ")
            );
        }
        Ok(())
    }
}
