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
        if let Some(config) = &p.config_type {
            let _ = writeln!(out, "  config:    {config}");
        }
        if let Some(host) = &p.host {
            let _ = writeln!(
                out,
                "  host:      {} v{} (hash {:#018x})",
                host.name, host.version, host.hash
            );
        }
        if !p.interface_meta.is_empty() {
            let _ = writeln!(out, "  meta:      {}", pairs(&p.interface_meta));
        }
        let _ = writeln!(out, "  methods:");
        for m in &p.methods {
            let mut line = format!("    {}", m.signature);
            if let Some(since) = m.since {
                let state = if m.implemented {
                    "implemented"
                } else {
                    "not implemented"
                };
                let _ = write!(line, "  [optional since {since}, {state}]");
            }
            if !m.meta.is_empty() {
                let _ = write!(line, "  {{{}}}", pairs(&m.meta));
            }
            let _ = writeln!(out, "{line}");
        }
    }
    out
}

fn pairs(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k} = {v:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}
