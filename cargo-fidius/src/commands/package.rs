//! `cargo fidius package`: build, then write signed `NAME-VERSION.fidpkg`
//! archives.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use fidius_runtime::inspect_library;
use fidius_runtime::package::{
    Artifact, ArtifactKind, FORMAT_VERSION, Manifest, PYTHON_TARGET, PackageInfo, PluginEntry,
    SecretKey, python_artifact, write_package,
};

use super::cargo::{Built, CargoArgs, MessageFormat};
use crate::shell;

/// Build plugin packages (if needed) and write one signed
/// `NAME-VERSION.fidpkg` per package, holding an artifact per target.
///
/// The key comes from `--key`, or from the `FIDIUS_SIGNING_KEY` environment
/// variable holding the secret key file's contents; without either the
/// package is unsigned (hosts refuse it unless they allow unsigned ones).
#[derive(Debug, clap::Args)]
pub(crate) struct Package {
    /// A guest project in another language (its directory or its
    /// `fidius.toml`): one package holding its component.
    #[arg(value_name = "PATH")]
    path: Option<PathBuf>,
    #[command(flatten)]
    cargo: CargoArgs,
    /// The secret key to sign with.
    #[arg(long, value_name = "SECRET")]
    key: Option<PathBuf>,
    /// Where to write packages (default `<target-dir>/fidius/packages`;
    /// with `--python`, `dist/` in the plugin's directory).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Package the Python plugin in this directory (its `pyproject.toml`
    /// names the module) instead of building plugin crates.
    #[arg(long, value_name = "DIR")]
    python: Option<PathBuf>,
}

impl Package {
    pub(crate) fn exec(self) -> anyhow::Result<()> {
        let key = super::secret_key(self.key.as_deref())?;
        if let Some(dir) = &self.python {
            return self.python(dir, key.as_ref());
        }
        if let Some(manifest) = super::build::guest_manifest(self.path.as_deref(), &self.cargo)? {
            let guest = super::guest::Guest::read(&manifest)?;
            let built = self.cargo.build_guest(&guest)?;
            let out = self.out.clone().unwrap_or_else(|| {
                let target = built.path.ancestors().nth(4).unwrap_or(&guest.dir);
                target.join("fidius").join("packages")
            });
            std::fs::create_dir_all(&out)
                .with_context(|| format!("failed to create `{}`", out.display()))?;
            warn_unsigned(key.as_ref());
            return self.write_built(
                &out,
                &guest.package,
                &guest.version,
                &guest.capabilities,
                &[&built],
                super::guest::TARGET,
                key.as_ref(),
            );
        }
        let plan = self.cargo.plan()?;
        let built = plan.build()?;
        let out = self.out.clone().unwrap_or_else(|| {
            plan.target_dir
                .join("fidius")
                .join("packages")
                .into_std_path_buf()
        });
        std::fs::create_dir_all(&out)
            .with_context(|| format!("failed to create `{}`", out.display()))?;
        warn_unsigned(key.as_ref());
        for plugin in &plan.plugins {
            let mine: Vec<_> = built.iter().filter(|b| b.package == plugin.name).collect();
            self.write_built(
                &out,
                &plugin.name,
                &plugin.version,
                &plugin.capabilities,
                &mine,
                plan.host.as_str(),
                key.as_ref(),
            )?;
        }
        Ok(())
    }
}

impl Package {
    /// Writes one package of `mine`, the artifacts built for package
    /// `name`.
    #[allow(clippy::too_many_arguments)]
    fn write_built(
        &self,
        out: &Path,
        name: &str,
        version: &str,
        capabilities: &[String],
        mine: &[&Built],
        host: &str,
        key: Option<&SecretKey>,
    ) -> anyhow::Result<()> {
        let mut plugins = Vec::new();
        let mut artifacts = Vec::new();
        let mut bytes = BTreeMap::new();
        // The plugin list comes from the host's artifact, or else from
        // any other (read without loading, whatever its target).
        let source = mine
            .iter()
            .find(|b| b.kind == "native" && b.target == host)
            .or_else(|| mine.iter().find(|b| b.kind == "native"))
            .or_else(|| mine.first());
        if let Some(b) = source {
            let contents = inspect_library(&b.path)
                .with_context(|| format!("failed to read the plugins of `{}`", b.path.display()))?;
            plugins = contents
                .plugins
                .iter()
                .map(|p| PluginEntry {
                    name: p.plugin_name.clone(),
                    interface: p.interface_name.clone(),
                    interface_version: p.interface_version,
                    interface_hash: format!("{:#018x}", p.interface_hash),
                })
                .collect();
        }
        for b in mine {
            let file = b
                .path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("artifact");
            let path = format!("artifacts/{}/{file}", b.target);
            let wasm = b.kind == "wasm";
            artifacts.push(Artifact {
                kind: if wasm {
                    ArtifactKind::Wasm
                } else {
                    ArtifactKind::Native
                },
                target: b.target.clone(),
                path: path.clone(),
                size: 0,
                sha256: String::new(),
                capabilities: if wasm {
                    capabilities.to_vec()
                } else {
                    Vec::new()
                },
            });
            let data = std::fs::read(&b.path)
                .with_context(|| format!("failed to read `{}`", b.path.display()))?;
            bytes.insert(path, data);
        }
        if plugins.is_empty() {
            shell::warn(format!(
                "`{name}`: no artifact to read the plugin list from; the manifest lists no plugins"
            ));
        }
        let manifest = Manifest {
            format_version: FORMAT_VERSION,
            package: PackageInfo {
                name: name.to_owned(),
                version: version.to_owned(),
            },
            plugins,
            artifacts,
        };
        let path = write(out, &manifest, &bytes, key)?;
        self.report(
            &manifest,
            &path,
            key,
            mine.iter().map(|b| b.target.as_str()).collect(),
            &format!("{} artifact(s)", mine.len()),
        );
        Ok(())
    }

    /// `--python DIR`: one package holding the plugin's files as a
    /// `python` artifact.
    fn python(&self, dir: &Path, key: Option<&SecretKey>) -> anyhow::Result<()> {
        let plugin = super::python::PythonPlugin::read(dir)?;
        let files = plugin.files()?;
        let scratch = std::env::temp_dir().join(format!("fidius-package-{}", std::process::id()));
        let declared = plugin.declared(&scratch);
        let _ = std::fs::remove_dir_all(&scratch);
        let declared = declared?;
        if declared.is_empty() {
            anyhow::bail!(
                "`{}.py` declares no plugin (mark a class with `@fidius.plugin(...)`)",
                plugin.module
            );
        }
        let tar = python_artifact(&files).map_err(anyhow::Error::msg)?;
        let path = format!("artifacts/{PYTHON_TARGET}/{}.tar", plugin.module);
        let manifest = Manifest {
            format_version: FORMAT_VERSION,
            package: PackageInfo {
                name: plugin.name.clone(),
                version: plugin.version.clone(),
            },
            plugins: declared
                .iter()
                .map(|d| PluginEntry {
                    name: d.name.clone(),
                    interface: d.interface.clone(),
                    interface_version: d.version,
                    interface_hash: format!("{:#018x}", d.hash),
                })
                .collect(),
            artifacts: vec![Artifact {
                kind: ArtifactKind::Python,
                target: PYTHON_TARGET.into(),
                path: path.clone(),
                size: 0,
                sha256: String::new(),
                capabilities: Vec::new(),
            }],
        };
        let out = self.out.clone().unwrap_or_else(|| dir.join("dist"));
        std::fs::create_dir_all(&out)
            .with_context(|| format!("failed to create `{}`", out.display()))?;
        warn_unsigned(key);
        let written = write(&out, &manifest, &BTreeMap::from([(path, tar)]), key)?;
        self.report(
            &manifest,
            &written,
            key,
            vec![PYTHON_TARGET],
            &format!(
                "Python, {} file(s), {} plugin(s)",
                files.len(),
                declared.len()
            ),
        );
        Ok(())
    }

    /// Says a package was written: a status line, or a JSON message.
    fn report(
        &self,
        manifest: &Manifest,
        path: &Path,
        key: Option<&SecretKey>,
        targets: Vec<&str>,
        contents: &str,
    ) {
        let (name, version) = (&manifest.package.name, &manifest.package.version);
        match self.cargo.message_format {
            MessageFormat::Json => println!(
                "{}",
                serde_json::json!({
                    "reason": "fidius-package",
                    "package": name,
                    "version": version,
                    "path": path,
                    "signed_by": key.map(|k| k.id()),
                    "targets": targets,
                })
            ),
            MessageFormat::Human => shell::status(
                "Packaged",
                format!(
                    "{name} v{version} ({contents}, {}) to {}",
                    signed(key),
                    path.display()
                ),
            ),
        }
    }
}

fn warn_unsigned(key: Option<&SecretKey>) {
    if key.is_none() {
        shell::warn(format!(
            "no signing key (`--key` or `${}`): writing unsigned packages, which hosts refuse unless they allow unsigned ones",
            super::SIGNING_KEY_VAR
        ));
    }
}

fn signed(key: Option<&SecretKey>) -> String {
    key.map_or_else(
        || "unsigned".to_owned(),
        |k| format!("signed by key {}", k.id()),
    )
}

/// Writes `NAME-VERSION.fidpkg` into `out`; returns its path.
fn write(
    out: &Path,
    manifest: &Manifest,
    bytes: &BTreeMap<String, Vec<u8>>,
    key: Option<&SecretKey>,
) -> anyhow::Result<PathBuf> {
    let name = &manifest.package.name;
    let version = &manifest.package.version;
    let package = write_package(manifest, bytes, key)
        .with_context(|| format!("failed to package `{name}`"))?;
    let path = out.join(format!("{name}-{version}.fidpkg"));
    std::fs::write(&path, &package)
        .with_context(|| format!("failed to write `{}`", path.display()))?;
    Ok(path)
}
