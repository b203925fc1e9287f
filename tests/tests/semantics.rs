//! The semantics every backend must share, run once per backend
//! (`for_each_backend!`): the same fixture crate built as a native library
//! and as a WASM component, called through the same generated clients.

use std::sync::Arc;

use fidius::{CallError, PluginClient, PluginError};
use fidius_tests::{Backend, for_each_backend};
use fixture_api::{
    AffineConfig, CalculatorClient, CheckError, Description, GreeterClient, ScalerClient, Shape,
};

for_each_backend! {

#[test]
fn every_value_kind_crosses_the_boundary() {
    let calc = BACKEND.load::<CalculatorClient>("fixture_plugins", "Basic").unwrap();
    assert_eq!(calc.plugin_name(), "Basic");
    assert_eq!(calc.add(40, 2), Ok(42));
    assert_eq!(calc.add(i64::MAX, 1), Ok(i64::MIN));
    assert_eq!(calc.echo(vec![1, 2, 3]), Ok(vec![1, 2, 3]));
    assert_eq!(calc.echo(Vec::new()), Ok(Vec::new()));
    assert_eq!(calc.count_bytes(&[0; 1000]), Ok(1000));
    assert_eq!(calc.count_bytes(&[]), Ok(0));
    assert_eq!(calc.shout("héllo"), Ok("HÉLLO".to_owned()));
    assert_eq!(
        calc.describe(Shape::Rect {
            width: 2.0,
            height: 3.0
        }),
        Ok(Description {
            name: "rect".into(),
            area: 6.0,
            tags: vec!["basic".into(), "rect".into()]
        })
    );
    assert_eq!(calc.is_even(4, false), Ok(true));
    assert_eq!(calc.is_even(4, true), Ok(false));
    assert_eq!(calc.initial("ünicode".into()), Ok(Some('ü')));
    assert_eq!(calc.initial(String::new()), Ok(None));
    calc.bump().unwrap();
    calc.bump().unwrap();
    assert_eq!(calc.bumps(), Ok(2));
}


#[test]
fn plugin_errors_come_back_typed_and_distinct_from_call_errors() {
    let calc = BACKEND.load::<CalculatorClient>("fixture_plugins", "Basic").unwrap();
    assert_eq!(calc.divide(7, 2), Ok(Ok(3)));
    let err = calc.divide(7, 0).unwrap().unwrap_err();
    assert_eq!(
        err,
        PluginError::new("division_by_zero", "cannot divide by zero").with_detail("dividend", "7")
    );
    let tiny = Shape::Circle { radius: 0.1 };
    assert_eq!(
        calc.check(
            &Shape::Rect {
                width: 2.0,
                height: 2.0
            },
            1.0
        ),
        Ok(Ok(()))
    );
    assert!(matches!(
        calc.check(&tiny, 1.0),
        Ok(Err(CheckError::TooSmall { min, .. })) if min == 1.0
    ));
    assert_eq!(
        calc.check(
            &Shape::Rect {
                width: 0.0,
                height: 1.0
            },
            1.0
        ),
        Ok(Err(CheckError::Degenerate))
    );
}


#[test]
fn a_panic_is_a_typed_error_and_the_plugin_stays_usable() {
    let calc = BACKEND.load::<CalculatorClient>("fixture_plugins", "Basic").unwrap();
    for round in 0..3 {
        let err = calc.panic_with(format!("kaboom {round}")).unwrap_err();
        assert!(
            fidius_tests::plugin_failed(&err, "panic_with", &format!("kaboom {round}")),
            "{err:?}"
        );
        assert_eq!(calc.add(1, 1), Ok(2));
    }
}

#[test]
fn sixteen_threads_call_one_client() {
    let calc = Arc::new(BACKEND.load::<CalculatorClient>("fixture_plugins", "Basic").unwrap());
    std::thread::scope(|s| {
        for t in 0..16_i64 {
            let calc = &calc;
            s.spawn(move || {
                for i in 0..500_i64 {
                    assert_eq!(calc.add(t, i), Ok(t + i));
                    assert_eq!(calc.shout("x"), Ok("X".to_owned()));
                    calc.bump().unwrap();
                }
            });
        }
    });
    assert_eq!(calc.bumps(), Ok(16 * 500));
}


#[test]
fn a_second_interface_in_the_same_library() {
    let hello: GreeterClient = BACKEND.load("fixture_plugins", "Hello").unwrap();
    assert_eq!(hello.greet("fidius"), Ok("Hello, fidius!".to_owned()));
}

#[test]
fn several_plugins_of_one_interface_in_one_library() {
    let basic: CalculatorClient = BACKEND.load("fixture_plugins", "Basic").unwrap();
    let doubler: CalculatorClient = BACKEND.load("fixture_plugins", "Doubler").unwrap();
    assert_eq!(doubler.plugin_name(), "Doubler");
    assert_eq!((basic.add(2, 3), doubler.add(2, 3)), (Ok(5), Ok(10)));
    assert_eq!(doubler.echo(vec![1, 2]), Ok(vec![1, 2, 1, 2]));
    assert_eq!(basic.add(1, 1), Ok(2), "each instance keeps its own plugin");

    // Two configured plugins of one interface, each with its own
    // configuration type.
    let affine: ScalerClient = BACKEND
        .configure("fixture_features", "Affine", &AffineConfig { mul: 3, add: 1, label: "a".into() })
        .unwrap();
    let offset: ScalerClient = BACKEND.configure("fixture_features", "Offset", &7i64).unwrap();
    assert_eq!((affine.apply(2), offset.apply(2)), (Ok(7), Ok(9)));
    assert_eq!(offset.label(), Ok("+7".to_owned()));
    let series: Vec<i64> = offset.series(3).unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(series, [7, 8, 9]);
    match BACKEND.configure::<ScalerClient, _>("fixture_features", "Offset", &-1i64) {
        Err(fidius::LoadError::Create { plugin, source: CallError::Rejected { error }, .. }) => {
            assert_eq!((plugin.as_str(), error.message.as_str()), ("Offset", "offset -1 is negative"));
        }
        other => panic!("expected a rejected configuration, got {other:?}"),
    }
}

#[test]
fn unknown_plugins_are_load_errors_naming_what_is_there() {
    let err = BACKEND
        .load::<CalculatorClient>("fixture_plugins", "Nope")
        .unwrap_err();
    assert!(
        matches!(&err, fidius::LoadError::NoSuchPlugin { plugin, available, .. }
            if plugin == "Nope"
                && available.contains(&"Calculator/Basic".to_owned())
                && available.contains(&"Calculator/Doubler".to_owned())),
        "{err:?}"
    );
    let _ = Backend::Native;
}

}

mod configured {
    use super::*;
    use fidius::LoadError;
    use fixture_api::{HostileClient, HostileConfig};

    fn make(backend: Backend, label: &str) -> Result<HostileClient, LoadError> {
        backend.configure(
            "fixture_hostile",
            "Guest",
            &HostileConfig {
                label: label.into(),
            },
        )
    }

    for_each_backend! {
        #[test]
        fn instances_keep_their_own_configuration_and_state() {
            let a = make(BACKEND, "alpha").unwrap();
            let b = make(BACKEND, "beta").unwrap();
            assert_eq!(a.label(), Ok("alpha".to_owned()));
            assert_eq!(a.label(), Ok("alpha".to_owned()));
            assert_eq!(b.label(), Ok("beta".to_owned()));
            assert_eq!((a.calls(), b.calls()), (Ok(2), Ok(1)));
            std::thread::scope(|s| {
                for client in [&a, &b] {
                    s.spawn(move || {
                        for _ in 0..100 {
                            client.label().unwrap();
                        }
                    });
                }
            });
            assert_eq!((a.calls(), b.calls()), (Ok(102), Ok(101)));
        }

        #[test]
        fn a_rejected_configuration_is_a_typed_load_error() {
            let err = make(BACKEND, "").unwrap_err();
            match err {
                LoadError::Create { plugin, source: CallError::Rejected { error }, .. } => {
                    assert_eq!(plugin, "Guest");
                    assert_eq!(error.message, "the label must not be empty");
                }
                other => panic!("expected Rejected, got {other:?}"),
            }
            let err = make(BACKEND, "panic").unwrap_err();
            assert!(
                matches!(&err, LoadError::Create { source, .. }
                    if fidius_tests::plugin_failed(source, "create", "configure was told to panic")),
                "{err:?}"
            );
        }

        #[test]
        fn a_configuration_of_the_wrong_shape_names_the_config_type() {
            let err = BACKEND
                .configure::<HostileClient, _>("fixture_hostile", "Guest", &5u8)
                .unwrap_err();
            assert!(
                matches!(&err, LoadError::Create { source: CallError::ConfigDecode { message }, .. }
                    if message.contains("HostileConfig")),
                "{err:?}"
            );
            let err = BACKEND.load::<HostileClient>("fixture_hostile", "Guest").unwrap_err();
            assert!(
                matches!(&err, LoadError::NeedsConfig { plugin, config_type, .. }
                    if plugin == "Guest" && config_type == "HostileConfig"),
                "{err:?}"
            );
        }
    }
}
