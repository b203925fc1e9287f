//! The component metadata reader (the fidius custom section of a WASM
//! component) on arbitrary bytes, in memory.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match fidius_runtime::fuzz_component_metadata(data) {
        Ok(plugins) => drop(format!("{plugins:?}")),
        Err(e) => drop(e.to_string()),
    }
});
