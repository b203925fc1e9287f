//! Plugins written in other languages than Rust (JavaScript, C, Python,
//! Go), built into WebAssembly components: a project directory with a
//! `fidius.toml` naming the plugin, its language, its source and the
//! interface crate it implements.
//!
//! `cargo fidius build` on such a project writes the interface's WIT into
//! `wit/` (from the interface crate, so it never goes stale), runs the
//! language's toolchain on it (one module per language), and stamps the
//! component with the interface's fidius metadata, so hosts, `inspect`,
//! `package` and `verify` treat it like a Rust guest's component. Nothing is
//! installed or downloaded here: a missing toolchain is an error that says
//! what to install.

mod c;
mod componentize;
mod go;
mod js;
mod python;

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

use super::cargo::Built;
use super::wit::{GeneratorFlags, generate_each, write_or_check};
use crate::shell;

/// The manifest file of a guest project.
pub(crate) const MANIFEST: &str = "fidius.toml";

/// The target a guest is built for.
pub(crate) const TARGET: &str = "wasm32-wasip2";

/// A guest's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Lang {
    /// JavaScript, built by componentize-js.
    Js,
    /// C, built by clang with wasi-libc and `wit-bindgen c`'s bindings.
    C,
    /// Python, built by componentize-py.
    PythonWasm,
    /// Go (`GOOS=wasip1`, `//go:wasmexport`), made a component here.
    Go,
}

impl Lang {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Js => "JavaScript",
            Self::C => "C",
            Self::PythonWasm => "Python",
            Self::Go => "Go",
        }
    }
}

/// `fidius.toml`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestFile {
    package: PackageSection,
    plugin: PluginSection,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PackageSection {
    name: String,
    version: String,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PluginSection {
    name: String,
    lang: Lang,
    source: String,
    interface: InterfaceSection,
    #[serde(default)]
    capabilities: Vec<String>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct InterfaceSection {
    path: PathBuf,
    #[serde(rename = "trait")]
    trait_name: String,
}

/// A guest project, read from its `fidius.toml`.
#[derive(Debug)]
pub(crate) struct Guest {
    /// The project directory.
    pub(crate) dir: PathBuf,
    pub(crate) package: String,
    pub(crate) version: String,
    /// The plugin's name, as hosts load it.
    pub(crate) plugin: String,
    pub(crate) lang: Lang,
    /// The source, relative to `dir`: what the language's toolchain starts
    /// from.
    pub(crate) source: String,
    /// The interface crate's directory.
    pub(crate) interface: PathBuf,
    pub(crate) trait_name: String,
    /// What the component requests from the sandbox (for `package`).
    pub(crate) capabilities: Vec<String>,
}

/// What a language's toolchain is given.
pub(crate) struct Inputs<'a> {
    pub(crate) guest: &'a Guest,
    /// The interface's WIT file.
    pub(crate) wit: &'a Path,
    /// The world guests export: `<interface>-plugin`.
    pub(crate) world: &'a str,
    /// A scratch directory for this build.
    pub(crate) work: &'a Path,
}

impl Guest {
    /// The guest project `path` names: a directory holding `fidius.toml`,
    /// or the file itself.
    pub(crate) fn find(path: &Path) -> Option<PathBuf> {
        if path.file_name().is_some_and(|n| n == MANIFEST) && path.is_file() {
            return Some(path.to_owned());
        }
        let manifest = path.join(MANIFEST);
        manifest.is_file().then_some(manifest)
    }

    pub(crate) fn read(manifest: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(manifest)
            .with_context(|| format!("failed to read `{}`", manifest.display()))?;
        let file: ManifestFile = toml::from_str(&text)
            .with_context(|| format!("failed to parse `{}`", manifest.display()))?;
        let dir = std::path::absolute(manifest)?
            .parent()
            .context("manifest without a directory")?
            .to_owned();
        let plugin = file.plugin;
        if !super::stamp::is_plugin_name(&plugin.name) {
            bail!(
                "`{}`: invalid `plugin.name` `{}`: use letters, digits and `_`, starting with a letter",
                manifest.display(),
                plugin.name
            );
        }
        if file.package.name.is_empty()
            || !file
                .package
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            bail!(
                "`{}`: invalid `package.name` `{}`: use letters, digits, `-` and `_`",
                manifest.display(),
                file.package.name
            );
        }
        semver_check(manifest, &file.package.version)?;
        let source = dir.join(&plugin.source);
        if !source.exists() {
            bail!(
                "`{}`: `plugin.source` `{}` does not exist (looked for `{}`)",
                manifest.display(),
                plugin.source,
                source.display()
            );
        }
        let interface = dir.join(&plugin.interface.path);
        if !interface.join("Cargo.toml").is_file() {
            bail!(
                "`{}`: `plugin.interface.path` `{}` is not a crate (no `Cargo.toml` in `{}`)",
                manifest.display(),
                plugin.interface.path.display(),
                interface.display()
            );
        }
        Ok(Self {
            dir,
            package: file.package.name,
            version: file.package.version,
            plugin: plugin.name,
            lang: plugin.lang,
            source: plugin.source,
            interface: std::fs::canonicalize(&interface)?,
            trait_name: plugin.interface.trait_name,
            capabilities: plugin.capabilities,
        })
    }

    /// The component this build writes.
    pub(crate) fn output(&self, target_dir: &Path) -> PathBuf {
        target_dir
            .join("fidius")
            .join(&self.package)
            .join(TARGET)
            .join(format!("{}.wasm", self.package.replace('-', "_")))
    }

    /// Builds the component, stamps it, and writes it under `target_dir`
    /// (default: `target/` in the project).
    pub(crate) fn build(&self, target_dir: Option<&Path>, offline: bool) -> anyhow::Result<Built> {
        let target_dir = match target_dir {
            Some(dir) => std::path::absolute(dir)?,
            None => self.dir.join("target"),
        };
        let (wit_text, record) = self.interface_outputs(&target_dir, offline)?;
        let wit = self.dir.join("wit").join(format!(
            "{}.wit",
            fidius_runtime::wit_name(&self.trait_name)
        ));
        write_or_check(&self.trait_name, &wit, &wit_text, false)?;
        let world = format!("{}-plugin", fidius_runtime::wit_name(&self.trait_name));
        let work = target_dir
            .join("fidius")
            .join("guest-build")
            .join(&self.package);
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work)
            .with_context(|| format!("failed to create `{}`", work.display()))?;
        shell::status(
            "Compiling",
            format!(
                "{} v{} ({} plugin {}, {})",
                self.package,
                self.version,
                self.lang.name(),
                self.plugin,
                self.dir.display()
            ),
        );
        let inputs = Inputs {
            guest: self,
            wit: &wit,
            world: &world,
            work: &work,
        };
        let component = match self.lang {
            Lang::Js => js::build(&inputs)?,
            Lang::C => c::build(&inputs)?,
            Lang::PythonWasm => python::build(&inputs)?,
            Lang::Go => go::build(&inputs)?,
        };
        let out = self.output(&target_dir);
        let (stamped, plugins) = fidius_runtime::stamp_component(&out, &component, &record)
            .with_context(|| {
                format!(
                    "the {} toolchain's component for `{}` is not a fidius plugin of `{}`",
                    self.lang.name(),
                    self.package,
                    self.trait_name
                )
            })?;
        if let Some(parent) = out.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("failed to create `{}`", parent.display()))?;
        }
        std::fs::write(&out, stamped)
            .with_context(|| format!("failed to write `{}`", out.display()))?;
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
        Ok(Built {
            package: self.package.clone(),
            version: self.version.clone(),
            target: TARGET.to_owned(),
            kind: "wasm",
            path: out,
        })
    }

    /// The interface's WIT and the plugin's metadata record, from the
    /// interface crate's own code (one generator run).
    fn interface_outputs(
        &self,
        target_dir: &Path,
        offline: bool,
    ) -> anyhow::Result<(String, Vec<u8>)> {
        let mut flags = GeneratorFlags::for_manifest(self.interface.join("Cargo.toml"))
            .target_dir(target_dir.to_owned());
        flags.offline = offline;
        let (metadata, target_dir) = flags.workspace()?;
        let manifest = self.interface.join("Cargo.toml");
        let package = metadata
            .workspace_packages()
            .into_iter()
            .find(|p| p.manifest_path.as_std_path() == manifest)
            .map(|p| p.name.to_string())
            .with_context(|| format!("no package for `{}`", manifest.display()))?;
        let plugin = &self.plugin;
        // The record's bytes go to a file beside the generator.
        let record_file = target_dir
            .join("fidius")
            .join("guest-gen")
            .join(format!("{}-{plugin}.record", self.package));
        if let Some(parent) = record_file.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("failed to create `{}`", parent.display()))?;
        }
        let _ = std::fs::remove_file(&record_file);
        let record_path = record_file.display().to_string();
        let suffix = format!("::{}", self.trait_name);
        let generated = generate_each(
            &flags,
            std::slice::from_ref(&package),
            "guest-gen",
            "WIT and metadata",
            |path| {
                if !path.ends_with(&suffix) {
                    return format!("<dyn ::{path}>::__fidius_wit().map_err(|e| e.to_string())");
                }
                format!(
                    "<dyn ::{path}>::__fidius_wit().map_err(|e| e.to_string()).and_then(|wit| \
                     std::fs::write({record_path:?}, <dyn ::{path}>::__fidius_foreign_record({plugin:?})) \
                     .map(|()| wit).map_err(|e| e.to_string()))"
                )
            },
        )?;
        let names: Vec<String> = generated.iter().map(|g| g.found.name.clone()).collect();
        let text = generated
            .into_iter()
            .find(|g| g.found.name == self.trait_name)
            .with_context(|| {
                format!(
                    "`{package}` has no #[plugin_interface] trait `{}` (it has: {})",
                    self.trait_name,
                    names.join(", ")
                )
            })?
            .text
            .map_err(|reason| {
                anyhow::anyhow!(
                    "interface `{}` has no WIT form, so WASM plugins cannot implement it: {reason}",
                    self.trait_name
                )
            })?;
        let record = std::fs::read(&record_file)
            .with_context(|| format!("failed to read `{}`", record_file.display()))?;
        Ok((text, record))
    }
}

fn semver_check(manifest: &Path, version: &str) -> anyhow::Result<()> {
    let parts: Vec<&str> = version.split(['.', '-', '+']).collect();
    if parts.len() < 3 || parts[..3].iter().any(|p| p.parse::<u64>().is_err()) {
        bail!(
            "`{}`: `package.version` `{version}` is not a semantic version (e.g. `0.1.0`)",
            manifest.display()
        );
    }
    Ok(())
}

/// A toolchain program: `$VAR` if set, else `default` on `PATH`. Checks it
/// runs (`probe` arguments); a missing one is an error naming `install`.
pub(crate) fn tool(
    var: &str,
    default: &str,
    probe: &[&str],
    install: &str,
) -> anyhow::Result<PathBuf> {
    let exe = std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from);
    match Command::new(&exe).args(probe).output() {
        Ok(out) if out.status.success() => Ok(exe),
        Ok(out) => bail!(
            "`{}` does not work (`{} {}` failed: {}); {install}",
            exe.display(),
            exe.display(),
            probe.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) if e.kind() == ErrorKind::NotFound => bail!(
            "`{}` not found (set `${var}` to its path, or put it on PATH); {install}",
            exe.display()
        ),
        Err(e) => bail!("cannot run `{}`: {e}; {install}", exe.display()),
    }
}

/// Runs a toolchain step; its output is shown when it fails.
pub(crate) fn run(what: &str, cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd
        .output()
        .with_context(|| format!("failed to run {what} ({cmd:?})"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}
