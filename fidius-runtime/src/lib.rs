//! `fidius-runtime`: the lean loader host applications depend on.
//!
//! Loading a native plugin never runs plugin code before the library file
//! has been validated:
//!
//! 1. [`PluginLibrary::open`] reads the file's headers (with `object`) and
//!    checks it is a shared library for this OS and architecture, then reads
//!    each plugin's static metadata record (interface name, version, hash,
//!    ABI version, methods) straight from the file.
//! 2. [`PluginLibrary::load`] checks the requested client's interface
//!    against that metadata, and only then `dlopen`s the library (once),
//!    checks the library header, fetches the plugin's descriptor and
//!    cross-checks it against the metadata, creates an instance and returns
//!    the typed client.
//!
//! Every failure is a [`LoadError`] naming the file and what was expected
//! and found.
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]
#![deny(unsafe_code)]

mod error;
#[cfg(feature = "native")]
mod file;
#[cfg(feature = "native")]
mod library;
#[cfg(feature = "native")]
#[expect(
    unsafe_code,
    reason = "dlopen and reading the plugin's exported statics"
)]
mod native;
#[cfg(feature = "native")]
mod open;

#[cfg(feature = "package")]
pub mod package;

#[cfg(feature = "package")]
mod component;

#[cfg(feature = "python")]
pub mod python;

#[cfg(feature = "wasm")]
#[expect(
    unsafe_code,
    reason = "deserializing compiled components from the cache"
)]
pub mod wasm;

#[cfg(feature = "package")]
pub use component::stamp_component;

/// The static-metadata reader of a component's bytes, for the fuzz targets
/// in `fuzz/` (feature `fuzzing`). Not an API.
///
/// # Errors
/// What [`inspect_library`] reports for such a file.
#[cfg(all(feature = "fuzzing", feature = "package"))]
#[doc(hidden)]
pub fn fuzz_component_metadata(bytes: &[u8]) -> Result<Vec<PluginInfo>, LoadError> {
    component::plugins(std::path::Path::new("fuzz.wasm"), bytes)
}
pub use error::{InterfaceField, LoadError};
pub use fidius_guest::meta::PluginMeta as PluginInfo;
pub use fidius_guest::{CallError, Exception, PluginClient, PluginError};
#[cfg(feature = "native")]
pub use library::{InstanceBuilder, LibraryContents, PluginLibrary, inspect_library};

/// Calls method `index` of the host's implementation of a host interface
/// for a plugin that cannot call it directly (WASM, Python): arguments and
/// result in the wire format, stream arguments in order, each returned
/// stream handed to the callback, which gives the handle the result
/// carries.
#[cfg(any(feature = "wasm", feature = "python"))]
pub(crate) type HostDispatch = std::sync::Arc<
    dyn Fn(
            usize,
            &[u8],
            Vec<fidius_guest::__private::OwnedStream>,
            &mut dyn FnMut(fidius_guest::__private::OwnedStream) -> u32,
        ) -> Result<Vec<u8>, String>
        + Send
        + Sync,
>;

/// The WIT name of a Rust name (`ImageFilter` → `image-filter`): how an
/// interface's WIT file, package and functions are named.
pub fn wit_name(rust_name: &str) -> String {
    fidius_guest::wit::kebab(rust_name)
}
