//! Core WebAssembly modules (from clang or Go, WASI preview 1) made
//! components: the world's type information embedded when the toolchain
//! did not embed it, and the preview 1 imports adapted to WASI 0.2 by the
//! adapter that ships with wasmtime (the crates.io
//! `wasi-preview1-component-adapter-provider`, so nothing is downloaded).

use std::path::Path;

use anyhow::Context as _;
use wasi_preview1_component_adapter_provider::{
    WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
};
use wit_component::{ComponentEncoder, StringEncoding};
use wit_parser::{Resolve, WorldId};

/// The WIT file `wit` parsed, and its world `world`.
pub(crate) fn resolve(wit: &Path, world: &str) -> anyhow::Result<(Resolve, WorldId)> {
    let mut resolve = Resolve::default();
    let (package, _) = resolve
        .push_path(wit)
        .with_context(|| format!("failed to parse the WIT `{}`", wit.display()))?;
    let world = resolve
        .select_world(&[package], Some(world))
        .with_context(|| format!("no world `{world}` in `{}`", wit.display()))?;
    Ok((resolve, world))
}

/// Embeds `world`'s type information into a core module that lacks it.
pub(crate) fn embed(module: &mut Vec<u8>, resolve: &Resolve, world: WorldId) -> anyhow::Result<()> {
    wit_component::embed_component_metadata(module, resolve, world, StringEncoding::UTF8, false)
        .context("failed to embed the world's types in the module")
}

/// The component of a core module built for WASI preview 1 as a reactor
/// (a library: no `main`), checked.
pub(crate) fn component(module: &[u8]) -> anyhow::Result<Vec<u8>> {
    ComponentEncoder::default()
        .validate(true)
        .module(module)
        .context("the module does not fit the world it was built for")?
        .adapter(
            WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
            WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
        )
        .context("failed to add the WASI preview 1 adapter")?
        .encode()
        .context("failed to make the module a component")
}
