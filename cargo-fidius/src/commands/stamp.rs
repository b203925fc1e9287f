//! `cargo fidius stamp`: gives a WebAssembly component built by another
//! language's toolchain (componentize-py, jco, wit-bindgen for C, …) from an
//! interface's WIT the fidius metadata `#[plugin_impl]` gives Rust guests,
//! so hosts and `inspect` can read which plugin it is.
//!
//! The metadata record comes from the interface's own code, through a small
//! generator program that depends on the interface crate (as `cargo fidius
//! wit` does), and is added as the component's `fidius-meta` section.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use cargo_metadata::TargetKind;

use super::wit::{Generator, GeneratorFlags, find_interfaces, run_generator};
use crate::shell;

/// Add fidius metadata to a component built from an interface's WIT by
/// another toolchain.
#[derive(Debug, clap::Args)]
pub(crate) struct Stamp {
    /// The component (`.wasm`) to stamp.
    #[arg(value_name = "COMPONENT")]
    component: PathBuf,
    /// The interface crate (a workspace package).
    #[arg(short = 'p', long = "package", value_name = "SPEC")]
    package: String,
    /// The `#[plugin_interface]` trait the component implements (needed when
    /// the crate has several).
    #[arg(long, value_name = "TRAIT")]
    interface: Option<String>,
    /// The plugin's name, as hosts load it.
    #[arg(long, value_name = "NAME")]
    plugin: String,
    /// Where to write the stamped component (default: in place).
    #[arg(short, long, value_name = "PATH")]
    out: Option<PathBuf>,
    #[command(flatten)]
    flags: GeneratorFlags,
}

impl Stamp {
    pub(crate) fn exec(self) -> anyhow::Result<()> {
        let (metadata, target_dir) = self.flags.workspace()?;
        if !is_plugin_name(&self.plugin) {
            bail!(
                "invalid plugin name `{}`: use letters, digits and `_`, starting with a letter",
                self.plugin
            );
        }
        let bytes = std::fs::read(&self.component)
            .with_context(|| format!("failed to read `{}`", self.component.display()))?;
        let package = metadata
            .workspace_packages()
            .into_iter()
            .find(|p| *p.name == *self.package)
            .with_context(|| format!("package `{}` not found in the workspace", self.package))?;
        let lib = package
            .targets
            .iter()
            .find(|t| {
                t.kind
                    .iter()
                    .any(|k| matches!(k, TargetKind::Lib | TargetKind::RLib))
            })
            .with_context(|| format!("package `{}` has no library target", package.name))?;
        let found = find_interfaces(lib.src_path.as_std_path())?;
        let names: Vec<&str> = found.iter().map(|f| f.name.as_str()).collect();
        let interface = match (&self.interface, found.as_slice()) {
            (None, [only]) => only,
            (None, []) => bail!(
                "package `{}` has no #[plugin_interface] trait",
                package.name
            ),
            (None, _) => bail!(
                "package `{}` has several interfaces ({}); choose one with `--interface`",
                package.name,
                names.join(", ")
            ),
            (Some(name), _) => found.iter().find(|f| f.name == *name).with_context(|| {
                format!(
                    "package `{}` has no #[plugin_interface] trait `{name}` (it has: {})",
                    package.name,
                    names.join(", ")
                )
            })?,
        };
        let lib_name = lib.name.replace('-', "_");
        let dir = package
            .manifest_path
            .parent()
            .context("manifest without a directory")?
            .as_std_path();
        shell::status(
            "Generating",
            format!("metadata of {} for plugin {}", interface.name, self.plugin),
        );
        // The generator writes the record's bytes to a file beside it.
        let record_file = target_dir
            .join("fidius")
            .join("stamp-gen")
            .join(format!("{}.record", self.plugin));
        let expr = format!(
            "std::fs::write({:?}, <dyn ::{}>::__fidius_foreign_record({:?})).map(|()| String::new()).map_err(|e| e.to_string())",
            record_file.display().to_string(),
            interface.rust_path(&lib_name),
            self.plugin
        );
        let lock = metadata.workspace_root.join("Cargo.lock");
        let generator = Generator {
            target_dir: &target_dir,
            lock: lock.as_std_path(),
            package: &package.name,
            lib: &lib_name,
            dir,
            kind: "stamp-gen",
            offline: self.flags.offline,
        };
        match run_generator(&generator, &[expr])?.pop() {
            Some(Ok(_)) => {}
            Some(Err(e)) => bail!("the generator failed: {e}"),
            None => bail!("the generator printed nothing"),
        }
        let record = std::fs::read(&record_file)
            .with_context(|| format!("failed to read `{}`", record_file.display()))?;
        let (stamped, plugins) = fidius_runtime::stamp_component(&self.component, &bytes, &record)?;
        let out = self.out.as_ref().unwrap_or(&self.component);
        std::fs::write(out, stamped)
            .with_context(|| format!("failed to write `{}`", out.display()))?;
        report(out, &plugins);
        Ok(())
    }
}

/// `Stamped <file> (plugin … of … vN, hash …)`, a line per plugin.
pub(crate) fn report(out: &std::path::Path, plugins: &[fidius_runtime::PluginInfo]) {
    for plugin in plugins {
        shell::status(
            "Stamped",
            format!(
                "{} (plugin {} of {} v{}, hash {:#018x})",
                out.display(),
                plugin.plugin_name,
                plugin.interface_name,
                plugin.interface_version,
                plugin.interface_hash
            ),
        );
    }
}

/// Plugin names are Rust identifiers, as `#[plugin_impl]` makes them.
pub(crate) fn is_plugin_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_names_are_identifiers() {
        assert!(is_plugin_name("PyGreeter"));
        assert!(is_plugin_name("a_1"));
        assert!(!is_plugin_name("1a"));
        assert!(!is_plugin_name("py-greeter"));
        assert!(!is_plugin_name(""));
    }
}
