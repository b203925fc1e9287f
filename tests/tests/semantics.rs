//! The semantics every backend must share, run once per backend
//! (`for_each_backend!`): the same fixture crate built as a native library
//! and as a WASM component, called through the same generated clients.

use std::sync::Arc;

use fidius::{CallError, PluginClient, PluginError};
use fidius_tests::{Backend, for_each_backend};
use fixture_api::{CalculatorClient, CheckError, Description, GreeterClient, Shape};

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
        assert_eq!(
            err,
            CallError::Panic {
                method: "panic_with",
                message: format!("kaboom {round}")
            }
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
fn unknown_plugins_are_load_errors_naming_what_is_there() {
    let err = BACKEND
        .load::<CalculatorClient>("fixture_plugins", "Nope")
        .unwrap_err();
    assert!(
        matches!(&err, fidius::LoadError::NoSuchPlugin { plugin, available, .. }
            if plugin == "Nope" && available.contains(&"Calculator/Basic".to_owned())),
        "{err:?}"
    );
    let _ = Backend::Native;
}

}
