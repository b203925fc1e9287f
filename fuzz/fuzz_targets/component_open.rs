//! `WasmRuntime::open` on arbitrary files: the component reader, the
//! metadata checks and wasmtime's validation, before anything runs.
#![no_main]

#[path = "scratch.rs"]
mod scratch;

use std::sync::OnceLock;

use fidius_runtime::wasm::{WasmRuntime, WasmSettings};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    static RUNTIME: OnceLock<WasmRuntime> = OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| {
        WasmRuntime::new(WasmSettings::default().cache_dir(None)).expect("a runtime")
    });
    let path = scratch::file("plugin.wasm", data);
    match runtime.open(&path) {
        Ok(library) => drop(format!("{:?}", library.plugins())),
        Err(e) => drop(e.to_string()),
    }
});
