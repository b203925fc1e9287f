//! `cargo fidius inspect FILE`: what a plugin library contains, read from
//! its static metadata without loading it or running any plugin code.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use fidius_runtime::PluginLibrary;

/// Show the interfaces, plugins and methods in a plugin library, without
/// loading it.
#[derive(Debug, clap::Args)]
pub(crate) struct Inspect {
    /// The plugin library (`.so`, `.dylib` or `.dll`).
    file: PathBuf,
}

impl Inspect {
    pub(crate) fn exec(self) -> anyhow::Result<()> {
        let library = PluginLibrary::open(&self.file)
            .with_context(|| format!("failed to inspect `{}`", self.file.display()))?;
        print!("{}", report(&library));
        Ok(())
    }
}

fn report(library: &PluginLibrary) -> String {
    let mut out = String::new();
    let plugins = library.plugins();
    let _ = writeln!(
        out,
        "{}: {} plugin(s)",
        library.path().display(),
        plugins.len()
    );
    for p in plugins {
        let _ = writeln!(out, "\n{}/{}", p.interface_name, p.plugin_name);
        let _ = writeln!(
            out,
            "  interface: {} v{} (hash {:#018x})",
            p.interface_name, p.interface_version, p.interface_hash
        );
        let _ = writeln!(
            out,
            "  abi:       {} (wire {}), built with fidius {}",
            p.abi_version, p.wire_version, p.fidius_version
        );
        let _ = writeln!(out, "  methods:");
        for m in &p.methods {
            let _ = writeln!(out, "    {}", m.signature);
        }
    }
    out
}
