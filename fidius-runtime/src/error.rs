//! Load errors: one variant per way a library can be refused.

use std::path::PathBuf;

use fidius_guest::CallError;
use fidius_guest::meta::MetaError;

/// Which part of an interface disagreed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InterfaceField {
    /// The signature of an `#[optional]` method, by name: changing it is a
    /// breaking change.
    Method(Box<str>),
    /// The host interface (`host = Trait`) the plugin expects.
    HostInterface,
    /// The trait name.
    Name,
    /// `version = N`.
    Version,
    /// The hash of the required method signatures.
    Hash,
    /// `buffer = …`, how result buffers are allocated.
    Buffer,
}

impl std::fmt::Display for InterfaceField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Method(name) => return write!(f, "signature of optional method `{name}`"),
            Self::HostInterface => "host interface",
            Self::Name => "name",
            Self::Version => "version",
            Self::Hash => "hash",
            Self::Buffer => "buffer strategy",
        })
    }
}

/// Why a plugin library could not be opened or a plugin loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The file could not be read.
    #[error("failed to read `{path}`: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The path is not a regular file.
    #[error("`{path}` is not a file")]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// The file is not an object file, or not a shared library.
    #[error("`{path}` is not a shared library: {detail}")]
    NotASharedLibrary {
        /// The file.
        path: PathBuf,
        /// What was found instead.
        detail: String,
    },
    /// The file is a shared library for another platform.
    #[error("`{path}` is built for {found}, but this host is {expected}")]
    WrongTarget {
        /// The file.
        path: PathBuf,
        /// This host's format and architecture, e.g. `elf x86_64`.
        expected: String,
        /// The file's.
        found: String,
    },
    /// The library has no fidius library header (`fidius_library`): it was
    /// not built with `fidius_plugin_registry!()`.
    #[error(
        "`{path}` is not a fidius plugin library (no `fidius_library` symbol; did the plugin call `fidius::fidius_plugin_registry!()`?)"
    )]
    NotAFidiusPlugin {
        /// The file.
        path: PathBuf,
    },
    /// A metadata record or header in the file is malformed.
    #[error("`{path}`: malformed fidius metadata in `{symbol}`: {source}")]
    MalformedMetadata {
        /// The file.
        path: PathBuf,
        /// The symbol holding the record.
        symbol: String,
        /// What was wrong.
        #[source]
        source: MetaError,
    },
    /// The library (or one plugin in it) speaks another ABI or wire version.
    #[error("`{path}`: {what} version mismatch: this host speaks {expected}, the library {found}")]
    AbiVersionMismatch {
        /// The file.
        path: PathBuf,
        /// `ABI`, `wire` or `layout`.
        what: &'static str,
        /// This host's version.
        expected: u32,
        /// The library's.
        found: u32,
    },
    /// No plugin of that name in the library.
    #[error(
        "`{path}` has no plugin `{plugin}` for interface `{interface}`; it has: {}",
        list(available)
    )]
    NoSuchPlugin {
        /// The file.
        path: PathBuf,
        /// The interface requested.
        interface: String,
        /// The plugin requested.
        plugin: String,
        /// `Interface/Plugin` of every plugin in the library.
        available: Vec<String>,
    },
    /// The plugin implements a different interface than the client expects.
    #[error(
        "`{path}`: plugin `{plugin}` has interface {field} {found}, but the host expects {expected}"
    )]
    InterfaceMismatch {
        /// The file.
        path: PathBuf,
        /// The plugin.
        plugin: String,
        /// Which field disagreed.
        field: InterfaceField,
        /// What the host's client was built against.
        expected: String,
        /// What the plugin was built against.
        found: String,
    },
    /// The plugin is built with `config = C` and must be created with
    /// `configure`.
    #[error(
        "`{path}`: plugin `{plugin}` needs a configuration of type `{config_type}`; create it with `configure`"
    )]
    NeedsConfig {
        /// The file.
        path: PathBuf,
        /// The plugin.
        plugin: String,
        /// Its configuration type.
        config_type: String,
    },
    /// `configure` was called for a plugin that takes no configuration.
    #[error("`{path}`: plugin `{plugin}` takes no configuration; create it with `load`")]
    NotConfigurable {
        /// The file.
        path: PathBuf,
        /// The plugin.
        plugin: String,
    },
    /// The interface declares a host interface and no implementation was
    /// given.
    #[error(
        "`{path}`: plugin `{plugin}` calls the host interface `{host_interface}`; pass an implementation with `.host(…)`"
    )]
    NeedsHost {
        /// The file.
        path: PathBuf,
        /// The plugin.
        plugin: String,
        /// The host interface's name.
        host_interface: &'static str,
    },
    /// The host could not encode the configuration value.
    #[error("`{path}`: failed to encode the configuration for plugin `{plugin}`: {source}")]
    ConfigEncode {
        /// The file.
        path: PathBuf,
        /// The plugin.
        plugin: String,
        /// What went wrong.
        #[source]
        source: fidius_guest::wire::WireError,
    },
    /// After `dlopen`, the in-memory registry disagrees with the file's
    /// static metadata (a corrupt or tampered library).
    #[error("`{path}`: registry of plugin `{plugin}` disagrees with its metadata: {detail}")]
    RegistryMismatch {
        /// The file.
        path: PathBuf,
        /// The plugin.
        plugin: String,
        /// What disagreed.
        detail: String,
    },
    /// After `dlopen`, the library header (`fidius_library`) is malformed.
    #[error("`{path}`: malformed fidius library header: {detail}")]
    BadLibraryHeader {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        detail: String,
    },
    /// The dynamic loader refused the library.
    #[error("failed to load `{path}`: {detail}")]
    Dlopen {
        /// The file.
        path: PathBuf,
        /// The loader's message.
        detail: String,
    },
    /// The file is WebAssembly but not a valid component.
    #[error("`{path}` is not a WebAssembly component: {detail}")]
    NotAComponent {
        /// The file.
        path: PathBuf,
        /// What the parser found.
        detail: String,
    },
    /// The component has no fidius metadata.
    #[error(
        "`{path}` is a WebAssembly component without fidius metadata (no `fidius-meta` section; build plugins with #[plugin_impl] for wasm32-wasip2, or add it to a component built by another toolchain with `cargo fidius stamp`)"
    )]
    NoComponentMetadata {
        /// The file.
        path: PathBuf,
    },
    /// `cargo fidius stamp` on a component that already has fidius
    /// metadata.
    #[error("`{path}` already has fidius metadata (plugins: {})", plugins.join(", "))]
    MetadataPresent {
        /// The file.
        path: PathBuf,
        /// The plugins its metadata lists.
        plugins: Vec<String>,
    },
    /// A Python plugin could not be loaded: its module failed to import
    /// (the message holds the traceback), or a plugin class does not fit
    /// the interface (a method missing or taking other arguments).
    #[error("`{path}`: {detail}")]
    Python {
        /// The plugin's module file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// wasmtime could not compile, link or instantiate the component.
    #[error("`{path}`: {detail}")]
    Wasm {
        /// The file.
        path: PathBuf,
        /// wasmtime's message.
        detail: String,
    },
    /// The plugin requests capabilities the host has not granted.
    #[error(
        "`{path}` requests capabilities the host has not granted: {}",
        missing.join(", ")
    )]
    CapabilitiesNotGranted {
        /// The file.
        path: PathBuf,
        /// Every requested capability that is not granted.
        missing: Vec<String>,
    },
    /// A capability name is not one fidius knows.
    #[error("unknown capability `{name}`: {expected}")]
    UnknownCapability {
        /// The name.
        name: String,
        /// The forms fidius accepts.
        expected: &'static str,
    },
    /// The plugin's constructor failed or panicked.
    #[error("`{path}`: failed to create plugin `{plugin}`: {source}")]
    Create {
        /// The file.
        path: PathBuf,
        /// The plugin.
        plugin: String,
        /// What the constructor did.
        #[source]
        source: CallError,
    },
}

/// [`LoadError::AbiVersionMismatch`] unless `abi` and `wire` are this
/// host's ABI and wire versions.
#[cfg(any(feature = "native", feature = "package"))]
pub(crate) fn check_versions(path: &std::path::Path, abi: u32, wire: u32) -> Result<(), LoadError> {
    use fidius_guest::abi::{ABI_VERSION, WIRE_VERSION};
    for (what, expected, found) in [("ABI", ABI_VERSION, abi), ("wire", WIRE_VERSION, wire)] {
        if expected != found {
            return Err(LoadError::AbiVersionMismatch {
                path: path.to_owned(),
                what,
                expected,
                found,
            });
        }
    }
    Ok(())
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "no plugins".to_owned()
    } else {
        items.join(", ")
    }
}

/// Checks the interface a plugin declares (`name`, `version`, `hash`)
/// against the client's: the same name, and the same hash (required
/// methods) whatever the versions. Different hashes across versions are a
/// version mismatch, within one version a hash mismatch.
#[cfg(any(feature = "native", feature = "python"))]
pub(crate) fn check_identity(
    path: &std::path::Path,
    plugin: &str,
    info: &fidius_guest::InterfaceInfo,
    (name, version, hash): (&str, u32, u64),
) -> Result<(), LoadError> {
    let mismatch = |field, expected: String, found: String| LoadError::InterfaceMismatch {
        path: path.to_owned(),
        plugin: plugin.to_owned(),
        field,
        expected,
        found,
    };
    if name != info.name {
        return Err(mismatch(
            InterfaceField::Name,
            info.name.to_owned(),
            name.to_owned(),
        ));
    }
    if hash != info.hash {
        if version != info.version {
            return Err(mismatch(
                InterfaceField::Version,
                format!("{} (hash {:#018x})", info.version, info.hash),
                format!("{version} (hash {hash:#018x}; its required methods differ)"),
            ));
        }
        return Err(mismatch(
            InterfaceField::Hash,
            format!("{:#018x}", info.hash),
            format!("{hash:#018x}"),
        ));
    }
    Ok(())
}
