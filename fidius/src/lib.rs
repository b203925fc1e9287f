//! fidius: write a Rust trait, get a stable plugin ABI and a typed host
//! proxy. This crate only re-exports; see the book in `docs/` and the
//! README for the whole story.
//!
//! * Interface crates: `#[fidius::plugin_interface(version = 1)]` on a trait.
//! * Plugin crates (cdylibs): `#[plugin_impl(Trait)]` on an impl and
//!   `fidius::fidius_plugin_registry!();` once.
//! * Hosts: enable the `native` feature and load with
//!   [`PluginLibrary`](crate::PluginLibrary).
#![forbid(unsafe_code)]

pub use fidius_derive::{fidius_plugin_registry, host_interface, plugin_impl, plugin_interface};
pub use fidius_guest::{
    CallError, DEFAULT_BATCH_LIMIT, Exception, HostInterface, Interface, InterfaceInfo, MethodInfo,
    PluginClient, PluginError, RemoteStream, Stream, StreamFailure, abi, meta, wire,
};

#[cfg(any(feature = "native", feature = "python"))]
pub use fidius_runtime::LoadError;
#[cfg(feature = "native")]
pub use fidius_runtime::{InstanceBuilder, PluginInfo, PluginLibrary};

/// Signed packages: `Package::open(path, &TrustPolicy)`.
#[cfg(feature = "package")]
pub use fidius_runtime::package;

#[cfg(feature = "python")]
pub use fidius_runtime::python;
#[cfg(feature = "wasm")]
pub use fidius_runtime::wasm;

/// The whole host runtime (`fidius-runtime`).
#[cfg(any(feature = "native", feature = "python"))]
pub use fidius_runtime as runtime;

#[doc(hidden)]
pub use fidius_guest::__private;
