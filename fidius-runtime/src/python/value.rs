//! The fidius wire format ⇄ Python objects, guided by the interface's types
//! ([`Model`]): the same walk `wasm/value.rs` does for component values.
//!
//! | WIT type | Python |
//! |---|---|
//! | `bool`, integers, floats | `bool`, `int` (range-checked), `float` |
//! | `char`, `string` | `str` |
//! | `list<u8>` | `bytes` (`bytearray` and lists of ints accepted) |
//! | `list<T>` | `list` (any iterable accepted; a `dict` for a map's pairs) |
//! | `option<T>` | `None` or the value |
//! | `tuple<…>` | `tuple` |
//! | record | `dict` by field name (any object with the fields as attributes accepted) |
//! | enum, variant | the case's name (`"Degenerate"`), or a one-key `dict` (`{"Circle": {...}}`) |
//!
//! Field names are the Rust ones (`snake_case`), case names the Rust
//! variants' (`UpperCamelCase`).

use fidius_guest::wit::{Def, Model, Ty, upper_camel as camel};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

/// Decodes one value of type `ty` off `input` into a Python object.
pub(super) fn to_py<'py>(
    py: Python<'py>,
    model: &Model,
    ty: &Ty,
    input: &mut &[u8],
) -> Result<Bound<'py, PyAny>, String> {
    let py_err = |e: PyErr| e.to_string();
    Ok(match ty {
        Ty::Unit => py.None().into_bound(py),
        Ty::Bool => match take(input, 1)?[0] {
            0 => PyBool::new(py, false).to_owned().into_any(),
            1 => PyBool::new(py, true).to_owned().into_any(),
            b => return Err(format!("invalid bool byte {b}")),
        },
        Ty::U8 => PyInt::new(py, take(input, 1)?[0]).into_any(),
        Ty::S8 => PyInt::new(py, take(input, 1)?[0] as i8).into_any(),
        Ty::U16 | Ty::U32 | Ty::U64 => {
            let v = varint(input)?;
            let fits = match ty {
                Ty::U16 => u16::try_from(v).is_ok(),
                Ty::U32 => u32::try_from(v).is_ok(),
                _ => true,
            };
            if !fits {
                return Err(format!("{v} is out of range for {}", name(ty)));
            }
            PyInt::new(py, v).into_any()
        }
        Ty::S16 | Ty::S32 | Ty::S64 => {
            let raw = varint(input)?;
            let v = ((raw >> 1) as i64) ^ -((raw & 1) as i64);
            PyInt::new(py, v).into_any()
        }
        Ty::F32 => {
            let b = take(input, 4)?;
            let v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            PyFloat::new(py, f64::from(v)).into_any()
        }
        Ty::F64 => {
            let b = take(input, 8)?;
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(b);
            PyFloat::new(py, f64::from_le_bytes(bytes)).into_any()
        }
        Ty::Char | Ty::String => {
            let s = string(input)?;
            if *ty == Ty::Char && s.chars().count() != 1 {
                return Err(format!("{s:?} is not one char"));
            }
            PyString::new(py, s).into_any()
        }
        Ty::List(item) if **item == Ty::U8 => {
            let len = length(input)?;
            PyBytes::new(py, take(input, len)?).into_any()
        }
        Ty::List(item) => {
            let len = length(input)?;
            let list = PyList::empty(py);
            for i in 0..len {
                let v = to_py(py, model, item, input).map_err(|e| format!("item {i}: {e}"))?;
                list.append(v).map_err(py_err)?;
            }
            list.into_any()
        }
        Ty::Option(inner) => match take(input, 1)?[0] {
            0 => py.None().into_bound(py),
            1 => to_py(py, model, inner, input)?,
            b => return Err(format!("invalid option tag {b}")),
        },
        Ty::Tuple(items) => {
            let mut values = Vec::with_capacity(items.len());
            for (i, t) in items.iter().enumerate() {
                values.push(to_py(py, model, t, input).map_err(|e| format!("element {i}: {e}"))?);
            }
            PyTuple::new(py, values).map_err(py_err)?.into_any()
        }
        Ty::Result(ok, err) => {
            let (case, t) = match varint(input)? {
                0 => ("Ok", ok),
                1 => ("Err", err),
                n => return Err(format!("invalid result tag {n}")),
            };
            let dict = PyDict::new(py);
            dict.set_item(case, to_py(py, model, t, input)?)
                .map_err(py_err)?;
            dict.into_any()
        }
        Ty::Named(type_name) => match model.def(type_name) {
            Some(Def::Record(fields)) => {
                let dict = PyDict::new(py);
                for (field, t) in fields {
                    let v = to_py(py, model, t, input)
                        .map_err(|e| format!("field `{}` of `{type_name}`: {e}", snake(field)))?;
                    dict.set_item(snake(field), v).map_err(py_err)?;
                }
                dict.into_any()
            }
            Some(Def::Enum(cases)) => {
                let index = varint(input)? as usize;
                let case = cases
                    .get(index)
                    .ok_or_else(|| format!("`{type_name}` has no case number {index}"))?;
                PyString::new(py, &camel(case)).into_any()
            }
            Some(Def::Variant(cases)) => {
                let index = varint(input)? as usize;
                let (case, payload) = cases
                    .get(index)
                    .ok_or_else(|| format!("`{type_name}` has no case number {index}"))?;
                match payload {
                    None => PyString::new(py, &camel(case)).into_any(),
                    Some(t) => {
                        let v = to_py(py, model, t, input)
                            .map_err(|e| format!("case `{}`: {e}", camel(case)))?;
                        let dict = PyDict::new(py);
                        dict.set_item(camel(case), v).map_err(py_err)?;
                        dict.into_any()
                    }
                }
            }
            _ => return Err(format!("unknown type `{type_name}`")),
        },
        Ty::Stream(_) => return Err("streams do not cross as values".into()),
        _ => return Err(format!("the type {ty:?} has no Python form")),
    })
}

/// Encodes Python object `value` as type `ty`; the error names what did
/// not fit, innermost last (`field `area` of `description`: expected a
/// float, found str`).
pub(super) fn from_py(
    model: &Model,
    ty: &Ty,
    value: &Bound<'_, PyAny>,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let found = || {
        value
            .get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| "?".into())
    };
    let expected = |what: &str| format!("expected {what}, found {}", found());
    match ty {
        Ty::Unit => {
            if !value.is_none() {
                return Err(expected("None"));
            }
        }
        // Checked as a scalar, then written in the wire format.
        Ty::Bool
        | Ty::U8
        | Ty::S8
        | Ty::U16
        | Ty::S16
        | Ty::U32
        | Ty::S32
        | Ty::U64
        | Ty::S64
        | Ty::F32
        | Ty::F64 => {
            let bits = scalar_from_py(ty, value)?;
            match ty {
                Ty::Bool | Ty::U8 | Ty::S8 => out.push(bits as u8),
                Ty::F32 => out.extend_from_slice(&(bits as u32).to_le_bytes()),
                Ty::F64 => out.extend_from_slice(&bits.to_le_bytes()),
                Ty::S16 | Ty::S32 | Ty::S64 => {
                    let v = bits as i64;
                    put_varint(out, ((v << 1) ^ (v >> 63)) as u64);
                }
                _ => put_varint(out, bits),
            }
        }
        Ty::Char | Ty::String => {
            let s = value
                .cast::<PyString>()
                .map_err(|_| expected("a str"))?
                .to_str()
                .map_err(|e| e.to_string())?;
            if *ty == Ty::Char && s.chars().count() != 1 {
                return Err(format!("expected one character, found {s:?}"));
            }
            put_varint(out, s.len() as u64);
            out.extend_from_slice(s.as_bytes());
        }
        Ty::List(item) if **item == Ty::U8 && value.is_instance_of::<PyBytes>() => {
            let bytes = value
                .cast::<PyBytes>()
                .map_err(|e| e.to_string())?
                .as_bytes();
            put_varint(out, bytes.len() as u64);
            out.extend_from_slice(bytes);
        }
        Ty::List(item) => {
            if value.is_instance_of::<PyString>() {
                return Err(expected("a list"));
            }
            // A map's pairs (`list<tuple<k, v>>`) may come as a dict.
            let items = match value.cast::<PyDict>() {
                Ok(dict) => dict.items().into_any(),
                Err(_) => value.clone(),
            };
            let iter = items.try_iter().map_err(|_| expected("a list"))?;
            let mut body = Vec::new();
            let mut count = 0u64;
            for (i, v) in iter.enumerate() {
                let v = v.map_err(|e| e.to_string())?;
                from_py(model, item, &v, &mut body).map_err(|e| format!("item {i}: {e}"))?;
                count += 1;
            }
            put_varint(out, count);
            out.extend_from_slice(&body);
        }
        Ty::Option(inner) => {
            if value.is_none() {
                out.push(0);
            } else {
                out.push(1);
                from_py(model, inner, value, out)?;
            }
        }
        Ty::Tuple(items) => {
            let tuple = value.cast::<PyTuple>().map_err(|_| expected("a tuple"))?;
            if tuple.len() != items.len() {
                return Err(format!(
                    "expected a tuple of {}, found one of {}",
                    items.len(),
                    tuple.len()
                ));
            }
            for (i, (t, v)) in items.iter().zip(tuple.iter()).enumerate() {
                from_py(model, t, &v, out).map_err(|e| format!("element {i}: {e}"))?;
            }
        }
        Ty::Result(ok, err) => {
            let (index, t, v) = one_key(value, &["Ok", "Err"])
                .map(|(i, v)| if i == 0 { (0, ok, v) } else { (1, err, v) })
                .ok_or_else(|| expected("{\"Ok\": …} or {\"Err\": …}"))?;
            put_varint(out, index);
            from_py(model, t, &v, out)?;
        }
        Ty::Named(type_name) => match model.def(type_name) {
            Some(Def::Record(fields)) => {
                let dict = value.cast::<PyDict>().ok();
                for (field, t) in fields {
                    let key = snake(field);
                    let v = match &dict {
                        Some(d) => d.get_item(&key).map_err(|e| e.to_string())?,
                        None => value.getattr(key.as_str()).ok(),
                    };
                    let v = v.ok_or_else(|| {
                        format!("`{type_name}` has no field `{key}` ({})", found())
                    })?;
                    from_py(model, t, &v, out)
                        .map_err(|e| format!("field `{key}` of `{type_name}`: {e}"))?;
                }
            }
            Some(Def::Enum(cases)) => {
                let index = case_index(value, cases.iter().map(String::as_str))
                    .ok_or_else(|| format!("{} is no case of `{type_name}`", describe(value)))?;
                put_varint(out, index as u64);
            }
            Some(Def::Variant(cases)) => {
                let names: Vec<&str> = cases.iter().map(|(c, _)| c.as_str()).collect();
                let (index, payload) = if value.is_instance_of::<PyString>() {
                    let index = case_index(value, names.iter().copied()).ok_or_else(|| {
                        format!("{} is no case of `{type_name}`", describe(value))
                    })?;
                    (index, None)
                } else {
                    let camels: Vec<String> = names.iter().map(|c| camel(c)).collect();
                    let keys: Vec<&str> = camels.iter().map(String::as_str).collect();
                    let (index, v) = one_key(value, &keys).ok_or_else(|| {
                        format!(
                            "expected a case of `{type_name}` (a case name, or a one-key dict \
                             such as {{\"{}\": …}}), found {}",
                            keys.first().copied().unwrap_or("Case"),
                            describe(value)
                        )
                    })?;
                    (index as usize, Some(v))
                };
                let (case, t) = &cases[index];
                put_varint(out, index as u64);
                match (t, payload) {
                    (None, _) => {}
                    (Some(t), Some(v)) => from_py(model, t, &v, out)
                        .map_err(|e| format!("case `{}` of `{type_name}`: {e}", camel(case)))?,
                    (Some(_), None) => {
                        return Err(format!(
                            "case `{}` of `{type_name}` carries a value: pass {{\"{}\": …}}",
                            camel(case),
                            camel(case)
                        ));
                    }
                }
            }
            _ => return Err(format!("unknown type `{type_name}`")),
        },
        Ty::Stream(_) => return Err("streams do not cross as values".into()),
        _ => return Err(format!("the type {ty:?} has no Python form")),
    }
    Ok(())
}

fn describe(value: &Bound<'_, PyAny>) -> String {
    value
        .repr()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// The position of the case `value` (a `str`) names, by Rust or WIT name.
fn case_index<'a>(value: &Bound<'_, PyAny>, cases: impl Iterator<Item = &'a str>) -> Option<usize> {
    let s = value.cast::<PyString>().ok()?.to_str().ok()?.to_owned();
    cases.into_iter().position(|c| c == s || camel(c) == s)
}

/// `(index in keys, value)` of a one-key dict whose key is one of `keys`.
fn one_key<'py>(value: &Bound<'py, PyAny>, keys: &[&str]) -> Option<(u64, Bound<'py, PyAny>)> {
    let dict = value.cast::<PyDict>().ok()?;
    if dict.len() != 1 {
        return None;
    }
    let (k, v) = dict
        .items()
        .iter()
        .next()
        .and_then(|kv| kv.extract::<(String, Bound<'py, PyAny>)>().ok())?;
    let index = keys.iter().position(|c| *c == k)?;
    Some((index as u64, v))
}

fn name(ty: &Ty) -> &'static str {
    match ty {
        Ty::U8 => "u8",
        Ty::S8 => "i8",
        Ty::U16 => "u16",
        Ty::S16 => "i16",
        Ty::U32 => "u32",
        Ty::S32 => "i32",
        Ty::U64 => "u64",
        Ty::S64 => "i64",
        _ => "a number",
    }
}

/// A WIT field name as the Rust field it came from.
pub(super) fn snake(kebab: &str) -> String {
    kebab.replace('-', "_")
}

fn take<'a>(input: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
    if input.len() < n {
        return Err(format!("{} bytes short", n - input.len()));
    }
    let (head, tail) = input.split_at(n);
    *input = tail;
    Ok(head)
}

fn varint(input: &mut &[u8]) -> Result<u64, String> {
    let mut value = 0u64;
    for shift in (0..70).step_by(7) {
        let byte = take(input, 1)?[0];
        if shift == 63 && byte > 1 {
            return Err("varint overflows 64 bits".into());
        }
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("varint longer than 10 bytes".into())
}

/// Whether `ty` is a scalar (`bool`, an integer, a float, `char`), which
/// `call_scalar` passes as the bits of a `u64`.
pub(super) fn is_scalar(ty: &Ty) -> bool {
    matches!(
        ty,
        Ty::Bool
            | Ty::U8
            | Ty::S8
            | Ty::U16
            | Ty::S16
            | Ty::U32
            | Ty::S32
            | Ty::U64
            | Ty::S64
            | Ty::F32
            | Ty::F64
            | Ty::Char
    )
}

/// A scalar argument from its bits (signed integers sign-extended, floats
/// their IEEE bits, `bool` 0 or 1, `char` its code point).
pub(super) fn scalar_to_py<'py>(
    py: Python<'py>,
    ty: &Ty,
    bits: u64,
) -> PyResult<Bound<'py, PyAny>> {
    Ok(match ty {
        Ty::Bool => PyBool::new(py, bits != 0).to_owned().into_any(),
        Ty::S8 | Ty::S16 | Ty::S32 | Ty::S64 => PyInt::new(py, bits as i64).into_any(),
        Ty::F32 => PyFloat::new(py, f64::from(f32::from_bits(bits as u32))).into_any(),
        Ty::F64 => PyFloat::new(py, f64::from_bits(bits)).into_any(),
        Ty::Char => {
            let c = char::from_u32(bits as u32).unwrap_or(char::REPLACEMENT_CHARACTER);
            PyString::new(py, c.encode_utf8(&mut [0; 4])).into_any()
        }
        _ => PyInt::new(py, bits).into_any(),
    })
}

/// A scalar result as its bits, range-checked as in the wire format.
pub(super) fn scalar_from_py(ty: &Ty, value: &Bound<'_, PyAny>) -> Result<u64, String> {
    let found = || {
        value
            .get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| "?".into())
    };
    let expected = |what: &str| format!("expected {what}, found {}", found());
    let range = || format!("{} is out of range for {}", describe(value), name(ty));
    let int = || {
        if value.is_instance_of::<PyBool>() || !value.is_instance_of::<PyInt>() {
            Err(expected(&format!("an int ({})", name(ty))))
        } else {
            Ok(())
        }
    };
    Ok(match ty {
        Ty::Unit if value.is_none() => 0,
        Ty::Unit => return Err(expected("None")),
        Ty::Bool => u64::from(
            value
                .cast::<PyBool>()
                .map_err(|_| expected("a bool"))?
                .is_true(),
        ),
        Ty::U8 => int()
            .and_then(|()| value.extract::<u8>().map_err(|_| range()))?
            .into(),
        Ty::U16 => int()
            .and_then(|()| value.extract::<u16>().map_err(|_| range()))?
            .into(),
        Ty::U32 => int()
            .and_then(|()| value.extract::<u32>().map_err(|_| range()))?
            .into(),
        Ty::U64 => int().and_then(|()| value.extract::<u64>().map_err(|_| range()))?,
        Ty::S8 => {
            i64::from(int().and_then(|()| value.extract::<i8>().map_err(|_| range()))?) as u64
        }
        Ty::S16 => {
            i64::from(int().and_then(|()| value.extract::<i16>().map_err(|_| range()))?) as u64
        }
        Ty::S32 => {
            i64::from(int().and_then(|()| value.extract::<i32>().map_err(|_| range()))?) as u64
        }
        Ty::S64 => int().and_then(|()| value.extract::<i64>().map_err(|_| range()))? as u64,
        Ty::F32 | Ty::F64 => {
            if !(value.is_instance_of::<PyFloat>() || value.is_instance_of::<PyInt>())
                || value.is_instance_of::<PyBool>()
            {
                return Err(expected("a float"));
            }
            let v: f64 = value.extract().map_err(|e: PyErr| e.to_string())?;
            if *ty == Ty::F32 {
                u64::from((v as f32).to_bits())
            } else {
                v.to_bits()
            }
        }
        Ty::Char => {
            let s = value
                .cast::<PyString>()
                .map_err(|_| expected("a str"))?
                .to_str()
                .map_err(|e| e.to_string())?;
            let mut chars = s.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => u64::from(u32::from(c)),
                _ => return Err(format!("expected one character, found {s:?}")),
            }
        }
        other => return Err(format!("{other:?} is not a scalar")),
    })
}

/// Whether a stream item of type `ty` crosses fixed-width little-endian
/// (integers wider than a byte; see `fidius_guest`'s `encode_item`)
/// rather than in the wire format.
fn fixed_width(ty: &Ty) -> Option<usize> {
    match ty {
        Ty::U16 | Ty::S16 => Some(2),
        Ty::U32 | Ty::S32 => Some(4),
        Ty::U64 | Ty::S64 => Some(8),
        _ => None,
    }
}

/// Decodes one stream item (the wire format, but see [`fixed_width`]).
pub(super) fn item_to_py<'py>(
    py: Python<'py>,
    model: &Model,
    ty: &Ty,
    input: &mut &[u8],
) -> Result<Bound<'py, PyAny>, String> {
    let Some(width) = fixed_width(ty) else {
        return to_py(py, model, ty, input);
    };
    let b = take(input, width)?;
    let mut bytes = [0u8; 8];
    bytes[..width].copy_from_slice(b);
    let unsigned = u64::from_le_bytes(bytes);
    Ok(match ty {
        Ty::S16 => PyInt::new(py, unsigned as u16 as i16).into_any(),
        Ty::S32 => PyInt::new(py, unsigned as u32 as i32).into_any(),
        Ty::S64 => PyInt::new(py, unsigned as i64).into_any(),
        _ => PyInt::new(py, unsigned).into_any(),
    })
}

/// Encodes one stream item, the counterpart of [`item_to_py`].
pub(super) fn item_from_py(
    model: &Model,
    ty: &Ty,
    value: &Bound<'_, PyAny>,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let Some(width) = fixed_width(ty) else {
        return from_py(model, ty, value, out);
    };
    // Range-checked as a scalar; signed values come sign-extended, so
    // their low bytes are the two's complement of the narrower type.
    let bits = scalar_from_py(ty, value)?;
    out.extend_from_slice(&bits.to_le_bytes()[..width]);
    Ok(())
}

/// Checks that a value used all its bytes.
pub(super) fn end(input: &[u8]) -> Result<(), String> {
    if input.is_empty() {
        Ok(())
    } else {
        Err(format!("{} bytes after the value", input.len()))
    }
}

/// A `u32` (a stream argument's position).
pub(super) fn take_u32(input: &mut &[u8]) -> Result<u32, String> {
    let v = varint(input)?;
    u32::try_from(v).map_err(|_| format!("{v} is out of range for u32"))
}

fn length(input: &mut &[u8]) -> Result<usize, String> {
    let len = varint(input)?;
    let len = usize::try_from(len).map_err(|_| format!("length {len} too large"))?;
    if len > input.len() {
        return Err(format!("length {len} runs past the end"));
    }
    Ok(len)
}

fn string<'a>(input: &mut &'a [u8]) -> Result<&'a str, String> {
    let len = length(input)?;
    std::str::from_utf8(take(input, len)?).map_err(|e| e.to_string())
}

pub(super) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}
