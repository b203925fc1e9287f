//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`): the
//! crate-private conversions between the wire format and component values,
//! so the targets run exactly what a host runs. Not an API.

use std::path::Path;

use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Type};
use wasmtime::{Config, Engine};

use super::value;

/// The parameter types of every function `component` exports, and the
/// item type of every stream-like list among them: what the fuzz target
/// decodes arbitrary bytes as.
///
/// # Panics
/// If `component` cannot be compiled (the fuzz target's own input).
pub fn export_params(component: &Path) -> Vec<Vec<Type>> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    let engine = Engine::new(&config).expect("an engine");
    let component = Component::from_file(&engine, component)
        .unwrap_or_else(|e| panic!("`{}`: {e:#}", component.display()));
    let mut out = Vec::new();
    let ty = component.component_type();
    for (_, export) in ty.exports(&engine) {
        match export.ty {
            ComponentItem::ComponentFunc(f) => out.push(f.params().map(|(_, t)| t).collect()),
            ComponentItem::ComponentInstance(instance) => {
                for (_, item) in instance.exports(&engine) {
                    if let ComponentItem::ComponentFunc(f) = item.ty {
                        out.push(f.params().map(|(_, t)| t).collect());
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// Decodes `bytes` as arguments of `types` (as the runtime does before a
/// call) and as stream items of each type; whatever decodes must encode
/// and decode again to the same values.
///
/// # Panics
/// When a decoded value does not survive the round trip: a fuzz finding.
pub fn wit_roundtrip(types: &[Type], bytes: &[u8]) {
    let no_streams = &mut |_| Err::<_, value::Error>("no streams here".into());
    if let Ok(values) = value::decode_args(bytes, types, no_streams) {
        let mut out = Vec::new();
        for (v, t) in values.iter().zip(types) {
            value::encode(v, t, &mut out).expect("a decoded argument encodes");
        }
        let again =
            value::decode_args(&out, types, no_streams).expect("an encoded argument decodes");
        assert_eq!(format!("{again:?}"), format!("{values:?}"));
    }
    for ty in types {
        if let Ok(items) = value::decode_items(bytes, ty) {
            let mut out = Vec::new();
            for item in &items {
                value::encode_item(item, ty, &mut out).expect("a decoded item encodes");
            }
            let again = value::decode_items(&out, ty).expect("an encoded item decodes");
            assert_eq!(format!("{again:?}"), format!("{items:?}"));
        }
    }
}
