//! [`PluginLibrary`]: the public entry point for native plugins.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use fidius_guest::{Interface, PluginClient};

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
    plugins: Vec<PluginInfo>,
    /// Descriptor symbol of each plugin, parallel to `plugins`.
    descriptor_symbols: Vec<String>,
    loaded: Mutex<Option<Arc<Loaded>>>,
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

    /// Every plugin in the library, as read from its static metadata.
    pub fn plugins(&self) -> &[PluginInfo] {
        &self.plugins
    }

    /// Checks that plugin `name` implements `C`'s interface (name, version,
    /// hash), loads the library if it is not loaded yet, cross-checks the
    /// loaded descriptor against the metadata and returns a client bound to
    /// a new instance of the plugin.
    ///
    /// # Errors
    /// [`LoadError::NoSuchPlugin`], [`LoadError::InterfaceMismatch`],
    /// [`LoadError::Dlopen`], [`LoadError::NotAFidiusPlugin`] (header symbol
    /// missing after loading), [`LoadError::BadLibraryHeader`],
    /// [`LoadError::AbiVersionMismatch`] (layout, ABI or wire version in the
    /// loaded header or descriptor), [`LoadError::RegistryMismatch`] or
    /// [`LoadError::Create`].
    pub fn load<C: PluginClient>(&self, name: &str) -> Result<C, LoadError> {
        let info = &<C::Interface as Interface>::INFO;
        let index = self.find(info, name)?;
        let loaded = self.loaded()?;
        let instance = loaded.instantiate(
            &self.path,
            &self.descriptor_symbols[index],
            &self.plugins[index],
        )?;
        Ok(C::from_instance(instance))
    }

    /// Plugins implementing `C`'s interface (by name), for hosts that load
    /// "every plugin of this kind".
    pub fn plugins_for<C: PluginClient>(&self) -> impl Iterator<Item = &PluginInfo> {
        let name = <C::Interface as Interface>::INFO.name;
        self.plugins
            .iter()
            .filter(move |p| p.interface_name == name)
    }

    fn find(&self, info: &fidius_guest::InterfaceInfo, name: &str) -> Result<usize, LoadError> {
        let by_name = |p: &&PluginInfo| p.plugin_name == name;
        let exact = self
            .plugins
            .iter()
            .position(|p| by_name(&p) && p.interface_name == info.name);
        let Some(index) = exact.or_else(|| self.plugins.iter().position(|p| by_name(&p))) else {
            return Err(LoadError::NoSuchPlugin {
                path: self.path.clone(),
                interface: info.name.to_owned(),
                plugin: name.to_owned(),
                available: self
                    .plugins
                    .iter()
                    .map(|p| format!("{}/{}", p.interface_name, p.plugin_name))
                    .collect(),
            });
        };
        let meta = &self.plugins[index];
        let mismatch = |field, expected: String, found: String| LoadError::InterfaceMismatch {
            path: self.path.clone(),
            plugin: name.to_owned(),
            field,
            expected,
            found,
        };
        if meta.interface_name != info.name {
            return Err(mismatch(
                InterfaceField::Name,
                info.name.to_owned(),
                meta.interface_name.clone(),
            ));
        }
        if meta.interface_version != info.version {
            return Err(mismatch(
                InterfaceField::Version,
                info.version.to_string(),
                meta.interface_version.to_string(),
            ));
        }
        if meta.interface_hash != info.hash {
            return Err(mismatch(
                InterfaceField::Hash,
                format!("{:#018x}", info.hash),
                format!("{:#018x}", meta.interface_hash),
            ));
        }
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
        Ok(index)
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
