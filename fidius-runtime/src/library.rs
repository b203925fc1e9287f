//! [`PluginLibrary`]: the public entry point for native plugins.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use std::marker::PhantomData;

use fidius_guest::__private::{CreateArgs, HostExport};
use fidius_guest::{HostInterface, Interface, PluginClient};

use crate::file;
use crate::native::{self, Loaded};
use crate::{InterfaceField, LoadError, PluginInfo};

/// A validated native plugin library.
///
/// [`open`](Self::open) reads and checks the file without loading it;
/// [`load`](Self::load) loads it (once) and returns typed clients. The
/// library stays loaded while this value or any client from it lives.
///
/// ```no_run
/// # use fidius_runtime::PluginLibrary;
/// # fn demo<C: fidius_guest::PluginClient>() -> Result<(), fidius_runtime::LoadError> {
/// let library = PluginLibrary::open("target/debug/libmy_plugin.so")?;
/// for plugin in library.plugins() {
///     println!("{} implements {} v{}", plugin.plugin_name, plugin.interface_name, plugin.interface_version);
/// }
/// let client: C = library.load("Invert")?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct PluginLibrary {
    path: PathBuf,
    target: String,
    plugins: Vec<PluginInfo>,
    /// Descriptor symbol of each plugin, parallel to `plugins`.
    descriptor_symbols: Vec<String>,
    loaded: Mutex<Option<Arc<Loaded>>>,
}

/// Builds one plugin instance: see [`PluginLibrary::instance`].
#[must_use = "call `.build()` to create the instance"]
pub struct InstanceBuilder<'a, C: PluginClient> {
    library: &'a PluginLibrary,
    name: &'a str,
    config: Option<Result<Vec<u8>, fidius_guest::wire::WireError>>,
    host: Option<HostExport>,
    _client: PhantomData<fn() -> C>,
}

impl<C: PluginClient> std::fmt::Debug for InstanceBuilder<'_, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstanceBuilder")
            .field("plugin", &self.name)
            .field("configured", &self.config.is_some())
            .field("host", &self.host.is_some())
            .finish_non_exhaustive()
    }
}

impl<'a, C: PluginClient> InstanceBuilder<'a, C> {
    /// The configuration for a plugin built with `config = Cfg`; encoded
    /// now, decoded by the plugin as its `Cfg`.
    pub fn config<Cfg: fidius_guest::__private::serde::Serialize + ?Sized>(
        mut self,
        config: &Cfg,
    ) -> Self {
        self.config = Some(fidius_guest::wire::encode(config));
        self
    }

    /// An already encoded configuration (`None`: none).
    pub(crate) fn encoded_config(
        mut self,
        config: Option<Result<Vec<u8>, fidius_guest::wire::WireError>>,
    ) -> Self {
        self.config = config;
        self
    }

    /// The host's implementation of the interface's `host = Trait`
    /// interface. Plugins keep a reference to it while they need it.
    pub fn host(mut self, host: Arc<<C::Interface as Interface>::Host>) -> Self {
        self.host = Some(<<C::Interface as Interface>::Host as HostInterface>::export(host));
        self
    }

    /// Checks, loads and creates the instance.
    ///
    /// # Errors
    /// See [`PluginLibrary::load`] and [`PluginLibrary::configure`].
    pub fn build(self) -> Result<C, LoadError> {
        let library = self.library;
        let info = &<C::Interface as Interface>::INFO;
        let index = find(&library.path, &library.plugins, info, self.name)?;
        let meta = &library.plugins[index];
        let slots = check_interface(&library.path, info, meta)?;
        let plugin = || meta.plugin_name.clone();
        let path = || library.path.clone();
        let config = resolve_config(&library.path, meta, self.config)?;
        let host = self.host.unwrap_or_else(HostExport::none);
        if let Some(host_info) = info.host
            && host.raw().is_none()
        {
            return Err(LoadError::NeedsHost {
                path: path(),
                plugin: plugin(),
                host_interface: host_info.name,
            });
        }
        let loaded = library.loaded()?;
        let instance = loaded.instantiate(
            &library.path,
            &library.descriptor_symbols[index],
            meta,
            CreateArgs {
                config: &config,
                host: host.raw(),
                slots: &slots,
            },
        )?;
        Ok(C::from_instance(instance))
    }
}

impl PluginLibrary {
    /// Reads and validates a library file without loading it: it must be a
    /// shared library for this OS and architecture that exports the fidius
    /// library header symbol and well-formed metadata records of this ABI
    /// and wire version. The header's contents are checked by
    /// [`load`](Self::load), after loading.
    ///
    /// # Errors
    /// [`LoadError::Io`], [`LoadError::NotAFile`],
    /// [`LoadError::NotASharedLibrary`], [`LoadError::WrongTarget`],
    /// [`LoadError::NotAFidiusPlugin`], [`LoadError::MalformedMetadata`] or
    /// [`LoadError::AbiVersionMismatch`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, LoadError> {
        let path = path.as_ref();
        let file = file::read(path)?;
        Ok(Self {
            path: path.to_owned(),
            target: file.target.clone(),
            descriptor_symbols: file
                .plugins
                .iter()
                .map(|p| p.descriptor_symbol.clone())
                .collect(),
            plugins: file.plugins.into_iter().map(|p| p.meta).collect(),
            loaded: Mutex::new(None),
        })
    }

    /// The library's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's format and architecture, e.g. `elf x86_64 (64-bit)`.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Every plugin in the library, as read from its static metadata.
    pub fn plugins(&self) -> &[PluginInfo] {
        &self.plugins
    }

    /// Checks that plugin `name` implements `C`'s interface, loads the
    /// library if it is not loaded yet, cross-checks the loaded descriptor
    /// against the metadata and returns a client bound to a new instance of
    /// the plugin, built with `Default`.
    ///
    /// Shorthand for `self.instance::<C>(name).build()`.
    ///
    /// # Errors
    /// [`LoadError::NoSuchPlugin`], [`LoadError::InterfaceMismatch`],
    /// [`LoadError::NeedsConfig`], [`LoadError::NeedsHost`],
    /// [`LoadError::Dlopen`], [`LoadError::NotAFidiusPlugin`] (header symbol
    /// missing after loading), [`LoadError::BadLibraryHeader`],
    /// [`LoadError::AbiVersionMismatch`] (layout, ABI or wire version in the
    /// loaded header or descriptor), [`LoadError::RegistryMismatch`] or
    /// [`LoadError::Create`].
    pub fn load<C: PluginClient>(&self, name: &str) -> Result<C, LoadError> {
        self.instance::<C>(name).build()
    }

    /// Creates a configured instance of plugin `name` (built with
    /// `#[plugin_impl(…, config = Cfg)]`): `config` is encoded, crosses the
    /// boundary once, and the plugin's `configure` runs once for this
    /// instance. Each call makes a new, independent instance.
    ///
    /// Shorthand for `self.instance::<C>(name).config(config).build()`.
    ///
    /// # Errors
    /// As [`load`](Self::load), plus [`LoadError::NotConfigurable`],
    /// [`LoadError::ConfigEncode`], and [`LoadError::Create`] with
    /// [`CallError::ConfigDecode`](fidius_guest::CallError::ConfigDecode)
    /// (wrong config shape, naming the plugin's config type),
    /// [`CallError::Rejected`](fidius_guest::CallError::Rejected)
    /// (`configure` returned an error) or
    /// [`CallError::Panic`](fidius_guest::CallError::Panic).
    pub fn configure<C: PluginClient, Cfg: fidius_guest::__private::serde::Serialize + ?Sized>(
        &self,
        name: &str,
        config: &Cfg,
    ) -> Result<C, LoadError> {
        self.instance::<C>(name).config(config).build()
    }

    /// A builder for an instance of plugin `name` with a configuration
    /// and/or the host's implementation of the interface's host interface.
    pub fn instance<'a, C: PluginClient>(&'a self, name: &'a str) -> InstanceBuilder<'a, C> {
        InstanceBuilder {
            library: self,
            name,
            config: None,
            host: None,
            _client: PhantomData,
        }
    }

    /// Plugins implementing `C`'s interface (by name), for hosts that load
    /// "every plugin of this kind".
    pub fn plugins_for<C: PluginClient>(&self) -> impl Iterator<Item = &PluginInfo> {
        let name = <C::Interface as Interface>::INFO.name;
        self.plugins
            .iter()
            .filter(move |p| p.interface_name == name)
    }

    fn loaded(&self) -> Result<Arc<Loaded>, LoadError> {
        // A poisoned lock only means another thread panicked while loading;
        // the `Option` is still consistent.
        let mut slot = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(loaded) = &*slot {
            return Ok(loaded.clone());
        }
        let loaded = native::open(&self.path)?;
        *slot = Some(loaded.clone());
        Ok(loaded)
    }
}

/// What a library file contains, whatever target it was built for.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LibraryContents {
    /// The file's format and architecture, e.g. `elf aarch64 (64-bit)`.
    pub target: String,
    /// Its plugins, from the static metadata.
    pub plugins: Vec<PluginInfo>,
}

/// Whether the file at `path` starts with the WebAssembly magic number.
#[cfg(feature = "package")]
pub(crate) fn is_wasm_file(path: &Path) -> bool {
    use std::io::Read as _;
    let mut magic = [0u8; 4];
    let Ok(Some((mut file, _))) = crate::open::open_regular(path) else {
        return false;
    };
    file.read_exact(&mut magic)
        .is_ok_and(|()| crate::component::is_wasm(&magic))
}

/// Reads a plugin library's (or WebAssembly component's) static metadata
/// without loading it, for any target (tools that package or inspect libraries built for other
/// platforms). Use [`PluginLibrary::open`] to load: it refuses other
/// targets.
///
/// # Errors
/// As [`PluginLibrary::open`], except [`LoadError::WrongTarget`].
pub fn inspect_library(path: impl AsRef<Path>) -> Result<LibraryContents, LoadError> {
    let path = path.as_ref();
    #[cfg(feature = "package")]
    if is_wasm_file(path) {
        let bytes = crate::open::read_file(path)?;
        return Ok(LibraryContents {
            target: crate::component::COMPONENT_TARGET.to_owned(),
            plugins: crate::component::plugins(path, &bytes)?,
        });
    }
    let file = file::read_any_target(path)?;
    Ok(LibraryContents {
        target: file.target,
        plugins: file.plugins.into_iter().map(|p| p.meta).collect(),
    })
}

pub(crate) fn find(
    path: &Path,
    plugins: &[PluginInfo],
    info: &fidius_guest::InterfaceInfo,
    name: &str,
) -> Result<usize, LoadError> {
    let by_name = |p: &&PluginInfo| p.plugin_name == name;
    let exact = plugins
        .iter()
        .position(|p| by_name(&p) && p.interface_name == info.name);
    let Some(index) = exact.or_else(|| plugins.iter().position(|p| by_name(&p))) else {
        return Err(LoadError::NoSuchPlugin {
            path: path.to_owned(),
            interface: info.name.to_owned(),
            plugin: name.to_owned(),
            available: plugins
                .iter()
                .map(|p| format!("{}/{}", p.interface_name, p.plugin_name))
                .collect(),
        });
    };
    Ok(index)
}

/// Checks plugin `meta` against the caller's interface and maps each of
/// the caller's methods to the plugin's vtable entry (the evolution
/// rules in `docs/src/evolution.md`).
pub(crate) fn check_interface(
    path: &Path,
    info: &fidius_guest::InterfaceInfo,
    meta: &PluginInfo,
) -> Result<Vec<Option<u32>>, LoadError> {
    let mismatch = |field, expected: String, found: String| LoadError::InterfaceMismatch {
        path: path.to_owned(),
        plugin: meta.plugin_name.clone(),
        field,
        expected,
        found,
    };
    crate::error::check_identity(
        path,
        &meta.plugin_name,
        info,
        (
            &meta.interface_name,
            meta.interface_version,
            meta.interface_hash,
        ),
    )?;
    if meta.buffer != info.buffer as u8 {
        return Err(mismatch(
            InterfaceField::Buffer,
            format!("{:?}", info.buffer),
            fidius_guest::abi::BufferStrategy::from_u8(meta.buffer).map_or_else(
                || format!("unknown ({})", meta.buffer),
                |b| format!("{b:?}"),
            ),
        ));
    }
    match (info.host, &meta.host) {
        (None, None) => {}
        (Some(host), Some(found)) if host.hash == found.hash => {}
        (expected, found) => {
            let describe = |name: &str, version: u32, hash: u64| {
                format!("{name} v{version} (hash {hash:#018x})")
            };
            return Err(mismatch(
                InterfaceField::HostInterface,
                expected.map_or_else(
                    || "none".to_owned(),
                    |h| describe(h.name, h.version, h.hash),
                ),
                found.as_ref().map_or_else(
                    || "none".to_owned(),
                    |h| describe(&h.name, h.version, h.hash),
                ),
            ));
        }
    }
    let required = info.required_count();
    let mut slots = Vec::with_capacity(info.methods.len());
    for (index, method) in info.methods.iter().enumerate() {
        if index < required {
            slots.push(Some(index as u32));
            continue;
        }
        let found = meta
            .methods
            .iter()
            .enumerate()
            .find(|(_, m)| m.name == method.name);
        match found {
            None => slots.push(None),
            Some((_, m)) if m.signature != method.signature => {
                return Err(mismatch(
                    InterfaceField::Method(method.name.into()),
                    method.signature.to_owned(),
                    m.signature.clone(),
                ));
            }
            Some((slot, m)) => slots.push(m.implemented.then_some(slot as u32)),
        }
    }
    Ok(slots)
}

/// The encoded configuration for plugin `meta`, checked against whether it
/// takes one.
pub(crate) fn resolve_config(
    path: &Path,
    meta: &PluginInfo,
    config: Option<Result<Vec<u8>, fidius_guest::wire::WireError>>,
) -> Result<Vec<u8>, LoadError> {
    let plugin = || meta.plugin_name.clone();
    match (&meta.config_type, config) {
        (Some(config_type), None) => Err(LoadError::NeedsConfig {
            path: path.to_owned(),
            plugin: plugin(),
            config_type: config_type.clone(),
        }),
        (None, Some(_)) => Err(LoadError::NotConfigurable {
            path: path.to_owned(),
            plugin: plugin(),
        }),
        (_, Some(Err(source))) => Err(LoadError::ConfigEncode {
            path: path.to_owned(),
            plugin: plugin(),
            source,
        }),
        (_, Some(Ok(bytes))) => Ok(bytes),
        (None, None) => Ok(Vec::new()),
    }
}
