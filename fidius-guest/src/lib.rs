//! `fidius-guest`: the crate every fidius interface and plugin depends on.
//!
//! It holds the one definition of the plugin ABI ([`abi`]), the static
//! metadata record that tools read from a library file without running it
//! ([`meta`]), the wire format for arguments and results ([`wire`]), the
//! error types a call can produce ([`CallError`], [`PluginError`]) and the
//! glue the `#[plugin_interface]` / `#[plugin_impl]` macros expand to
//! ([`__private`]).
//!
//! It is deliberately small: no loader, no `libloading`, no wasmtime, so a
//! plugin build stays lean and the crate builds for `wasm32-wasip2`.
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]
#![deny(unsafe_code)]

pub mod abi;
mod error;
mod interface;
pub mod meta;
mod stream;
mod wasm_guest;
pub mod wire;
pub mod wit;

#[doc(hidden)]
#[expect(
    unsafe_code,
    reason = "the FFI glue: shims, buffers and instance handles"
)]
pub mod __private;

pub use error::{CallError, Exception, PluginError};
pub use interface::{HostInterface, Interface, InterfaceInfo, MetaPairs, MethodInfo, PluginClient};
pub use stream::{DEFAULT_BATCH_LIMIT, RemoteStream, Stream, StreamFailure};
