//! The static-metadata reader and `PluginLibrary::open` on arbitrary files
//! (shared libraries of any format and architecture, components, garbage):
//! what a host reads before it loads anything. Never a panic; opening
//! never loads (the code under test does not `dlopen`).
#![no_main]

#[path = "scratch.rs"]
mod scratch;

use fidius_runtime::{PluginLibrary, inspect_library};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = scratch::file("plugin.so", data);
    match inspect_library(&path) {
        Ok(contents) => drop(format!("{contents:?}")),
        Err(e) => drop(e.to_string()),
    }
    match PluginLibrary::open(&path) {
        Ok(library) => drop(format!("{:?}", library.plugins())),
        Err(e) => drop(e.to_string()),
    }
});
