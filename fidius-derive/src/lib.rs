//! Proc macros for fidius. This file only holds the entry points; each
//! macro is a parse → model → validate → emit pipeline over `proc_macro2`
//! in its own module, so it is unit-testable:
//!
//! * [`macro@plugin_interface`] lives in `interface.rs` (parse, model,
//!   validate) and `interface_emit.rs` (vtable, shims, proxy);
//! * [`macro@plugin_impl`] in `implement.rs`;
//! * [`fidius_plugin_registry!`] in `registry.rs`.
//!
//! Generated code names only `::fidius::__private` paths (or the path given
//! with `crate = "…"`).
#![forbid(unsafe_code)]

mod args;
mod errors;
mod implement;
mod interface;
mod interface_emit;
mod registry;
mod types;
mod wasm_dispatch;
mod wasm_glue;
mod wit_emit;
mod wit_parse;

#[cfg(test)]
mod snapshot_tests;

use proc_macro::TokenStream;

/// Turns a trait into a fidius plugin interface.
///
/// ```ignore
/// #[fidius::plugin_interface(version = 1, buffer = PluginAllocated)]
/// pub trait ImageFilter: Send + Sync {
///     fn apply(&self, input: ApplyInput) -> ApplyOutput;
/// }
/// ```
///
/// Arguments: `version = N` (required), `buffer = PluginAllocated`
/// (optional, the default), `crate = "path"` (optional, default `::fidius`).
///
/// Generates, next to the trait: the `#[repr(C)]` vtable and `extern "C"`
/// shims, `impl fidius::Interface for dyn Trait` (name, version, canonical
/// text, hash) and the typed host proxy `<Trait>Client`.
///
/// On methods: `#[optional(since = N)]` (not in the hash; plugins may leave
/// it out, hosts get `CallError::NotImplemented`) and
/// `#[method_meta(key = "value", …)]`. On the trait (below this attribute):
/// `#[interface_meta(key = "value", …)]`. `host = HostTrait` names a
/// `#[host_interface]` plugins can call back into.
#[proc_macro_attribute]
pub fn plugin_interface(args: TokenStream, item: TokenStream) -> TokenStream {
    interface::expand(args.into(), item.into(), interface::Side::Plugin).into()
}

/// Turns a trait into a host interface: functions the host implements and
/// plugins call (`#[plugin_interface(version = 1, host = HostTrait)]`).
///
/// ```ignore
/// #[fidius::host_interface(version = 1)]
/// pub trait Services: Send + Sync {
///     fn log(&self, message: &str);
/// }
/// ```
///
/// Generates the vtable, `impl Interface` and `impl HostInterface for dyn
/// Trait`, and `<Trait>Client`, the proxy plugins receive in their
/// constructor.
#[proc_macro_attribute]
pub fn host_interface(args: TokenStream, item: TokenStream) -> TokenStream {
    interface::expand(args.into(), item.into(), interface::Side::Host).into()
}

/// Exports an impl block as a plugin: `#[plugin_impl(ImageFilter)]` on
/// `impl ImageFilter for Invert { … }`.
///
/// How instances are built, by arguments:
/// * none: `Type::default()`;
/// * `config = C`: `Type::configure(config: C) -> Result<Type, E>` with
///   `E: Display` (or `fidius::PluginError`, kept whole);
/// * `host`: `Type::new(host: HostClient) -> Type`, or with `config`,
///   `Type::configure(config: C, host: HostClient) -> Result<Type, E>`.
///
/// Optional `crate = "path"`.
#[proc_macro_attribute]
pub fn plugin_impl(args: TokenStream, item: TokenStream) -> TokenStream {
    implement::expand(args.into(), item.into()).into()
}

/// Exports the library header that marks a cdylib as a fidius plugin
/// library. Call it once per plugin cdylib: `fidius::fidius_plugin_registry!();`
#[proc_macro]
pub fn fidius_plugin_registry(input: TokenStream) -> TokenStream {
    registry::expand(input.into()).into()
}

/// Serde impls for the types `wit-bindgen` generates in a WASM plugin's
/// glue (internal: `#[plugin_impl]` asks for it).
#[doc(hidden)]
#[proc_macro_derive(WitWire)]
pub fn wit_wire(input: TokenStream) -> TokenStream {
    wasm_glue::wit_wire(input.into()).into()
}
