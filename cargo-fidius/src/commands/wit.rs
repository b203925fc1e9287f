//! `cargo fidius wit`: writes (or checks) each interface's WIT under
//! `wit/<interface>.wit` in its crate.
//!
//! The WIT comes from the interface's own code (`#[plugin_interface]` emits a
//! `__fidius_wit()` that traces the serde types), so this builds and runs a
//! small generator program that depends on the interface crate. The traits
//! are found by reading the crate's sources for `#[plugin_interface]`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};
use cargo_metadata::{MetadataCommand, TargetKind};

use crate::shell;

/// Write the WIT of interface crates (`wit/<interface>.wit`).
#[derive(Debug, clap::Args)]
pub(crate) struct Wit {
    /// Interface package(s) to process (default: every workspace package
    /// with a `#[plugin_interface]` trait).
    #[arg(short = 'p', long = "package", value_name = "SPEC")]
    packages: Vec<String>,
    /// Fail (exit code 1) if a committed WIT file is missing or differs,
    /// instead of writing it.
    #[arg(long)]
    check: bool,
    #[command(flatten)]
    flags: GeneratorFlags,
}

/// The flags of the commands that build a generator over an interface
/// crate (`wit`, `stamp`).
#[derive(Debug, clap::Args)]
pub(crate) struct GeneratorFlags {
    /// Path to Cargo.toml.
    #[arg(long, value_name = "PATH")]
    manifest_path: Option<PathBuf>,
    /// Directory for the generator's build (default: the workspace's target
    /// directory).
    #[arg(long, value_name = "DIRECTORY")]
    target_dir: Option<PathBuf>,
    /// Do not access the network.
    #[arg(long)]
    pub(crate) offline: bool,
    /// No status output.
    #[arg(short, long)]
    quiet: bool,
}

impl GeneratorFlags {
    /// For the workspace of the crate whose manifest is `manifest`.
    pub(crate) fn for_manifest(manifest: PathBuf) -> Self {
        Self {
            manifest_path: Some(manifest),
            target_dir: None,
            offline: false,
            quiet: shell::quiet(),
        }
    }

    /// Builds the generator in `dir` instead of the workspace's target
    /// directory.
    pub(crate) fn target_dir(mut self, dir: PathBuf) -> Self {
        self.target_dir = Some(dir);
        self
    }

    /// Applies `--quiet`; the workspace's `cargo metadata` (without
    /// dependencies) and the generator's target directory.
    pub(crate) fn workspace(&self) -> anyhow::Result<(cargo_metadata::Metadata, PathBuf)> {
        shell::set_quiet(self.quiet);
        let mut metadata = MetadataCommand::new();
        metadata.no_deps();
        if let Some(path) = &self.manifest_path {
            metadata.manifest_path(path);
        }
        if self.offline {
            metadata.other_options(vec!["--offline".to_owned()]);
        }
        let metadata = metadata.exec().context("`cargo metadata` failed")?;
        let target_dir = match &self.target_dir {
            Some(d) => std::path::absolute(d)?,
            None => metadata.target_directory.clone().into_std_path_buf(),
        };
        Ok((metadata, target_dir))
    }
}

/// A `#[plugin_interface]` trait: its path inside the crate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Found {
    pub(crate) path: Vec<String>,
    pub(crate) name: String,
}

impl Found {
    /// `lib::module::Trait`.
    pub(crate) fn rust_path(&self, lib: &str) -> String {
        let mut path = vec![lib.to_owned()];
        path.extend(self.path.iter().cloned());
        path.push(self.name.clone());
        path.join("::")
    }
}

/// What a generator expression gave for one interface.
pub(crate) struct Generated {
    /// The interface crate's directory.
    pub(crate) dir: PathBuf,
    pub(crate) found: Found,
    /// The value, or why the interface has none.
    pub(crate) text: Result<String, String>,
}

/// Builds and runs a generator over the interface crates among `packages`
/// (default: every workspace package with a `#[plugin_interface]` trait),
/// evaluating `expr(rust_path_of_trait)` (a `Result<String, String>`) for
/// each trait.
pub(crate) fn generate_each(
    flags: &GeneratorFlags,
    packages: &[String],
    kind: &str,
    what: &str,
    expr: impl Fn(&str) -> String,
) -> anyhow::Result<Vec<Generated>> {
    let (metadata, target_dir) = flags.workspace()?;
    let lock = metadata.workspace_root.join("Cargo.lock");
    let mut out = Vec::new();
    for package in metadata.workspace_packages() {
        let wanted = packages.is_empty() || packages.iter().any(|p| *p == *package.name);
        if !wanted {
            continue;
        }
        let Some(lib) = package.targets.iter().find(|t| {
            t.kind
                .iter()
                .any(|k| matches!(k, TargetKind::Lib | TargetKind::RLib))
        }) else {
            if !packages.is_empty() {
                bail!("package `{}` has no library target", package.name);
            }
            continue;
        };
        let found = find_interfaces(lib.src_path.as_std_path())?;
        if found.is_empty() {
            if !packages.is_empty() {
                bail!(
                    "package `{}` has no #[plugin_interface] trait (looked in `{}` and its modules)",
                    package.name,
                    lib.src_path
                );
            }
            continue;
        }
        let dir = package
            .manifest_path
            .parent()
            .context("manifest without a directory")?
            .as_std_path();
        let lib_name = lib.name.replace('-', "_");
        let exprs: Vec<String> = found
            .iter()
            .map(|f| expr(&f.rust_path(&lib_name)))
            .collect();
        shell::status("Generating", format!("{what} for {}", package.name));
        let texts = run_generator(
            &Generator {
                target_dir: &target_dir,
                lock: lock.as_std_path(),
                package: &package.name,
                lib: &lib_name,
                dir,
                kind,
                offline: flags.offline,
            },
            &exprs,
        )?;
        for (found, text) in found.into_iter().zip(texts) {
            out.push(Generated {
                dir: dir.to_owned(),
                found,
                text,
            });
        }
    }
    for spec in packages {
        if !metadata
            .workspace_packages()
            .iter()
            .any(|p| *p.name == *spec)
        {
            bail!("package `{spec}` not found in the workspace");
        }
    }
    if out.is_empty() {
        bail!("no #[plugin_interface] traits found in the workspace");
    }
    Ok(out)
}

/// Writes `text` to `file`, or with `check` only compares; returns a
/// description of the difference when checking finds one.
pub(crate) fn write_or_check(
    name: &str,
    file: &Path,
    text: &str,
    check: bool,
) -> anyhow::Result<Option<String>> {
    let current = std::fs::read_to_string(file).ok();
    if current.as_deref() == Some(text) {
        shell::status("Fresh", format!("{name} ({})", file.display()));
        return Ok(None);
    }
    if check {
        return Ok(Some(format!(
            "`{name}` ({}): {}",
            file.display(),
            if current.is_none() {
                "missing"
            } else {
                "differs from the interface"
            }
        )));
    }
    if let Some(parent) = file.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(file, text).with_context(|| format!("failed to write `{}`", file.display()))?;
    shell::status("Wrote", format!("{name} ({})", file.display()));
    Ok(None)
}

impl Wit {
    pub(crate) fn exec(self) -> anyhow::Result<()> {
        let generated = generate_each(&self.flags, &self.packages, "wit-gen", "WIT", |path| {
            format!("<dyn ::{path}>::__fidius_wit().map_err(|e| e.to_string())")
        })?;
        let mut stale = Vec::new();
        for g in generated {
            let text = match g.text {
                Ok(text) => text,
                Err(reason) => {
                    shell::warn(format!(
                        "interface `{}` has no WIT form, so WASM plugins cannot implement it: {reason}",
                        g.found.name
                    ));
                    continue;
                }
            };
            let file = g
                .dir
                .join("wit")
                .join(format!("{}.wit", kebab(&g.found.name)));
            stale.extend(write_or_check(&g.found.name, &file, &text, self.check)?);
        }
        if !stale.is_empty() {
            bail!(
                "the committed WIT is out of date; run `cargo fidius wit` and commit the result:\n  {}",
                stale.join("\n  ")
            );
        }
        Ok(())
    }
}

/// WIT names are kebab-case (`ImageFilter` → `image-filter`).
fn kebab(name: &str) -> String {
    fidius_runtime::wit_name(name)
}

/// A small program depending on an interface crate, built and run to ask
/// the interface's generated code for something (its WIT, a metadata
/// record).
pub(crate) struct Generator<'a> {
    pub(crate) target_dir: &'a Path,
    /// The interface crate's workspace lock file (copied, so the versions
    /// match).
    pub(crate) lock: &'a Path,
    pub(crate) package: &'a str,
    /// The package's library name.
    pub(crate) lib: &'a str,
    /// The package's directory.
    pub(crate) dir: &'a Path,
    /// Names the generator's directory under `<target>/fidius/`.
    pub(crate) kind: &'a str,
    pub(crate) offline: bool,
}

/// Builds and runs a generator that evaluates `exprs` (Rust expressions of
/// type `Result<String, String>`, with the interface crate in scope as
/// `::<lib>`); returns their values in order.
pub(crate) fn run_generator(
    g: &Generator<'_>,
    exprs: &[String],
) -> anyhow::Result<Vec<Result<String, String>>> {
    let package = g.package;
    let gen_dir = g.target_dir.join("fidius").join(g.kind).join(package);
    std::fs::create_dir_all(gen_dir.join("src"))?;
    let manifest = format!(
        "[package]\nname = \"fidius-{}\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
         [dependencies]\n{} = {{ package = \"{package}\", path = {dir:?} }}\n\n[workspace]\n",
        g.kind,
        g.lib,
        dir = g.dir.display().to_string()
    );
    std::fs::write(gen_dir.join("Cargo.toml"), manifest)?;
    if g.lock.is_file() && !gen_dir.join("Cargo.lock").exists() {
        // Same versions as the workspace, and no network when it has them.
        std::fs::copy(g.lock, gen_dir.join("Cargo.lock"))?;
    }
    let calls: Vec<String> = exprs.iter().map(|e| format!("        {e},\n")).collect();
    let main = format!(
        "//! Generated by `cargo fidius`.\nfn main() {{\n    let values: Vec<Result<String, String>> = vec![\n{}    ];\n    \
         for value in values {{\n        match value {{\n            Ok(text) => print!(\"\\u{{1e}}ok\\n{{text}}\"),\n            \
         Err(e) => print!(\"\\u{{1e}}err\\n{{e}}\"),\n        }}\n    }}\n}}\n",
        calls.concat()
    );
    std::fs::write(gen_dir.join("src/main.rs"), main)?;
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.arg("run")
        .arg("--quiet")
        .arg("--manifest-path")
        .arg(gen_dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(g.target_dir);
    if g.offline {
        cmd.arg("--offline");
    }
    let out = cmd
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("failed to run cargo")?;
    if !out.status.success() {
        bail!(
            "the generator for `{package}` failed (see above); the #[plugin_interface] traits must be public"
        );
    }
    let text = String::from_utf8(out.stdout).context("the generator printed non-UTF-8")?;
    let texts: Vec<String> = text.split('\u{1e}').skip(1).map(str::to_owned).collect();
    if texts.len() != exprs.len() {
        bail!(
            "the generator for `{package}` printed {} values for {} interfaces",
            texts.len(),
            exprs.len()
        );
    }
    texts
        .into_iter()
        .map(|t| match t.split_once('\n') {
            Some(("ok", text)) => Ok(Ok(text.to_owned())),
            Some(("err", message)) => Ok(Err(message.to_owned())),
            _ => bail!("the generator for `{package}` printed something unexpected"),
        })
        .collect()
}

/// The `#[plugin_interface]` traits of the crate whose root is `root`,
/// following `mod` declarations into their files.
pub(crate) fn find_interfaces(root: &Path) -> anyhow::Result<Vec<Found>> {
    let mut found = Vec::new();
    let dir = root.parent().unwrap_or(Path::new("."));
    scan_file(root, dir, &mut Vec::new(), &mut found)?;
    Ok(found)
}

fn scan_file(
    file: &Path,
    child_dir: &Path,
    path: &mut Vec<String>,
    found: &mut Vec<Found>,
) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("failed to read `{}`", file.display()))?;
    let ast =
        syn::parse_file(&text).with_context(|| format!("failed to parse `{}`", file.display()))?;
    scan_items(&ast.items, child_dir, path, found)
}

fn scan_items(
    items: &[syn::Item],
    dir: &Path,
    path: &mut Vec<String>,
    found: &mut Vec<Found>,
) -> anyhow::Result<()> {
    for item in items {
        match item {
            syn::Item::Trait(t)
                if t.attrs.iter().any(|a| {
                    a.path()
                        .segments
                        .last()
                        .is_some_and(|s| s.ident == "plugin_interface")
                }) =>
            {
                found.push(Found {
                    path: path.clone(),
                    name: t.ident.to_string(),
                });
            }
            syn::Item::Mod(m) => {
                if m.attrs.iter().any(|a| a.path().is_ident("cfg")) {
                    // `#[cfg(test)]` modules and the like are not part of
                    // the public interface.
                    continue;
                }
                let name = m.ident.to_string();
                path.push(name.clone());
                let explicit = m.attrs.iter().find_map(|a| match &a.meta {
                    syn::Meta::NameValue(nv) if nv.path.is_ident("path") => match &nv.value {
                        syn::Expr::Lit(syn::ExprLit {
                            lit: syn::Lit::Str(s),
                            ..
                        }) => Some(s.value()),
                        _ => None,
                    },
                    _ => None,
                });
                match (&m.content, explicit) {
                    (Some((_, items)), _) => scan_items(items, &dir.join(&name), path, found)?,
                    (None, Some(p)) => {
                        let file = dir.join(p);
                        let child = file.parent().unwrap_or(dir).join(&name);
                        scan_file(&file, &child, path, found)?;
                    }
                    (None, None) => {
                        let flat = dir.join(format!("{name}.rs"));
                        let nested = dir.join(&name).join("mod.rs");
                        let file = if flat.is_file() { flat } else { nested };
                        scan_file(&file, &dir.join(&name), path, found)?;
                    }
                }
                path.pop();
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_traits_in_inline_and_file_modules() {
        let dir = std::env::temp_dir().join(format!("fidius-wit-scan-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("nested")).unwrap();
        std::fs::write(
            dir.join("lib.rs"),
            "#[fidius::plugin_interface(version = 1)] pub trait A: Send + Sync {}\n\
             pub mod inner { #[plugin_interface(version = 2)] pub trait B: Send + Sync {} }\n\
             pub mod nested;\n#[cfg(test)] mod tests;\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("nested.rs"),
            "#[fidius::plugin_interface] pub trait C {}\npub trait NotOne {}\n",
        )
        .unwrap();
        let found = find_interfaces(&dir.join("lib.rs")).unwrap();
        let names: Vec<(Vec<String>, String)> =
            found.into_iter().map(|f| (f.path, f.name)).collect();
        assert_eq!(
            names,
            vec![
                (vec![], "A".to_owned()),
                (vec!["inner".to_owned()], "B".to_owned()),
                (vec!["nested".to_owned()], "C".to_owned()),
            ]
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
