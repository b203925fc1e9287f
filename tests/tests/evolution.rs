//! Interface evolution with real fixture crates: `Shapes` v1 and v2 (v2
//! adds two `#[optional(since = 2)]` methods, same required methods), a
//! plugin built against each, and a plugin that changed an optional
//! method's signature. See `docs/src/evolution.md` for the rules.

use fidius::runtime::InterfaceField;
use fidius::{CallError, Interface, LoadError, PluginClient, PluginLibrary};
use fidius_tests::fixture;

use evolution_api_v1::ShapesClient as V1Client;
use evolution_api_v2::ShapesClient as V2Client;

fn v1_plugins() -> PluginLibrary {
    PluginLibrary::open(fixture("evolution_plugin_v1")).unwrap()
}

fn v2_plugins() -> PluginLibrary {
    PluginLibrary::open(fixture("evolution_plugin_v2")).unwrap()
}

#[test]
fn optional_methods_do_not_change_the_hash() {
    let v1 = <dyn evolution_api_v1::Shapes as Interface>::INFO;
    let v2 = <dyn evolution_api_v2::Shapes as Interface>::INFO;
    assert_eq!((v1.version, v2.version), (1, 2));
    assert_eq!(v1.hash, v2.hash);
    assert_eq!(v1.canonical, v2.canonical);
    // Vtable order: required first, then optional in declaration order.
    let names: Vec<_> = v2.methods.iter().map(|m| (m.name, m.since)).collect();
    assert_eq!(
        names,
        [
            ("name", None),
            ("area", None),
            ("describe", Some(2)),
            ("corners", Some(2))
        ]
    );
}

/// A v2 host on a v1 plugin: the optional methods are `NotImplemented`.
fn v2_host_on_a_v1_plugin(square: V2Client) {
    assert_eq!(square.name().unwrap(), "square (v1)");
    assert_eq!(square.area(3.0).unwrap(), 9.0);
    assert!(square.supports("name"));
    assert!(!square.supports("describe"));
    assert!(!square.supports("corners"));
    assert!(!square.supports("no_such_method"));
    assert_eq!(
        square.describe(1).unwrap_err(),
        CallError::NotImplemented { method: "describe" }
    );
    assert_eq!(
        square.corners().unwrap_err().to_string(),
        "plugin does not implement optional method `corners`"
    );
    // Still usable afterwards.
    assert_eq!(square.area(2.0).unwrap(), 4.0);
}

/// A v1 host on v2 plugins: the extra methods are ignored.
fn v1_host_on_v2_plugins(load: impl Fn(&str) -> V1Client) {
    for (name, expected) in [("Triangle", "triangle (v2)"), ("Hexagon", "hexagon (v2)")] {
        let client = load(name);
        assert_eq!(client.name().unwrap(), expected);
        assert!(client.area(2.0).unwrap() > 0.0);
        assert_eq!(client.interface_info().methods.len(), 2);
    }
}

/// Both v2 plugins in a v2 host: `Triangle` leaves `corners` out.
fn v2_host_on_v2_plugins(load: impl Fn(&str) -> V2Client) {
    let triangle = load("Triangle");
    assert_eq!(triangle.describe(3).unwrap(), "a triangle, detail level 3");
    assert!(!triangle.supports("corners"));
    assert_eq!(
        triangle.corners().unwrap_err(),
        CallError::NotImplemented { method: "corners" }
    );
    let hexagon = load("Hexagon");
    assert!(hexagon.supports("corners"));
    assert_eq!(hexagon.corners().unwrap(), 6);
}

#[test]
fn v2_host_loads_a_v1_plugin_and_gets_not_implemented() {
    v2_host_on_a_v1_plugin(v1_plugins().load("Square").unwrap());
}

#[test]
fn v1_host_loads_a_v2_plugin_and_ignores_extra_methods() {
    let lib = v2_plugins();
    v1_host_on_v2_plugins(|name| lib.load(name).unwrap());
}

#[test]
fn v2_host_on_v2_plugins_calls_what_each_implements() {
    let lib = v2_plugins();
    v2_host_on_v2_plugins(|name| lib.load(name).unwrap());
}

/// The same plugins built as WebAssembly components, each against its own
/// interface version's WIT.
mod wasm {
    use super::*;

    fn open(fixture: &str) -> fidius::wasm::WasmLibrary {
        fidius_tests::wasm_runtime()
            .open(fidius_tests::wasm_fixture(fixture))
            .unwrap()
    }

    #[test]
    fn v2_host_loads_a_v1_component_and_gets_not_implemented() {
        v2_host_on_a_v1_plugin(open("evolution_plugin_v1").load("Square").unwrap());
    }

    #[test]
    fn v1_host_loads_a_v2_component_and_ignores_extra_methods() {
        let lib = open("evolution_plugin_v2");
        v1_host_on_v2_plugins(|name| lib.load(name).unwrap());
    }

    #[test]
    fn v2_host_on_v2_components_calls_what_each_implements() {
        let lib = open("evolution_plugin_v2");
        v2_host_on_v2_plugins(|name| lib.load(name).unwrap());
    }
}

#[test]
fn capability_bits_follow_the_impl_block() {
    let lib = v2_plugins();
    let triangle: V2Client = lib.load("Triangle").unwrap();
    assert!(triangle.supports("describe"));
    assert!(!triangle.supports("corners"), "left out of the impl block");
    assert_eq!(triangle.describe(3).unwrap(), "a triangle, detail level 3");
    assert_eq!(
        triangle.corners().unwrap_err(),
        CallError::NotImplemented { method: "corners" }
    );
    let hexagon: V2Client = lib.load("Hexagon").unwrap();
    assert!(hexagon.supports("corners"));
    assert_eq!(hexagon.corners().unwrap(), 6);

    // The same facts, from the file alone.
    let info = |plugin: &str| {
        lib.plugins()
            .iter()
            .find(|p| p.plugin_name == plugin)
            .unwrap()
            .clone()
    };
    let triangle = info("Triangle");
    let flags: Vec<_> = triangle
        .methods
        .iter()
        .map(|m| (m.name.as_str(), m.since, m.implemented))
        .collect();
    assert_eq!(
        flags,
        [
            ("name", None, true),
            ("area", None, true),
            ("describe", Some(2), true),
            ("corners", Some(2), false)
        ]
    );
    assert_eq!(triangle.capabilities(), 0b01);
    assert_eq!(info("Hexagon").capabilities(), 0b11);
}

#[test]
fn metadata_is_readable_from_the_host_and_the_file() {
    let info = <dyn evolution_api_v2::Shapes as Interface>::INFO;
    assert_eq!(info.meta("since_v2"), Some("describe, corners"));
    assert_eq!(
        info.method("area").unwrap().meta("unit"),
        Some("square metres")
    );
    assert_eq!(info.method("describe").unwrap().meta("cost"), Some("low"));
    assert_eq!(info.method("corners").unwrap().meta("cost"), None);

    let lib = v2_plugins();
    let from_file = &lib.plugins()[0];
    assert_eq!(
        from_file.interface_meta("since_v2"),
        Some("describe, corners")
    );
    let area = from_file.methods.iter().find(|m| m.name == "area").unwrap();
    assert_eq!(area.meta("unit"), Some("square metres"));
}

#[test]
fn changing_an_optional_signature_is_refused_at_load() {
    let lib = PluginLibrary::open(fixture("evolution_plugin_bad_optional")).unwrap();
    match lib.load::<V2Client>("Circle").unwrap_err() {
        LoadError::InterfaceMismatch {
            field,
            expected,
            found,
            ..
        } => {
            assert_eq!(field, InterfaceField::Method("describe".into()));
            assert_eq!(expected, "fn describe(u8)->String");
            assert_eq!(found, "fn describe(u16)->String");
        }
        other => panic!("expected an interface mismatch, got {other:?}"),
    }
    // A v1 host does not know `describe`, so the plugin is compatible.
    let circle: V1Client = lib.load("Circle").unwrap();
    assert_eq!(circle.name().unwrap(), "circle");
}
