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
#[proc_macro_attribute]
pub fn plugin_interface(args: TokenStream, item: TokenStream) -> TokenStream {
    interface::expand(args.into(), item.into()).into()
}

/// Exports an impl block as a plugin: `#[plugin_impl(ImageFilter)]` on
/// `impl ImageFilter for Invert { … }`. The type must implement `Default`
/// (the host creates one instance per client). Optional `crate = "path"`.
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
