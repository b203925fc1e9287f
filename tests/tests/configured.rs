//! Configured instances: `#[plugin_impl(Scaler, config = AffineConfig)]`.

use std::sync::Arc;

use fidius::{CallError, LoadError, PluginLibrary};
use fidius_tests::fixture;
use fixture_api::{AffineConfig, ScalerClient, StreamsClient};

fn features() -> PluginLibrary {
    PluginLibrary::open(fixture("fixture_features")).unwrap()
}

fn affine(mul: i64, add: i64, label: &str) -> AffineConfig {
    AffineConfig {
        mul,
        add,
        label: label.into(),
    }
}

#[test]
fn the_config_type_is_in_the_static_metadata() {
    let lib = features();
    let config = |name: &str| {
        lib.plugins()
            .iter()
            .find(|p| p.plugin_name == name)
            .unwrap()
            .config_type
            .clone()
    };
    assert_eq!(config("Affine").as_deref(), Some("AffineConfig"));
    assert_eq!(config("Offset").as_deref(), Some("i64"));
    assert_eq!(config("Streamer"), None);
}

#[test]
fn instances_see_their_own_config_and_coexist() {
    let lib = features();
    let double: ScalerClient = lib.configure("Affine", &affine(2, 0, "double")).unwrap();
    let shift: ScalerClient = lib.configure("Affine", &affine(1, 100, "shift")).unwrap();
    assert_eq!(double.apply(21).unwrap(), 42);
    assert_eq!(shift.apply(21).unwrap(), 121);
    assert_eq!(double.label().unwrap(), "double");
    assert_eq!(shift.label().unwrap(), "shift");

    // Concurrently, from many threads.
    let clients = Arc::new([double, shift]);
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let clients = clients.clone();
            std::thread::spawn(move || {
                for x in 0..1000i64 {
                    assert_eq!(
                        clients[t % 2].apply(x).unwrap(),
                        if t % 2 == 0 { 2 * x } else { x + 100 }
                    );
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }

    // Streams work on configured instances too.
    let series: Vec<i64> = clients[1]
        .series(4)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(series, [100, 101, 102, 103]);

    // Another plugin type with a scalar config.
    let offset: ScalerClient = lib.instance("Offset").config(&7i64).build().unwrap();
    assert_eq!(offset.apply(1).unwrap(), 8);
}

#[test]
fn dropping_the_handle_runs_drop_exactly_once() {
    let lib = features();
    let probe: ScalerClient = lib.configure("Affine", &affine(1, 0, "drop-test")).unwrap();
    assert_eq!(probe.live().unwrap(), 1);
    let a: ScalerClient = lib.configure("Affine", &affine(3, 0, "drop-test")).unwrap();
    let a2 = a.clone();
    assert_eq!(probe.live().unwrap(), 2);
    drop(a);
    assert_eq!(probe.live().unwrap(), 2, "a clone still holds it");
    assert_eq!(a2.apply(1).unwrap(), 3);
    drop(a2);
    assert_eq!(probe.live().unwrap(), 1, "dropped exactly once");
}

#[test]
fn a_rejected_config_is_a_typed_error_and_no_instance() {
    let lib = features();
    let probe: ScalerClient = lib.configure("Affine", &affine(1, 0, "zero")).unwrap();
    match lib.configure::<ScalerClient, _>("Affine", &affine(0, 1, "zero")) {
        Err(LoadError::Create {
            plugin,
            source: CallError::Rejected { error },
            ..
        }) => {
            assert_eq!(plugin, "Affine");
            assert_eq!(error.code, "invalid_config");
            assert_eq!(error.message, "`mul` must not be zero");
            assert_eq!(error.details["field"], "mul");
        }
        other => panic!("expected a rejected config, got {other:?}"),
    }
    // A `String` error becomes a message with code `rejected`.
    match lib.configure::<ScalerClient, _>("Offset", &-5i64) {
        Err(LoadError::Create {
            source: CallError::Rejected { error },
            ..
        }) => {
            assert_eq!(
                (error.code.as_str(), error.message.as_str()),
                ("rejected", "offset -5 is negative")
            );
        }
        other => panic!("expected a rejected config, got {other:?}"),
    }
    assert_eq!(probe.live().unwrap(), 1, "no instance was left behind");
}

#[test]
fn a_panicking_configure_is_a_typed_error() {
    let lib = features();
    match lib.configure::<ScalerClient, _>("Affine", &affine(1, 1, "panic")) {
        Err(LoadError::Create {
            source: CallError::Panic { method, message },
            ..
        }) => {
            assert_eq!(method, "create");
            assert_eq!(message, "configure was told to panic");
        }
        other => panic!("expected a panic, got {other:?}"),
    }
    // The plugin stays usable.
    let ok: ScalerClient = lib.configure("Affine", &affine(2, 2, "fine")).unwrap();
    assert_eq!(ok.apply(1).unwrap(), 4);
}

#[test]
fn a_config_of_the_wrong_shape_names_the_config_type() {
    let lib = features();
    #[derive(serde::Serialize)]
    struct Wrong {
        name: String,
    }
    match lib.configure::<ScalerClient, _>("Affine", &Wrong { name: "x".into() }) {
        Err(LoadError::Create {
            source: CallError::ConfigDecode { message },
            ..
        }) => {
            assert!(message.contains("AffineConfig"), "{message}");
        }
        other => panic!("expected a config decode error, got {other:?}"),
    }
}

#[test]
fn configured_and_unconfigured_plugins_are_not_mixed_up() {
    let lib = features();
    match lib.load::<ScalerClient>("Affine") {
        Err(LoadError::NeedsConfig { config_type, .. }) => assert_eq!(config_type, "AffineConfig"),
        other => panic!("expected NeedsConfig, got {other:?}"),
    }
    match lib.configure::<StreamsClient, _>("Streamer", &1u8) {
        Err(LoadError::NotConfigurable { plugin, .. }) => assert_eq!(plugin, "Streamer"),
        other => panic!("expected NotConfigurable, got {other:?}"),
    }
    // Unconfigured plugins keep working as before.
    let streamer: StreamsClient = lib.load("Streamer").unwrap();
    assert_eq!(streamer.sum(1..=4u64).unwrap(), 10);
}
