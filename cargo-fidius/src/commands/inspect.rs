//! `cargo fidius inspect FILE|PKG`: what a plugin library or package
//! contains, read from the static metadata without loading it or running
//! any plugin code.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use fidius_runtime::package::{ArtifactKind, HOST_TARGET, SignatureStatus, VerifiedPackage};
use fidius_runtime::{PluginInfo, inspect_library};
use serde_json::{Value, json};

use super::cargo::MessageFormat;
use super::verify::{is_package, policy};

/// Show the interfaces, plugins and methods in a plugin library or a
/// `.fidpkg` package (with its manifest and signature status), without
/// loading it.
#[derive(Debug, clap::Args)]
pub(crate) struct Inspect {
    /// The plugin library (`.so`, `.dylib`, `.dll`) or package (`.fidpkg`).
    #[arg(value_name = "FILE|PKG")]
    file: PathBuf,
    /// Public keys to check a package's signature with (repeatable).
    #[arg(long = "key", value_name = "PUBLIC")]
    keys: Vec<PathBuf>,
    /// Output format: `human` (a report on stdout), or `json` (one
    /// pretty-printed JSON document on stdout).
    #[arg(long, value_enum, default_value = "human", value_name = "FMT")]
    message_format: MessageFormat,
}

impl Inspect {
    pub(crate) fn exec(self) -> anyhow::Result<()> {
        let what = || format!("failed to inspect `{}`", self.file.display());
        if is_package(&self.file) {
            let policy = policy(&self.keys)?;
            let (package, status) =
                VerifiedPackage::inspect(&self.file, &policy).with_context(what)?;
            // Only the host's native artifact can be read with this host's
            // loader; it is written to the cache, never loaded.
            let host = package
                .manifest()
                .artifacts
                .iter()
                .find(|a| a.kind == ArtifactKind::Native && a.target == HOST_TARGET);
            // The host's native artifact, else any native one: written to the
            // cache and read there, never loaded.
            let native = host.or_else(|| {
                package
                    .manifest()
                    .artifacts
                    .iter()
                    .find(|a| a.kind == ArtifactKind::Native)
            });
            let library = match native {
                Some(a) => Some(
                    inspect_library(
                        package
                            .cache_artifact(&a.path, &policy)
                            .with_context(what)?,
                    )
                    .with_context(what)?,
                ),
                None => None,
            };
            match self.message_format {
                MessageFormat::Json => {
                    let doc = json!({
                        "path": self.file,
                        "manifest": package.manifest(),
                        "signature": signature_json(&status),
                        "host_target": HOST_TARGET,
                        "plugins": library.as_ref().map(|l| plugins_json(&l.plugins)),
                    });
                    println!("{}", serde_json::to_string_pretty(&doc)?);
                }
                MessageFormat::Human => {
                    let m = package.manifest();
                    let mut out = format!(
                        "{}: package {} v{} (format {})\n  signature: {status}\n  artifacts:\n",
                        self.file.display(),
                        m.package.name,
                        m.package.version,
                        m.format_version
                    );
                    for a in &m.artifacts {
                        let _ = writeln!(
                            out,
                            "    {} {} {} ({} bytes, sha256 {})",
                            a.kind.as_str(),
                            a.target,
                            a.path,
                            a.size,
                            a.sha256
                        );
                    }
                    match &library {
                        Some(l) => out.push_str(&report_plugins(&l.plugins)),
                        None => {
                            let _ =
                                writeln!(out, "  (no native artifact; plugins from the manifest:)");
                            for p in &m.plugins {
                                let _ = writeln!(
                                    out,
                                    "    {}/{}: {} v{} (hash {})",
                                    p.interface,
                                    p.name,
                                    p.interface,
                                    p.interface_version,
                                    p.interface_hash
                                );
                            }
                        }
                    }
                    print!("{out}");
                }
            }
            return Ok(());
        }
        // Any target: inspecting never loads.
        let library = inspect_library(&self.file).with_context(what)?;
        match self.message_format {
            MessageFormat::Json => {
                let doc = json!({
                    "path": self.file,
                    "target": library.target,
                    "plugins": plugins_json(&library.plugins),
                });
                println!("{}", serde_json::to_string_pretty(&doc)?);
            }
            MessageFormat::Human => {
                print!(
                    "{}: {} plugin(s), {}\n{}",
                    self.file.display(),
                    library.plugins.len(),
                    library.target,
                    report_plugins(&library.plugins)
                );
            }
        }
        Ok(())
    }
}

fn signature_json(status: &SignatureStatus) -> Value {
    match status {
        SignatureStatus::Verified { key_id } => json!({ "status": "verified", "key_id": key_id }),
        SignatureStatus::Unsigned => json!({ "status": "unsigned" }),
        SignatureStatus::UnknownKey { key_id } => {
            json!({ "status": "unknown-key", "key_id": key_id })
        }
        SignatureStatus::Bad { key_id } => json!({ "status": "bad", "key_id": key_id }),
        _ => json!({ "status": "unknown" }),
    }
}

fn plugins_json(plugins: &[PluginInfo]) -> Value {
    plugins
        .iter()
        .map(|p| {
            json!({
                "plugin": p.plugin_name,
                "interface": p.interface_name,
                "interface_version": p.interface_version,
                "interface_hash": format!("{:#018x}", p.interface_hash),
                "abi_version": p.abi_version,
                "wire_version": p.wire_version,
                "fidius_version": p.fidius_version,
                "config_type": p.config_type,
                "host_interface": p.host.as_ref().map(|h| json!({
                    "name": h.name, "version": h.version, "hash": format!("{:#018x}", h.hash),
                })),
                "meta": pairs_json(&p.interface_meta),
                "methods": p.methods.iter().map(|m| json!({
                    "name": m.name,
                    "signature": m.signature,
                    "optional_since": m.since,
                    "implemented": m.implemented,
                    "meta": pairs_json(&m.meta),
                })).collect::<Vec<_>>(),
            })
        })
        .collect()
}

fn pairs_json(pairs: &[(String, String)]) -> Value {
    pairs
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

fn report_plugins(plugins: &[PluginInfo]) -> String {
    let mut out = String::new();
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
