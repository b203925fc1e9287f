//! The wire format ⇄ Python object conversion the Python backend runs on
//! every call, for every parameter, result and configuration type of the
//! fixture interfaces (records, variants, options, results, lists, maps,
//! tuples, every scalar), in the embedded CPython:
//!
//! - arbitrary bytes decoded as a value (as a call's arguments are); what
//!   decodes must encode and decode to an equal object;
//! - an arbitrary Python object (built from the bytes: `None`, bools, ints
//!   of any size, floats, strings, bytes, lists, tuples, dicts) encoded as
//!   a value (as a plugin's result is); a typed error or bytes that decode.
#![no_main]

use std::sync::OnceLock;

use fidius_guest::PluginClient;
use fidius_guest::wit::{Model, Ty, WitInterface};
use fidius_runtime::python::fuzz;
use libfuzzer_sys::fuzz_target;

/// Every interface's model and the types it converts.
type Cases = Vec<(Model, Vec<Ty>)>;

fn model<C: PluginClient>() -> (Model, Vec<Ty>)
where
    C::Interface: WitInterface,
{
    let model = <C::Interface as WitInterface>::model().expect("the fixture's model");
    let types = fuzz::types(&model);
    (model, types)
}

fn cases() -> &'static Cases {
    static CASES: OnceLock<Cases> = OnceLock::new();
    CASES.get_or_init(|| {
        vec![
            model::<fixture_api::CalculatorClient>(),
            model::<fixture_api::PolyglotClient>(),
            model::<fixture_api::ScalerClient>(),
            model::<fixture_api::HostileClient>(),
            model::<fixture_api::ScriptedClient>(),
        ]
    })
}

fuzz_target!(|data: &[u8]| {
    let [interface, pick, mode, data @ ..] = data else {
        return;
    };
    let (model, types) = &cases()[usize::from(*interface) % cases().len()];
    let ty = &types[usize::from(*pick) % types.len()];
    if mode & 1 == 0 {
        fuzz::wire_roundtrip(model, ty, data);
    } else {
        fuzz::encode_object(model, ty, data);
    }
});
