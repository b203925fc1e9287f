//! The only module of the runtime that loads and touches plugin memory:
//! `dlopen` through `libloading`, then reading the exported library header
//! and plugin descriptors. Everything read is checked against the static
//! metadata that `file.rs` already validated; every pointer is checked for
//! null and every string for length and UTF-8 before use.

use std::path::Path;
use std::sync::Arc;

use fidius_guest::__private::{
    CreateArgs, Instance, LibraryHeader, PluginDescriptor, Prefix, StrRef,
};
use fidius_guest::abi::{
    DESCRIPTOR_LAYOUT_VERSION, DESCRIPTOR_MAGIC, LIBRARY_LAYOUT_VERSION, LIBRARY_MAGIC,
    LIBRARY_SYMBOL,
};
use fidius_guest::meta::PluginMeta;

use crate::LoadError;

/// Longest string accepted from a descriptor.
const MAX_STR: usize = u16::MAX as usize;

/// A `dlopen`ed library; unloaded when the last client drops.
#[derive(Debug)]
pub(crate) struct Loaded {
    library: libloading::Library,
}

fn mismatch(path: &Path, plugin: &str, detail: String) -> LoadError {
    LoadError::RegistryMismatch {
        path: path.to_owned(),
        plugin: plugin.to_owned(),
        detail,
    }
}

/// Loads the library after `file.rs` validated it, and checks its header.
pub(crate) fn open(path: &Path) -> Result<Arc<Loaded>, LoadError> {
    // SAFETY: loading runs the library's initialisers. The file was checked
    // to be a shared library for this target carrying fidius metadata of
    // this ABI; beyond that, native plugins are trusted code (see the ABI
    // spec's threat model).
    let library = unsafe { libloading::Library::new(path) }.map_err(|e| LoadError::Dlopen {
        path: path.to_owned(),
        detail: e.to_string(),
    })?;
    // SAFETY: `fidius_library` is a data symbol; we only take its address.
    let header: *const LibraryHeader =
        match unsafe { library.get::<*const LibraryHeader>(LIBRARY_SYMBOL.as_bytes()) } {
            Ok(sym) => *sym,
            Err(_) => {
                return Err(LoadError::NotAFidiusPlugin {
                    path: path.to_owned(),
                });
            }
        };
    let bad_header = |detail| LoadError::BadLibraryHeader {
        path: path.to_owned(),
        detail,
    };
    check_prefix(
        path,
        bad_header,
        header.cast(),
        LIBRARY_MAGIC,
        LIBRARY_LAYOUT_VERSION,
        size_of::<LibraryHeader>(),
    )?;
    // SAFETY: non-null, aligned and at least `size_of::<LibraryHeader>()`
    // bytes, checked by `check_prefix`; it is an immutable static of a
    // library we keep loaded.
    let header = unsafe { &*header };
    crate::error::check_versions(path, header.abi_version, header.wire_version)?;
    Ok(Arc::new(Loaded { library }))
}

/// Checks a `Prefix` at `ptr` before the structure behind it is read.
fn check_prefix(
    path: &Path,
    fail: impl Fn(String) -> LoadError,
    ptr: *const Prefix,
    magic: [u8; 8],
    layout: u32,
    min_size: usize,
) -> Result<(), LoadError> {
    if ptr.is_null() || !ptr.is_aligned() {
        return Err(fail(format!(
            "symbol address {ptr:p} is null or misaligned"
        )));
    }
    // SAFETY: non-null and aligned; every fidius structure starts with a
    // `Prefix`, and the symbol was validated to hold a fidius structure.
    let prefix = unsafe { *ptr };
    if prefix.magic != magic {
        return Err(fail(format!("bad magic {:02x?}", prefix.magic)));
    }
    if prefix.layout_version != layout {
        return Err(LoadError::AbiVersionMismatch {
            path: path.to_owned(),
            what: "layout",
            expected: layout,
            found: prefix.layout_version,
        });
    }
    if (prefix.size as usize) < min_size {
        return Err(fail(format!(
            "structure is {} bytes, expected at least {min_size}",
            prefix.size
        )));
    }
    Ok(())
}

fn read_str<'a>(path: &Path, plugin: &str, field: &str, s: StrRef) -> Result<&'a str, LoadError> {
    if s.ptr.is_null() || s.len > MAX_STR {
        return Err(mismatch(
            path,
            plugin,
            format!("`{field}` is null or {} bytes long", s.len),
        ));
    }
    // SAFETY: non-null with a bounded length; it points into a static of a
    // library we keep loaded.
    let bytes = unsafe { std::slice::from_raw_parts(s.ptr, s.len) };
    std::str::from_utf8(bytes)
        .map_err(|_| mismatch(path, plugin, format!("`{field}` is not valid UTF-8")))
}

impl Loaded {
    /// Finds a plugin's descriptor, cross-checks it against `meta`, and
    /// creates an instance.
    pub(crate) fn instantiate(
        self: &Arc<Self>,
        path: &Path,
        symbol: &str,
        meta: &PluginMeta,
        args: CreateArgs<'_>,
    ) -> Result<Instance, LoadError> {
        let plugin = meta.plugin_name.as_str();
        // SAFETY: a data symbol; we only take its address.
        let desc: *const PluginDescriptor = match unsafe {
            self.library
                .get::<*const PluginDescriptor>(symbol.as_bytes())
        } {
            Ok(sym) => *sym,
            Err(e) => {
                return Err(mismatch(
                    path,
                    plugin,
                    format!("descriptor `{symbol}` missing: {e}"),
                ));
            }
        };
        check_prefix(
            path,
            |detail| mismatch(path, plugin, detail),
            desc.cast(),
            DESCRIPTOR_MAGIC,
            DESCRIPTOR_LAYOUT_VERSION,
            size_of::<PluginDescriptor>(),
        )?;
        // SAFETY: checked non-null, aligned, right magic/layout and large
        // enough; an immutable static of a library kept loaded by `self`.
        let desc = unsafe { &*desc };
        let checks: [(&str, String, String); 8] = [
            (
                "ABI version",
                desc.abi_version.to_string(),
                meta.abi_version.to_string(),
            ),
            (
                "wire version",
                desc.wire_version.to_string(),
                meta.wire_version.to_string(),
            ),
            (
                "interface name",
                read_str(path, plugin, "interface_name", desc.interface_name)?.to_owned(),
                meta.interface_name.clone(),
            ),
            (
                "interface version",
                desc.interface_version.to_string(),
                meta.interface_version.to_string(),
            ),
            (
                "interface hash",
                format!("{:#018x}", desc.interface_hash),
                format!("{:#018x}", meta.interface_hash),
            ),
            (
                "plugin name",
                read_str(path, plugin, "plugin_name", desc.plugin_name)?.to_owned(),
                meta.plugin_name.clone(),
            ),
            (
                "method count",
                desc.method_count.to_string(),
                meta.methods.len().to_string(),
            ),
            (
                "capabilities",
                format!("{:#b}", desc.capabilities),
                format!("{:#b}", meta.capabilities()),
            ),
        ];
        for (field, loaded, recorded) in checks {
            if loaded != recorded {
                return Err(mismatch(
                    path,
                    plugin,
                    format!("{field}: loaded {loaded}, metadata {recorded}"),
                ));
            }
        }
        if desc.vtable.is_null() {
            return Err(mismatch(path, plugin, "vtable pointer is null".into()));
        }
        let keep: Arc<dyn std::any::Any + Send + Sync> = self.clone();
        // SAFETY: the descriptor is validated above and agrees with metadata
        // that matched the caller's interface (name, hash; optional methods
        // by name and signature, which is how `args.slots` was built), so
        // each slot's entry has the type the caller's client expects; `keep`
        // holds the library loaded for the instance's lifetime.
        unsafe { Instance::create(desc, plugin, keep, args) }.map_err(|source| LoadError::Create {
            path: path.to_owned(),
            plugin: plugin.to_owned(),
            source,
        })
    }
}
