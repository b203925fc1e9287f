//! `cargo fidius new interface|plugin|host NAME`: crates that build, and
//! whose generated tests pass, right away.
//!
//! Scaffolds depend on fidius by path (`--fidius-path`, default: the
//! source tree this binary was built from) or by git (`--fidius-git`),
//! never by a registry version: crates named `fidius*` on crates.io belong
//! to another project.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use quote::{format_ident, quote};

use crate::shell;

/// Create a new interface, plugin or host crate.
#[derive(Debug, clap::Args)]
pub(crate) struct New {
    #[command(subcommand)]
    kind: Kind,
    #[command(flatten)]
    source: Source,
}

#[derive(Debug, clap::Subcommand)]
enum Kind {
    /// An interface crate: the trait, marked `#[plugin_interface]`.
    Interface {
        /// Crate name (also the directory).
        name: String,
        /// The trait's name (default: from the crate name).
        #[arg(long = "trait", value_name = "TRAIT")]
        trait_name: Option<String>,
    },
    /// A plugin implementing an interface crate's trait: a crate (cdylib);
    /// with `--lang python` a Python module with the interface's typed
    /// stubs and a pytest test; with `--lang js|c|python-wasm|go` a
    /// WebAssembly guest project (`fidius.toml`, the skeleton, a README and
    /// a host-side test) that `cargo fidius build` builds.
    Plugin {
        /// Crate (or directory) name.
        name: String,
        /// Path to the interface crate.
        #[arg(long, value_name = "PATH")]
        interface: PathBuf,
        /// The plugin's language.
        #[arg(long, value_enum, default_value_t = Lang::Rust)]
        lang: Lang,
        /// The interface crate's `#[plugin_interface]` trait to implement
        /// (default: its first).
        #[arg(long = "trait", value_name = "TRAIT")]
        trait_name: Option<String>,
    },
    /// A host binary that loads plugins of an interface.
    Host {
        /// Crate name (also the directory).
        name: String,
        /// Path to the interface crate.
        #[arg(long, value_name = "PATH")]
        interface: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Lang {
    /// A Rust crate (cdylib, and a component with `--target wasm32-wasip2`).
    Rust,
    /// A Python module the embedded CPython loads (`PythonLibrary`).
    Python,
    /// A JavaScript WebAssembly component (componentize-js).
    Js,
    /// A C WebAssembly component (clang, wasi-libc).
    C,
    /// A Python WebAssembly component (componentize-py).
    PythonWasm,
    /// A Go WebAssembly component (Go's wasip1 port).
    Go,
}

impl Lang {
    /// The guest language of a WebAssembly-only plugin project.
    fn guest(self) -> Option<super::guest::Lang> {
        use super::guest::Lang as G;
        match self {
            Lang::Rust | Lang::Python => None,
            Lang::Js => Some(G::Js),
            Lang::C => Some(G::C),
            Lang::PythonWasm => Some(G::PythonWasm),
            Lang::Go => Some(G::Go),
        }
    }
}

#[derive(Debug, clap::Args)]
struct Source {
    /// The fidius source tree to depend on by path.
    #[arg(
        long,
        value_name = "PATH",
        global = true,
        conflicts_with = "fidius_git"
    )]
    fidius_path: Option<PathBuf>,
    /// A git URL of fidius to depend on instead (with `--fidius-rev`).
    #[arg(long, value_name = "URL", global = true)]
    fidius_git: Option<String>,
    /// The git revision with `--fidius-git`.
    #[arg(long, value_name = "REV", global = true, requires = "fidius_git")]
    fidius_rev: Option<String>,
}

impl Source {
    /// The `fidius = { … }` dependency, with `features`.
    fn dependency(&self, features: &[&str]) -> anyhow::Result<String> {
        let features = if features.is_empty() {
            String::new()
        } else {
            format!(
                ", features = [{}]",
                features
                    .iter()
                    .map(|f| format!("\"{f}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        if let Some(url) = &self.fidius_git {
            let rev = self
                .fidius_rev
                .as_ref()
                .map(|r| format!(", rev = \"{r}\""))
                .unwrap_or_default();
            return Ok(format!("fidius = {{ git = \"{url}\"{rev}{features} }}"));
        }
        let root = match &self.fidius_path {
            Some(p) => p.clone(),
            None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."),
        };
        let root = std::fs::canonicalize(&root)
            .with_context(|| format!("fidius source tree `{}` not found", root.display()))?;
        let facade = root.join("fidius");
        if !facade.join("Cargo.toml").is_file() {
            bail!(
                "`{}` is not a fidius source tree (no `fidius/Cargo.toml`); pass `--fidius-path` or `--fidius-git`",
                root.display()
            );
        }
        Ok(format!(
            "fidius = {{ path = {}{features} }}",
            toml_string(&facade.display().to_string())
        ))
    }
}

fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Checks a crate name the way `cargo new` does.
fn validate_name(name: &str) -> anyhow::Result<()> {
    let Some(first) = name.chars().next() else {
        bail!("the crate name cannot be empty");
    };
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        bail!("invalid character `{bad}` in crate name `{name}`: use letters, digits, `-` and `_`");
    }
    if first.is_ascii_digit() {
        bail!("the crate name `{name}` cannot start with a digit");
    }
    let ident = name.replace('-', "_");
    if syn::parse_str::<syn::Ident>(&ident).is_err()
        || ["test", "core", "std", "alloc", "proc_macro"].contains(&ident.as_str())
    {
        bail!("`{name}` cannot be used as a crate name: it is a Rust keyword or a built-in crate");
    }
    if ident == "fidius" || ident.starts_with("fidius_") {
        bail!("`{name}` would clash with the fidius crates; choose another name");
    }
    Ok(())
}

/// `my-image-filter` → `MyImageFilter` (a trailing `-api`/`-interface` is
/// dropped).
fn trait_name(crate_name: &str) -> String {
    let mut words: Vec<&str> = crate_name
        .split(['-', '_'])
        .filter(|w| !w.is_empty())
        .collect();
    if words.len() > 1 && matches!(words.last(), Some(&"api" | &"interface")) {
        words.pop();
    }
    words
        .iter()
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// Writes `files` under a new directory `dir`, refusing to overwrite.
fn create(dir: &Path, files: &[(String, String)]) -> anyhow::Result<()> {
    if dir.exists() {
        bail!(
            "destination `{}` already exists; not overwriting it",
            dir.display()
        );
    }
    for (path, text) in files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("failed to create `{}`", parent.display()))?;
        }
        super::keygen::write_new(&path, text.as_bytes(), 0o644)?;
    }
    Ok(())
}

fn manifest(name: &str, lib: Option<&str>, extra_deps: &[String], metadata: bool) -> String {
    let mut out = format!(
        "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\npublish = false\n"
    );
    if metadata {
        out.push_str(
            "\n# Marks this crate as a fidius plugin for `cargo fidius build` and `package`.\n\
             # `targets = [\"wasm32-wasip2\"]` adds targets beyond the host.\n\
             [package.metadata.fidius]\n",
        );
    }
    if let Some(crate_type) = lib {
        out.push_str(&format!("\n[lib]\ncrate-type = {crate_type}\n"));
    }
    out.push_str("\n[dependencies]\n");
    for dep in extra_deps {
        out.push_str(dep);
        out.push('\n');
    }
    // Its own workspace, so it builds wherever it is created.
    out.push_str("\n[workspace]\n");
    out
}

/// The interface crate at `path`: its package name and its
/// `#[plugin_interface]` trait.
fn read_interface(path: &Path, wanted: Option<&str>) -> anyhow::Result<(String, syn::ItemTrait)> {
    let manifest = path.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .with_context(|| format!("failed to read `{}`", manifest.display()))?;
    let name = text
        .lines()
        .skip_while(|l| l.trim() != "[package]")
        .find_map(|l| {
            let (key, value) = l.split_once('=')?;
            (key.trim() == "name").then(|| value.trim().trim_matches('"').to_owned())
        })
        .with_context(|| format!("`{}` has no `[package] name`", manifest.display()))?;
    let lib = path.join("src/lib.rs");
    let source = std::fs::read_to_string(&lib)
        .with_context(|| format!("failed to read `{}`", lib.display()))?;
    let file =
        syn::parse_file(&source).with_context(|| format!("failed to parse `{}`", lib.display()))?;
    let item = file
        .items
        .into_iter()
        .find_map(|i| match i {
            syn::Item::Trait(t)
                if t.attrs.iter().any(|a| {
                    a.path()
                        .segments
                        .last()
                        .is_some_and(|s| s.ident == "plugin_interface")
                }) && wanted.is_none_or(|w| t.ident == w) =>
            {
                Some(t)
            }
            _ => None,
        })
        .with_context(|| match wanted {
            Some(w) => format!(
                "no `#[plugin_interface]` trait `{w}` in `{}`",
                lib.display()
            ),
            None => format!("no `#[plugin_interface]` trait in `{}`", lib.display()),
        })?;
    Ok((name, item))
}

fn interface_dep(name: &str, path: &Path) -> anyhow::Result<String> {
    let path = std::fs::canonicalize(path)
        .with_context(|| format!("interface crate `{}` not found", path.display()))?;
    Ok(format!(
        "{name} = {{ path = {} }}",
        toml_string(&path.display().to_string())
    ))
}

impl New {
    pub(crate) fn exec(self) -> anyhow::Result<()> {
        let (name, kind, files) = match &self.kind {
            Kind::Interface {
                name,
                trait_name: t,
            } => {
                validate_name(name)?;
                let t = t.clone().unwrap_or_else(|| trait_name(name));
                syn::parse_str::<syn::Ident>(&t)
                    .map_err(|_| anyhow::anyhow!("`{t}` is not a valid trait name"))?;
                let deps = [
                    self.source.dependency(&[])?,
                    "serde = { version = \"1\", features = [\"derive\"] }".to_owned(),
                ];
                let files = vec![
                    ("Cargo.toml".into(), manifest(name, None, &deps, false)),
                    ("src/lib.rs".into(), interface_source(&t)),
                ];
                (name, "interface", files)
            }
            Kind::Plugin {
                name,
                interface,
                lang,
                trait_name: wanted,
            } if lang.guest().is_some() => {
                validate_name(name)?;
                let guest = lang.guest().context("a guest language")?;
                let (api, item) = read_interface(interface, wanted.as_deref())?;
                let trait_name = item.ident.to_string();
                let plugin = self::trait_name(name);
                let files = super::guest::new_project(
                    name,
                    guest,
                    interface,
                    &api,
                    &trait_name,
                    &plugin,
                    &self.source.dependency(&["wasm"])?,
                )?;
                let kind = match guest {
                    super::guest::Lang::Js => "JavaScript plugin",
                    super::guest::Lang::C => "C plugin",
                    super::guest::Lang::PythonWasm => "Python (WebAssembly) plugin",
                    super::guest::Lang::Go => "Go plugin",
                };
                (name, kind, files)
            }
            Kind::Plugin {
                name,
                interface,
                lang: Lang::Python,
                trait_name: wanted,
            } => {
                validate_name(name)?;
                (
                    name,
                    "Python plugin",
                    python_plugin(name, interface, wanted.as_deref())?,
                )
            }
            Kind::Plugin {
                name,
                interface,
                trait_name: wanted,
                ..
            } => {
                validate_name(name)?;
                let (api, item) = read_interface(interface, wanted.as_deref())?;
                let deps = [
                    self.source.dependency(&[])?,
                    interface_dep(&api, interface)?,
                ];
                let files = vec![
                    (
                        "Cargo.toml".into(),
                        manifest(name, Some("[\"cdylib\"]"), &deps, true),
                    ),
                    ("src/lib.rs".into(), plugin_source(&api, &item)),
                ];
                (name, "plugin", files)
            }
            Kind::Host { name, interface } => {
                validate_name(name)?;
                let (api, item) = read_interface(interface, None)?;
                let deps = [
                    self.source.dependency(&["native", "package"])?,
                    interface_dep(&api, interface)?,
                ];
                let files = vec![
                    ("Cargo.toml".into(), manifest(name, None, &deps, false)),
                    ("src/main.rs".into(), host_source(&api, &item.ident)),
                ];
                (name, "host", files)
            }
        };
        create(Path::new(name), &files)?;
        shell::status("Created", format!("{kind} `{name}`"));
        Ok(())
    }
}

/// A Python plugin of the interface crate at `interface`: the plugin
/// module, the interface's typed stubs beside it, a pytest test and a
/// `pyproject.toml`. The stubs and the skeleton come from the interface's
/// own code, through a generator (as `cargo fidius stub` does).
fn python_plugin(
    name: &str,
    interface: &Path,
    wanted: Option<&str>,
) -> anyhow::Result<Vec<(String, String)>> {
    let (api, item) = read_interface(interface, wanted)?;
    let trait_name = item.ident.to_string();
    let stubs = super::stub::stub_file(&trait_name);
    let stubs_module = stubs.trim_end_matches(".py").to_owned();
    let manifest = std::fs::canonicalize(interface.join("Cargo.toml"))
        .with_context(|| format!("interface crate `{}` not found", interface.display()))?;
    let flags = super::wit::GeneratorFlags::for_manifest(manifest);
    let generated = super::wit::generate_each(
        &flags,
        std::slice::from_ref(&api),
        "python-plugin-gen",
        "a Python plugin",
        |path| {
            format!(
                "<dyn ::{path}>::__fidius_python().and_then(|s| Ok(format!(\"{{s}}\\u{{1d}}{{}}\", \
                 <dyn ::{path}>::__fidius_python_plugin({stubs_module:?})?))).map_err(|e| e.to_string())"
            )
        },
    )?;
    let text = generated
        .into_iter()
        .find(|g| g.found.name == trait_name)
        .map(|g| g.text)
        .with_context(|| format!("no `{trait_name}` among the interfaces of `{api}`"))?
        .map_err(|reason| {
            anyhow::anyhow!("interface `{trait_name}` has no Python form: {reason}")
        })?;
    let (stub_text, plugin_text) = text
        .split_once('\u{1d}')
        .context("the generator printed something unexpected")?;
    let module = name.replace('-', "_");
    let test = format!(
        "\"\"\"Checks the plugin against the `{trait_name}` interface: run `pytest` here\n\
         (with `pip install pytest <fidius>/fidius-runtime/python`).\"\"\"\n\n\
         import inspect\n\n\
         import fidius\n\n\
         import {stubs_module} as api\n\
         import {module} as plugin\n\n\n\
         def test_the_plugin_declares_the_interface():\n    \
         declared = getattr(plugin.Plugin, fidius.PLUGIN_ATTRIBUTE)\n    \
         assert declared[\"interface\"] == api.INTERFACE\n    \
         assert declared[\"version\"] == api.VERSION\n    \
         assert declared[\"hash\"] == api.HASH\n\n\n\
         def test_it_has_every_method_with_the_interface_arguments():\n    \
         for name, method in inspect.getmembers(api.{trait_name}, inspect.isfunction):\n        \
         if name.startswith(\"_\"):\n            \
         continue\n        \
         ours = getattr(plugin.Plugin, name)\n        \
         assert len(inspect.signature(ours).parameters) == len(\n            \
         inspect.signature(method).parameters\n        \
         ), name\n"
    );
    let pyproject = format!(
        "[project]\nname = \"{name}\"\nversion = \"0.1.0\"\nrequires-python = \">=3.11\"\n\n\
         # The plugin module hosts load (`PythonLibrary::open`), and the interface\n\
         # it implements.\n\
         [tool.fidius]\nmodule = \"{module}.py\"\ninterface = \"{trait_name}\"\n\n\
         [tool.pytest.ini_options]\npythonpath = [\".\"]\n"
    );
    Ok(vec![
        (format!("{module}.py"), plugin_text.to_owned()),
        (stubs, stub_text.to_owned()),
        (format!("test_{module}.py"), test),
        ("pyproject.toml".into(), pyproject),
    ])
}

fn pretty(tokens: proc_macro2::TokenStream) -> String {
    match syn::parse2::<syn::File>(tokens.clone()) {
        Ok(file) => prettyplease::unparse(&file),
        Err(_) => tokens.to_string(),
    }
}

fn interface_source(trait_name: &str) -> String {
    let t = format_ident!("{trait_name}");
    let doc = format!(" The `{trait_name}` plugin interface.");
    let body = pretty(quote! {
        pub use fidius::plugin_impl;
        use serde::{Deserialize, Serialize};

        /// What the host sends.
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        pub struct Request {
            pub text: String,
        }

        /// What the plugin answers.
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        pub struct Response {
            pub text: String,
            pub length: u64,
        }

        #[fidius::plugin_interface(version = 1)]
        pub trait #t: Send + Sync {
            /// Handles one request.
            fn handle(&self, request: Request) -> Response;
        }

        #[cfg(test)]
        mod tests {
            use super::*;

            struct Echo;

            impl #t for Echo {
                fn handle(&self, request: Request) -> Response {
                    Response { length: request.text.len() as u64, text: request.text }
                }
            }

            #[test]
            fn the_interface_is_versioned_and_callable() {
                let info = <dyn #t as fidius::Interface>::INFO;
                assert_eq!(info.version, 1);
                assert_eq!(info.methods.len(), 1);
                let response = Echo.handle(Request { text: "hi".into() });
                assert_eq!(response.length, 2);
            }
        }
    });
    format!("//!{doc}\n\n{body}")
}

/// A plugin implementing every required method of `item`. Bodies return
/// `Default::default()` (or do nothing for unit), to be filled in.
fn plugin_source(api: &str, item: &syn::ItemTrait) -> String {
    let api = format_ident!("{}", api.replace('-', "_"));
    let t = &item.ident;
    let methods = item.items.iter().filter_map(|i| match i {
        syn::TraitItem::Fn(f)
            if !f.attrs.iter().any(|a| a.path().is_ident("optional")) && f.default.is_none() =>
        {
            let mut sig = f.sig.clone();
            for input in sig.inputs.iter_mut() {
                if let syn::FnArg::Typed(pt) = input
                    && let syn::Pat::Ident(p) = &mut *pt.pat
                {
                    p.ident = format_ident!("_{}", p.ident);
                }
            }
            let body = match &sig.output {
                syn::ReturnType::Default => quote!({}),
                syn::ReturnType::Type(..) => quote!({ Default::default() }),
            };
            Some(quote!(#sig #body))
        }
        _ => None,
    });
    let doc = format!(" A `{t}` plugin.");
    let body = pretty(quote! {
        // The interface crate's trait, `plugin_impl` and the types its
        // methods use.
        #[allow(unused_imports)]
        use #api::*;

        /// The plugin. Fill in the methods; each returns a default value
        /// until then.
        #[derive(Default)]
        pub struct Plugin;

        #[plugin_impl(#t)]
        #[allow(clippy::unused_unit)]
        impl #t for Plugin {
            #(#methods)*
        }

        fidius::fidius_plugin_registry!();

        #[cfg(test)]
        mod tests {
            use super::*;

            #[test]
            fn the_plugin_implements_the_interface() {
                let plugin: Box<dyn #t> = Box::new(Plugin);
                let info = <dyn #t as fidius::Interface>::INFO;
                assert!(!info.methods.is_empty());
                drop(plugin);
            }
        }
    });
    format!("//!{doc}\n\n{body}")
}

fn host_source(api: &str, t: &syn::Ident) -> String {
    let api = format_ident!("{}", api.replace('-', "_"));
    let client = format_ident!("{}Client", t);
    let body = pretty(quote! {
        use std::process::ExitCode;

        use fidius::PluginLibrary;
        use fidius::package::{Package, PublicKey, TrustPolicy};
        use #api::#client;

        /// Usage: `HOST LIBRARY` or `HOST PACKAGE.fidpkg --key PUBLIC`.
        fn main() -> ExitCode {
            let args: Vec<String> = std::env::args().skip(1).collect();
            match run(&args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }

        fn run(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
            let Some(path) = args.first() else {
                return Err("usage: host LIBRARY | host PACKAGE.fidpkg --key PUBLIC".into());
            };
            if path.ends_with(".fidpkg") {
                let mut policy = TrustPolicy::new();
                for pair in args[1..].chunks(2) {
                    if let [flag, key] = pair && flag == "--key" {
                        policy = policy.trust(PublicKey::from_file(key)?);
                    }
                }
                let package = Package::open(path, &policy)?;
                println!("package {} v{}", package.manifest().package.name, package.manifest().package.version);
                for info in package.plugins_for::<#client>() {
                    let client: #client = package.load(&info.plugin_name)?;
                    loaded(info, client);
                }
            } else {
                let library = PluginLibrary::open(path)?;
                for info in library.plugins_for::<#client>() {
                    let client: #client = library.load(&info.plugin_name)?;
                    loaded(info, client);
                }
            }
            Ok(())
        }

        fn loaded(info: &fidius::PluginInfo, client: #client) {
            println!("loaded {} ({} v{})", info.plugin_name, info.interface_name, info.interface_version);
            drop(client);
        }

        #[cfg(test)]
        mod tests {
            use super::*;

            #[test]
            fn a_missing_library_is_a_clear_error() {
                let error = run(&["does-not-exist.so".to_owned()]).unwrap_err();
                assert!(error.to_string().contains("does-not-exist.so"), "{error}");
            }
        }
    });
    format!("//! A host for `{t}` plugins.\n\n{body}")
}
