//! `fidius.toml`, the package manifest (spec: `docs/src/fidpkg.md`).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::PackageError;

/// The manifest `format_version` this runtime writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// What kind of plugin an artifact is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ArtifactKind {
    /// A native shared library (cdylib) for one target triple.
    Native,
    /// A WebAssembly component (`wasm32-wasip2`).
    Wasm,
    /// A Python module.
    Python,
}

impl ArtifactKind {
    /// The lowercase name used in the manifest.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Native => "native",
            Self::Wasm => "wasm",
            Self::Python => "python",
        }
    }
}

/// The package manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// Name and version of the package.
    pub package: PackageInfo,
    /// The plugins every artifact contains.
    #[serde(default)]
    pub plugins: Vec<PluginEntry>,
    /// One entry per artifact in the archive.
    #[serde(default)]
    pub artifacts: Vec<Artifact>,
}

/// `[package]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageInfo {
    /// The plugin crate's name.
    pub name: String,
    /// Its semver version.
    pub version: String,
}

/// `[[plugins]]`: one plugin and the interface it implements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginEntry {
    /// Plugin name.
    pub name: String,
    /// Interface (trait) name.
    pub interface: String,
    /// Interface version.
    pub interface_version: u32,
    /// Interface hash, `0x` and 16 hex digits.
    pub interface_hash: String,
}

/// `[[artifacts]]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Artifact {
    /// Native, WASM or Python.
    pub kind: ArtifactKind,
    /// Target triple (`x86_64-unknown-linux-gnu`, `wasm32-wasip2`, …).
    pub target: String,
    /// Path inside the archive, `artifacts/<target>/<file>`.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the bytes, 64 lowercase hex digits.
    pub sha256: String,
    /// For WASM: the capabilities the component requests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
}

impl Manifest {
    /// Parses and checks a manifest (`manifest.toml`'s bytes, of the
    /// package at `path`).
    ///
    /// # Errors
    /// [`PackageError::UnsupportedFormat`] for another `format_version`
    /// (read first, so a newer format is reported as such rather than as
    /// unknown fields); [`PackageError::BadManifest`] for anything else:
    /// not UTF-8, not TOML, a missing or unknown field, an invalid value.
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Self, PackageError> {
        let bad = |detail: String| PackageError::BadManifest {
            path: path.to_owned(),
            detail,
        };
        let text = std::str::from_utf8(bytes).map_err(|_| bad("not UTF-8".into()))?;
        #[derive(serde::Deserialize)]
        struct Version {
            format_version: u32,
        }
        let version: Version = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        if version.format_version != FORMAT_VERSION {
            return Err(PackageError::UnsupportedFormat {
                path: path.to_owned(),
                found: version.format_version,
                supported: FORMAT_VERSION,
            });
        }
        let manifest: Manifest = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        manifest.validate().map_err(bad)?;
        Ok(manifest)
    }

    /// The manifest's TOML text, as signed and stored.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }

    /// Checks the fields a parser cannot: names, the semver version,
    /// artifact paths and digests.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if !is_name(&self.package.name) {
            return Err(format!(
                "`package.name` {:?} must be non-empty ASCII letters, digits, `-`, `_` or `.`",
                self.package.name
            ));
        }
        for p in &self.plugins {
            if !is_name(&p.name) || !is_name(&p.interface) {
                return Err(format!(
                    "plugin {:?} / interface {:?}: names must be ASCII letters, digits, `-`, `_` or `.`",
                    p.name, p.interface
                ));
            }
            let hex = p.interface_hash.strip_prefix("0x").unwrap_or("");
            if hex.len() != 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!(
                    "plugin `{}`: `interface_hash` must be `0x` and 16 hex digits",
                    p.name
                ));
            }
        }
        let mut kinds = std::collections::BTreeSet::new();
        if !is_semver(&self.package.version) {
            return Err(format!(
                "`package.version` `{}` is not a semver version",
                self.package.version
            ));
        }
        let mut paths = std::collections::BTreeSet::new();
        for a in &self.artifacts {
            if !paths.insert(a.path.as_str()) {
                return Err(format!("artifact path `{}` listed twice", a.path));
            }
            if a.path == super::archive::MANIFEST || a.path == super::archive::SIGNATURE {
                return Err(format!("artifact path `{}` is reserved", a.path));
            }
            if a.sha256.len() != 64
                || !a
                    .sha256
                    .bytes()
                    .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            {
                return Err(format!(
                    "artifact `{}`: `sha256` must be 64 lowercase hex digits",
                    a.path
                ));
            }
            if !is_name(&a.target) {
                return Err(format!(
                    "artifact {:?}: `target` {:?} is not a target triple",
                    a.path, a.target
                ));
            }
            let file = a
                .path
                .strip_prefix("artifacts/")
                .and_then(|rest| rest.strip_prefix(a.target.as_str()))
                .and_then(|rest| rest.strip_prefix('/'));
            if !file.is_some_and(is_name) {
                return Err(format!(
                    "artifact path {:?} must be `artifacts/{}/FILE`",
                    a.path, a.target
                ));
            }
            if let Some(bad) = a.capabilities.iter().find(|c| !is_capability(c)) {
                return Err(format!(
                    "artifact {:?}: unknown capability `{bad}` (expected {CAPABILITY_FORMS})",
                    a.path
                ));
            }
            if a.kind != ArtifactKind::Wasm && !a.capabilities.is_empty() {
                return Err(format!(
                    "artifact {:?}: only WASM artifacts request capabilities",
                    a.path
                ));
            }
            if !kinds.insert((a.kind, a.target.as_str())) {
                return Err(format!(
                    "two {} artifacts for `{}`",
                    a.kind.as_str(),
                    a.target
                ));
            }
        }
        Ok(())
    }
}

/// The forms a requested capability may take (see `docs/src/sandbox.md`).
pub const CAPABILITY_FORMS: &str = "`env:NAME`, `dir:/GUEST/PATH` (read-only), \
     `dir-rw:/GUEST/PATH`, `stdout`, `stderr`, `clock` (wall clock), `random` or `http` \
     (outbound HTTP through the host's egress hook)";

/// Whether `name` is a capability a WASM artifact may request.
pub fn is_capability(name: &str) -> bool {
    match name.split_once(':') {
        Some(("env", v)) => !v.is_empty() && !v.contains('='),
        Some(("dir" | "dir-rw", p)) => p.starts_with('/'),
        None => matches!(name, "stdout" | "stderr" | "clock" | "random" | "http"),
        _ => false,
    }
}

/// Names, targets and file names: non-empty, ASCII letters, digits, `-`,
/// `_`, `.`, and not `.` or `..`.
fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

fn is_semver(v: &str) -> bool {
    semver::Version::parse(v).is_ok()
}

#[cfg(test)]
mod tests {
    use super::is_semver;

    #[test]
    fn semver_versions() {
        for ok in ["0.1.0", "1.2.3-beta.1", "10.0.0+build.5"] {
            assert!(is_semver(ok), "{ok}");
        }
        for bad in ["1.2", "01.2.3", "1.2.x", "", "1.2.3 "] {
            assert!(!is_semver(bad), "{bad}");
        }
    }
}
