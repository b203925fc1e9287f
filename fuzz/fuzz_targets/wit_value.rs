//! The wire format ⇄ component value conversion the WASM backend runs on
//! every call, for the parameter types of every function a real component
//! exports (`$FIDIUS_FUZZ_COMPONENT`, the polyglot fixture by default):
//! arbitrary bytes decoded as a call's arguments and as stream items; what
//! decodes must survive a round trip.
#![no_main]

use std::sync::OnceLock;

use fidius_runtime::wasm::fuzz;
use libfuzzer_sys::fuzz_target;

/// Each exported function's parameter types.
type Types = Vec<Vec<wasmtime::component::Type>>;

fn types() -> &'static Types {
    static TYPES: OnceLock<Types> = OnceLock::new();
    TYPES.get_or_init(|| {
        let component = std::env::var("FIDIUS_FUZZ_COMPONENT")
            .expect("$FIDIUS_FUZZ_COMPONENT: a component whose exports' types to fuzz (`cargo xtask fuzz` sets it)");
        let types = fuzz::export_params(component.as_ref());
        assert!(!types.is_empty(), "`{component}` exports no functions");
        types
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, data)) = data.split_first() else {
        return;
    };
    let types = types();
    fuzz::wit_roundtrip(&types[usize::from(pick) % types.len()], data);
});
