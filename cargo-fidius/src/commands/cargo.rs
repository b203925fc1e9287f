//! Cargo-style flags → a plan: which plugin packages, which targets, which
//! profile and target dir, from `cargo metadata`; then `cargo build` per
//! target with `--message-format=json-render-diagnostics`, collecting each
//! plugin's artifacts into `<target-dir>/fidius/<package>/<target>/`.

use std::ffi::OsString;
use std::io::BufReader;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};
use cargo_metadata::{Message, MetadataCommand, PackageId, TargetKind, camino::Utf8PathBuf};

use super::CargoFailed;
use crate::shell;

/// `--message-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum MessageFormat {
    /// Status lines for people on stderr.
    Human,
    /// One JSON object per line on stdout.
    Json,
}

/// The cargo flags `build` and `package` share, forwarded to `cargo
/// metadata` and `cargo build`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct CargoArgs {
    /// Build for TRIPLE (repeatable). Default: the host, plus the targets
    /// the package's `[package.metadata.fidius] targets` lists.
    #[arg(long = "target", value_name = "TRIPLE")]
    pub(crate) targets: Vec<String>,
    /// Build with the release profile.
    #[arg(long, conflicts_with = "profile")]
    pub(crate) release: bool,
    /// Build with the given profile.
    #[arg(long, value_name = "NAME")]
    pub(crate) profile: Option<String>,
    /// Plugin package(s) to build (default: every plugin package in the
    /// workspace).
    #[arg(short = 'p', long = "package", value_name = "SPEC")]
    pub(crate) packages: Vec<String>,
    /// Every plugin package in the workspace (the default when no `-p` is
    /// given).
    #[arg(long)]
    pub(crate) workspace: bool,
    /// Path to Cargo.toml.
    #[arg(long, value_name = "PATH")]
    pub(crate) manifest_path: Option<PathBuf>,
    /// Directory for all generated artifacts.
    #[arg(long, value_name = "DIRECTORY")]
    pub(crate) target_dir: Option<PathBuf>,
    /// Assert that `Cargo.lock` will remain unchanged.
    #[arg(long)]
    pub(crate) locked: bool,
    /// Run without accessing the network.
    #[arg(long)]
    pub(crate) offline: bool,
    /// Do not print cargo log messages or fidius status lines.
    #[arg(short, long)]
    pub(crate) quiet: bool,
    /// Use verbose output (-vv very verbose).
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
    /// Output format: `human` status lines on stderr, or one JSON object per
    /// line on stdout.
    #[arg(long, value_enum, default_value = "human", value_name = "FMT")]
    pub(crate) message_format: MessageFormat,
}

/// A plugin package: one with a `[package.metadata.fidius]` table.
#[derive(Debug, Clone)]
pub(crate) struct PluginPackage {
    /// `wit/` directories of the interfaces it may implement.
    pub(crate) wit_dirs: Vec<PathBuf>,
    /// `[package.metadata.fidius] capabilities`: what its WASM component
    /// requests from the sandbox.
    pub(crate) capabilities: Vec<String>,
    pub(crate) id: PackageId,
    pub(crate) name: String,
    pub(crate) version: String,
    /// Extra targets from `[package.metadata.fidius] targets`.
    pub(crate) extra_targets: Vec<String>,
}

/// One built artifact, copied under `<target-dir>/fidius/`.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Built {
    pub(crate) package: String,
    pub(crate) version: String,
    pub(crate) target: String,
    pub(crate) kind: &'static str,
    pub(crate) path: PathBuf,
}

/// What to build.
#[derive(Debug)]
pub(crate) struct Plan {
    cargo: OsString,
    pub(crate) target_dir: Utf8PathBuf,
    pub(crate) host: String,
    pub(crate) plugins: Vec<PluginPackage>,
    args: CargoArgs,
    /// The host build, started before `cargo metadata` when `-p` names the
    /// packages (so the two overlap).
    early: std::cell::RefCell<Option<RunningBuild>>,
}

/// A `cargo build` whose JSON messages are read on a thread.
#[derive(Debug)]
struct RunningBuild {
    child: Option<std::process::Child>,
    reader: Option<std::thread::JoinHandle<anyhow::Result<Vec<cargo_metadata::Artifact>>>>,
}

impl RunningBuild {
    fn start(mut cmd: Command) -> anyhow::Result<Self> {
        cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child = cmd.spawn().context("failed to run `cargo build`")?;
        let stdout = child.stdout.take().context("no stdout from cargo")?;
        let reader = std::thread::spawn(move || {
            let mut artifacts = Vec::new();
            for message in Message::parse_stream(BufReader::new(stdout)) {
                if let Message::CompilerArtifact(artifact) =
                    message.context("failed to read cargo's output")?
                    && artifact.target.kind.contains(&TargetKind::CDyLib)
                {
                    artifacts.push(artifact);
                }
            }
            Ok(artifacts)
        });
        Ok(Self {
            child: Some(child),
            reader: Some(reader),
        })
    }

    /// Waits for the build; cargo's exit code on failure.
    fn finish(mut self) -> anyhow::Result<Vec<cargo_metadata::Artifact>> {
        let status = self
            .child
            .take()
            .context("build already finished")?
            .wait()
            .context("failed to wait for `cargo build`")?;
        let artifacts = self
            .reader
            .take()
            .context("build already finished")?
            .join()
            .map_err(|_| anyhow::anyhow!("reading cargo's output panicked"))??;
        if !status.success() {
            return Err(CargoFailed(status.code().unwrap_or(101).clamp(1, 255) as u8).into());
        }
        Ok(artifacts)
    }
}

impl Drop for RunningBuild {
    fn drop(&mut self) {
        // An early build that is no longer wanted (the plan failed).
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// Starts `rustc -vV`, whose `host:` line is the toolchain's host triple
/// (the target a build without `--target` produces); read it with
/// [`host_triple`]. It runs while `cargo metadata` does.
fn start_rustc_version() -> anyhow::Result<std::process::Child> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    Command::new(&rustc)
        .arg("-vV")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("failed to run `rustc -vV`")
}

fn host_triple(child: std::process::Child) -> anyhow::Result<String> {
    let out = child
        .wait_with_output()
        .context("failed to run `rustc -vV`")?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .context("`rustc -vV` printed no host triple")
}

/// Checks that the standard library for `target` is installed.
fn check_target_installed(target: &str) -> anyhow::Result<()> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .context("failed to run `rustc --print sysroot`")?;
    let sysroot = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if !sysroot
        .join("lib/rustlib")
        .join(target)
        .join("lib")
        .is_dir()
    {
        bail!(
            "the `{target}` target is not installed for this toolchain; run `rustup target add {target}`"
        );
    }
    Ok(())
}

impl CargoArgs {
    /// `cargo build --lib` for package `specs`, for `target` (`None`: the
    /// host, without `--target`, so it shares cargo's cache with a plain
    /// `cargo build`).
    fn build_command(
        &self,
        cargo: &OsString,
        specs: impl IntoIterator<Item = String>,
        target: Option<&str>,
        target_dir: Option<&std::path::Path>,
    ) -> Command {
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--lib", "--message-format=json-render-diagnostics"]);
        for spec in specs {
            cmd.arg("-p").arg(spec);
        }
        if let Some(target) = target {
            cmd.arg("--target").arg(target);
        }
        if self.release {
            cmd.arg("--release");
        }
        if let Some(profile) = &self.profile {
            cmd.arg("--profile").arg(profile);
        }
        if let Some(dir) = target_dir {
            cmd.arg("--target-dir").arg(dir);
        }
        self.common(&mut cmd);
        if self.quiet {
            cmd.arg("--quiet");
        }
        for _ in 0..self.verbose {
            cmd.arg("-v");
        }
        cmd
    }

    fn common(&self, cmd: &mut Command) {
        if let Some(path) = &self.manifest_path {
            cmd.arg("--manifest-path").arg(path);
        }
        cmd.args(self.lock_flags());
    }

    /// `--locked` / `--offline`, for both `cargo metadata` and `cargo build`.
    fn lock_flags(&self) -> Vec<String> {
        [(self.locked, "--locked"), (self.offline, "--offline")]
            .into_iter()
            .filter(|&(on, _)| on)
            .map(|(_, flag)| flag.to_owned())
            .collect()
    }

    /// Builds a guest project in another language: the cargo flags that
    /// apply are `--target-dir`, `--offline`, `--quiet` and
    /// `--message-format`; `--target` other than `wasm32-wasip2`, `-p` and
    /// `--workspace` are refused, the profile flags warned about.
    pub(crate) fn build_guest(&self, guest: &super::guest::Guest) -> anyhow::Result<Built> {
        shell::set_quiet(self.quiet || self.message_format == MessageFormat::Json);
        if let Some(target) = self.targets.iter().find(|t| *t != super::guest::TARGET) {
            bail!(
                "`{}` is a {} plugin, built for `{}` only (not `{target}`)",
                guest.package,
                guest.lang.name(),
                super::guest::TARGET
            );
        }
        if self.release || self.profile.is_some() || self.locked {
            shell::warn(format!(
                "`--release`, `--profile` and `--locked` have no effect on `{}`, a {} plugin project",
                guest.package,
                guest.lang.name()
            ));
        }
        if !self.packages.is_empty() || self.workspace {
            bail!(
                "`-p`/`--workspace` select crates of a cargo workspace; `{}` is a {} plugin project",
                guest.package,
                guest.lang.name()
            );
        }
        let built = guest.build(self.target_dir.as_deref(), self.offline)?;
        if self.message_format == MessageFormat::Json {
            let mut line = serde_json::to_value(&built)?;
            line["reason"] = "fidius-artifact".into();
            println!("{line}");
        }
        Ok(built)
    }

    /// Resolves the flags with `cargo metadata`.
    pub(crate) fn plan(&self) -> anyhow::Result<Plan> {
        shell::set_quiet(self.quiet);
        let rustc = start_rustc_version()?;
        // With `-p` and no `--target`, the host build's command is known
        // already: run it while `cargo metadata` runs.
        let early = if !self.packages.is_empty() && self.targets.is_empty() {
            let cmd = self.build_command(
                &cargo(),
                self.packages.iter().cloned(),
                None,
                self.target_dir.as_deref(),
            );
            Some(RunningBuild::start(cmd)?)
        } else {
            None
        };
        let mut metadata = MetadataCommand::new();
        metadata.cargo_path(cargo()).no_deps();
        if let Some(path) = &self.manifest_path {
            metadata.manifest_path(path);
        }
        metadata.other_options(self.lock_flags());
        let metadata = metadata.exec().context("`cargo metadata` failed")?;
        let target_dir = match &self.target_dir {
            Some(dir) => Utf8PathBuf::from_path_buf(std::path::absolute(dir)?)
                .map_err(|p| anyhow::anyhow!("target dir `{}` is not UTF-8", p.display()))?,
            None => metadata.target_directory.clone(),
        };
        let mut plugins = Vec::new();
        // `-p NAME` or `-p NAME@VERSION`.
        let wanted = |name: &str, version: &str| {
            self.packages.iter().any(|spec| match spec.split_once('@') {
                Some((n, v)) => n == name && v == version,
                None => spec == name,
            })
        };
        for package in metadata.workspace_packages() {
            let version = package.version.to_string();
            let Some(fidius) = package.metadata.get("fidius") else {
                if wanted(&package.name, &version) {
                    bail!(
                        "package `{}` is not a fidius plugin: add a `[package.metadata.fidius]` table to its Cargo.toml",
                        package.name
                    );
                }
                continue;
            };
            if !self.packages.is_empty() && !wanted(&package.name, &version) {
                continue;
            }
            let extra_targets =
                string_list(fidius, "targets", "target triples", &package.manifest_path)?;
            if !package
                .targets
                .iter()
                .any(|t| t.kind.contains(&TargetKind::CDyLib))
            {
                bail!(
                    "plugin package `{}` has no cdylib target: set `crate-type = [\"cdylib\"]` under `[lib]`",
                    package.name
                );
            }
            let capabilities =
                string_list(fidius, "capabilities", "strings", &package.manifest_path)?;
            if let Some(bad) = capabilities
                .iter()
                .find(|c| !fidius_runtime::package::is_capability(c))
            {
                bail!(
                    "`{}`: unknown capability `{bad}` in `[package.metadata.fidius] capabilities` (expected {})",
                    package.manifest_path,
                    fidius_runtime::package::CAPABILITY_FORMS
                );
            }
            // The interfaces' WIT, for WASM builds: `wit/` next to the
            // plugin's path dependencies and the workspace's packages.
            let wit_dirs = package
                .dependencies
                .iter()
                .filter_map(|d| d.path.as_ref().map(|p| p.join("wit")))
                .chain(
                    metadata
                        .workspace_packages()
                        .iter()
                        .filter_map(|p| p.manifest_path.parent().map(|d| d.join("wit"))),
                )
                .filter(|d| d.is_dir())
                .map(|d| d.into_std_path_buf())
                .collect();
            plugins.push(PluginPackage {
                wit_dirs,
                capabilities,
                id: package.id.clone(),
                name: package.name.to_string(),
                version: package.version.to_string(),
                extra_targets,
            });
        }
        for spec in &self.packages {
            let name = spec.split_once('@').map_or(spec.as_str(), |(n, _)| n);
            if !plugins.iter().any(|p| p.name == name) {
                bail!("package `{spec}` not found in the workspace");
            }
        }
        if plugins.is_empty() {
            bail!(
                "no fidius plugin packages in `{}`: mark a plugin crate with a `[package.metadata.fidius]` table",
                metadata.workspace_root
            );
        }
        Ok(Plan {
            cargo: cargo(),
            target_dir,
            host: host_triple(rustc)?,
            plugins,
            args: self.clone(),
            early: std::cell::RefCell::new(early),
        })
    }
}

impl Plan {
    /// The targets to build, each with the plugins built for it.
    fn targets(&self) -> Vec<(String, Vec<&PluginPackage>)> {
        let mut out: Vec<(String, Vec<&PluginPackage>)> = Vec::new();
        let mut add = |target: &str, plugin| match out.iter_mut().find(|(t, _)| t == target) {
            Some((_, list)) => list.push(plugin),
            None => out.push((target.to_owned(), vec![plugin])),
        };
        for plugin in &self.plugins {
            if self.args.targets.is_empty() {
                add(&self.host, plugin);
                for t in &plugin.extra_targets {
                    add(t, plugin);
                }
            } else {
                for t in &self.args.targets {
                    add(t, plugin);
                }
            }
        }
        out
    }

    /// Builds everything and collects the artifacts.
    pub(crate) fn build(&self) -> anyhow::Result<Vec<Built>> {
        let mut built = Vec::new();
        let targets = self.targets();
        // Every target is checked before anything is built.
        for (target, _) in &targets {
            if *target != self.host {
                check_target_installed(target)?;
            }
        }
        for (target, plugins) in targets {
            let host = target == self.host;
            let early = if host {
                self.early.borrow_mut().take()
            } else {
                None
            };
            let running = match early {
                Some(running) => running,
                None => {
                    let mut cmd = self.args.build_command(
                        &self.cargo,
                        plugins.iter().map(|p| format!("{}@{}", p.name, p.version)),
                        (!host).then_some(target.as_str()),
                        Some(self.target_dir.as_std_path()),
                    );
                    if target.starts_with("wasm32") {
                        // `#[plugin_impl]` reads the interfaces' WIT from here.
                        let dirs = plugins.iter().flat_map(|p| p.wit_dirs.iter());
                        cmd.env("FIDIUS_WIT_PATH", std::env::join_paths(dirs)?);
                    }
                    RunningBuild::start(cmd)?
                }
            };
            let mut found = Vec::new();
            for artifact in running.finish()? {
                let Some(plugin) = plugins.iter().find(|p| p.id == artifact.package_id) else {
                    continue;
                };
                for file in artifact.filenames {
                    let ext = file.extension().unwrap_or("");
                    if matches!(ext, "so" | "dylib" | "dll" | "wasm") {
                        found.push((*plugin, file));
                    }
                }
            }
            for (plugin, file) in found {
                let dir = self
                    .target_dir
                    .join("fidius")
                    .join(&plugin.name)
                    .join(&target);
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("failed to create `{dir}`"))?;
                let name = file.file_name().unwrap_or("artifact");
                let dest = dir.join(name);
                std::fs::copy(&file, &dest)
                    .with_context(|| format!("failed to copy `{file}` to `{dest}`"))?;
                let kind = if file.extension() == Some("wasm") {
                    "wasm"
                } else {
                    "native"
                };
                let item = Built {
                    package: plugin.name.clone(),
                    version: plugin.version.clone(),
                    target: target.clone(),
                    kind,
                    path: dest.into_std_path_buf(),
                };
                match self.args.message_format {
                    MessageFormat::Json => {
                        let mut line = serde_json::to_value(&item)?;
                        line["reason"] = "fidius-artifact".into();
                        println!("{line}");
                    }
                    MessageFormat::Human => shell::status(
                        "Collected",
                        format!(
                            "{} v{} for {} ({})",
                            item.package,
                            item.version,
                            item.target,
                            item.path.display()
                        ),
                    ),
                }
                built.push(item);
            }
        }
        for plugin in &self.plugins {
            if !built.iter().any(|b| b.package == plugin.name) {
                bail!("cargo built no cdylib for plugin package `{}`", plugin.name);
            }
        }
        Ok(built)
    }
}

/// `[package.metadata.fidius] <key>`: absent, or a list of strings.
fn string_list(
    table: &serde_json::Value,
    key: &str,
    what: &str,
    manifest: &cargo_metadata::camino::Utf8Path,
) -> anyhow::Result<Vec<String>> {
    match table.get(key) {
        None => Ok(Vec::new()),
        Some(list) => list
            .as_array()
            .and_then(|a| a.iter().map(|t| t.as_str().map(str::to_owned)).collect())
            .with_context(|| {
                format!("`{manifest}`: `[package.metadata.fidius] {key}` must be a list of {what}")
            }),
    }
}
