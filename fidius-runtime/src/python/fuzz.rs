//! Entry points for the `python_value` fuzz target in `fuzz/` (feature
//! `fuzzing`): the crate-private conversions between the wire format and
//! Python objects, so the target runs exactly what a host runs. Not an
//! API.

use fidius_guest::wit::{Model, Returns, Ty};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};

use super::value;

/// Every type a call converts with `model`: each method's parameters and
/// result, and the configuration.
pub fn types(model: &Model) -> Vec<Ty> {
    let mut out: Vec<Ty> = model.config.iter().cloned().collect();
    for method in &model.methods {
        out.extend(method.params.iter().map(|(_, ty)| ty.clone()));
        match &method.returns {
            Returns::Plain(ty) => out.push(ty.clone()),
            Returns::Fallible(ok, err) => out.extend([ok.clone(), err.clone()]),
        }
    }
    out
}

/// Decodes `bytes` as a value of `ty` into a Python object (as a call's
/// arguments are); whatever decodes must encode, and decode again to an
/// equal object (compared by `repr`: a NaN's payload may change in the
/// float round trip, which the wire format does not promise to keep).
///
/// # Panics
/// When a decoded value does not survive the round trip: a fuzz finding.
pub fn wire_roundtrip(model: &Model, ty: &Ty, bytes: &[u8]) {
    super::attach(|py| {
        let mut input = bytes;
        let Ok(object) = value::to_py(py, model, ty, &mut input) else {
            return;
        };
        let mut out = Vec::new();
        value::from_py(model, ty, &object, &mut out)
            .unwrap_or_else(|e| panic!("a decoded value does not encode: {e}"));
        let mut rest = out.as_slice();
        let again = value::to_py(py, model, ty, &mut rest)
            .unwrap_or_else(|e| panic!("an encoded value does not decode: {e}"));
        assert!(
            rest.is_empty(),
            "bytes left after decoding what was encoded"
        );
        let repr = |o: &Bound<'_, PyAny>| o.repr().map(|r| r.to_string()).unwrap_or_default();
        assert_eq!(
            repr(&again),
            repr(&object),
            "the round trip changed the value"
        );
    });
}

/// Builds a Python object from `bytes` (a small grammar of `None`, bools,
/// ints of any size, floats, strings, bytes, lists, tuples and dicts) and
/// encodes it as `ty` (as a plugin's result is): any object must give
/// bytes or a typed error, and what encodes must decode.
///
/// # Panics
/// When what encoded does not decode: a fuzz finding.
pub fn encode_object(model: &Model, ty: &Ty, bytes: &[u8]) {
    super::attach(|py| {
        let mut input = bytes;
        let Ok(object) = object(py, &mut input, 0) else {
            return;
        };
        let mut out = Vec::new();
        if value::from_py(model, ty, &object, &mut out).is_ok() {
            let mut rest = out.as_slice();
            value::to_py(py, model, ty, &mut rest)
                .unwrap_or_else(|e| panic!("an encoded value does not decode: {e}"));
            assert!(
                rest.is_empty(),
                "bytes left after decoding what was encoded"
            );
        }
    });
}

fn object<'py>(py: Python<'py>, input: &mut &[u8], depth: u32) -> PyResult<Bound<'py, PyAny>> {
    let byte = |input: &mut &[u8]| -> u8 {
        let (&b, rest) = input.split_first().unwrap_or((&0, &[]));
        *input = rest;
        b
    };
    let take = |input: &mut &[u8], n: usize| -> Vec<u8> {
        let n = n.min(input.len());
        let (head, rest) = input.split_at(n);
        *input = rest;
        head.to_vec()
    };
    let tag = if depth > 4 {
        byte(input) % 6
    } else {
        byte(input) % 9
    };
    Ok(match tag {
        0 => py.None().into_bound(py),
        1 => (byte(input) & 1 == 1)
            .into_pyobject(py)?
            .to_owned()
            .into_any(),
        2 => {
            // An int of up to 16 bytes, signed: past every range.
            let n = usize::from(byte(input) % 17);
            let raw = take(input, n);
            let int = py.get_type::<pyo3::types::PyInt>();
            int.call_method1("from_bytes", (PyBytes::new(py, &raw), "little"))?
                .call_method0("__neg__")
                .and_then(|neg| {
                    if raw.first().is_some_and(|b| b & 1 == 1) {
                        Ok(neg)
                    } else {
                        neg.call_method0("__neg__")
                    }
                })?
        }
        3 => {
            let raw = take(input, 8);
            let mut b = [0u8; 8];
            b[..raw.len()].copy_from_slice(&raw);
            f64::from_le_bytes(b).into_pyobject(py)?.into_any()
        }
        4 => {
            let n = usize::from(byte(input) % 32);
            String::from_utf8_lossy(&take(input, n))
                .into_pyobject(py)?
                .into_any()
        }
        5 => {
            let n = usize::from(byte(input) % 64);
            PyBytes::new(py, &take(input, n)).into_any()
        }
        6 | 7 => {
            let n = byte(input) % 8;
            let items = (0..n)
                .map(|_| object(py, input, depth + 1))
                .collect::<PyResult<Vec<_>>>()?;
            if tag == 6 {
                PyList::new(py, items)?.into_any()
            } else {
                PyTuple::new(py, items)?.into_any()
            }
        }
        _ => {
            let dict = PyDict::new(py);
            for _ in 0..byte(input) % 6 {
                let key = object(py, input, depth + 1)?;
                let value = object(py, input, depth + 1)?;
                // Unhashable keys are skipped.
                let _ = dict.set_item(key, value);
            }
            dict.into_any()
        }
    })
}
