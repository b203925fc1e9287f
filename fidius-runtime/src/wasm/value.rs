//! Wire format (postcard) ⇄ component values, guided by the component's
//! own types: the generated clients speak the wire format, the component
//! speaks WIT, and both describe the same serde shapes (see `fidius-guest`'s
//! `wit` module for the mapping).

use fidius_guest::__private::ScalarBits;
use wasmtime::component::{Type, Val};

/// Why a value did not convert.
pub(crate) type Error = String;

struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, Error> {
        let (&b, rest) = self
            .bytes
            .split_first()
            .ok_or_else(|| "unexpected end of value".to_owned())?;
        self.bytes = rest;
        Ok(b)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let (head, rest) = self
            .bytes
            .split_first_chunk::<N>()
            .ok_or_else(|| format!("needs {N} more bytes, has {}", self.bytes.len()))?;
        self.bytes = rest;
        Ok(*head)
    }

    fn take(&mut self, n: usize) -> Result<&[u8], Error> {
        if self.bytes.len() < n {
            return Err(format!("needs {n} more bytes, has {}", self.bytes.len()));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn varint(&mut self, max_bytes: u32) -> Result<u64, Error> {
        let mut value = 0u64;
        for i in 0..max_bytes {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("varint too long".into())
    }

    fn len(&mut self) -> Result<usize, Error> {
        let n = self.varint(10)?;
        let n = usize::try_from(n).map_err(|_| "length too large".to_owned())?;
        // Every element takes at least one byte except zero-sized ones,
        // which WIT does not have: a length beyond the input is garbage.
        if n > self.bytes.len() {
            return Err(format!(
                "length {n} beyond the {} bytes left",
                self.bytes.len()
            ));
        }
        Ok(n)
    }

    fn string(&mut self) -> Result<String, Error> {
        let n = self.len()?;
        let bytes = self.take(n)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| "invalid UTF-8".to_owned())
    }
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Decodes wire-format values of types `types`, one after another, that
/// must use all of `bytes`. A stream argument (an owned resource) is a
/// `u32` position that `stream` turns into its value.
pub(crate) fn decode_args(
    bytes: &[u8],
    types: &[Type],
    stream: &mut dyn FnMut(u32) -> Result<Val, Error>,
) -> Result<Vec<Val>, Error> {
    let mut r = Reader { bytes };
    let mut values = Vec::with_capacity(types.len());
    for (i, ty) in types.iter().enumerate() {
        let value = match ty {
            Type::Own(_) => r.varint(5).and_then(|p| stream(narrow(p)?)),
            ty => read(&mut r, ty),
        };
        values.push(value.map_err(|e| format!("argument {i}: {e}"))?);
    }
    if !r.bytes.is_empty() {
        return Err(format!("{} bytes after the last argument", r.bytes.len()));
    }
    Ok(values)
}

/// The most arguments `fast.scalar` takes.
pub(crate) const SCALAR_ARGS: usize = 4;

/// The arguments of a `fast.scalar` call: wire-format scalars of types
/// `types` (at most [`SCALAR_ARGS`]), as bits, that must use all of
/// `bytes`.
pub(crate) fn scalar_args(bytes: &[u8], types: &[Type]) -> Result<[u64; SCALAR_ARGS], Error> {
    let mut r = Reader { bytes };
    let mut bits = [0; SCALAR_ARGS];
    for (i, (ty, slot)) in types.iter().zip(&mut bits).enumerate() {
        *slot = read(&mut r, ty)
            .and_then(|v| scalar_bits(&v).ok_or_else(|| format!("{v:?} is not a scalar")))
            .map_err(|e| format!("argument {i}: {e}"))?;
    }
    if !r.bytes.is_empty() {
        return Err(format!("{} bytes after the last argument", r.bytes.len()));
    }
    Ok(bits)
}

/// The wire-format result of a `fast.scalar` call that returned `bits`,
/// for a method returning `ty` (or nothing); bits that are not a value of
/// the type are an error.
pub(crate) fn scalar_result(bits: u64, ty: Option<&Type>) -> Result<Vec<u8>, Error> {
    let Some(ty) = ty else {
        return Ok(Vec::new());
    };
    let val = scalar_val(bits, ty).ok_or_else(|| format!("{bits:#x} is not a value of {ty:?}"))?;
    let mut out = Vec::new();
    encode(&val, ty, &mut out)?;
    Ok(out)
}

/// The scalar of type `ty` whose bits (as `fast.scalar` passes them) are
/// `bits`; `None` when they are no value of it (or `ty` is no scalar).
pub(crate) fn scalar_val(bits: u64, ty: &Type) -> Option<Val> {
    fn exact<T: ScalarBits + Copy>(bits: u64, val: fn(T) -> Val) -> Option<Val> {
        let v = T::from_bits(bits);
        (v.to_bits() == bits).then(|| val(v))
    }
    match ty {
        Type::Bool => exact(bits, Val::Bool),
        Type::S8 => exact(bits, Val::S8),
        Type::U8 => exact(bits, Val::U8),
        Type::S16 => exact(bits, Val::S16),
        Type::U16 => exact(bits, Val::U16),
        Type::S32 => exact(bits, Val::S32),
        Type::U32 => exact(bits, Val::U32),
        Type::S64 => exact(bits, Val::S64),
        Type::U64 => exact(bits, Val::U64),
        Type::Float32 => exact(bits, Val::Float32),
        Type::Float64 => exact(bits, Val::Float64),
        Type::Char => exact(bits, Val::Char),
        _ => None,
    }
}

/// Whether `bits` are a value of scalar type `ty` (as [`scalar_val`], with
/// no value made).
pub(crate) fn scalar_fits(bits: u64, ty: &Type) -> bool {
    fn fits<T: ScalarBits>(bits: u64) -> bool {
        T::from_bits(bits).to_bits() == bits
    }
    match ty {
        Type::Bool => fits::<bool>(bits),
        Type::S8 => fits::<i8>(bits),
        Type::U8 => fits::<u8>(bits),
        Type::S16 => fits::<i16>(bits),
        Type::U16 => fits::<u16>(bits),
        Type::S32 => fits::<i32>(bits),
        Type::U32 => fits::<u32>(bits),
        Type::S64 | Type::U64 | Type::Float64 => true,
        Type::Float32 => fits::<f32>(bits),
        Type::Char => fits::<char>(bits),
        _ => false,
    }
}

/// A scalar's bits as `fast.scalar` passes them.
fn scalar_bits(v: &Val) -> Option<u64> {
    Some(match *v {
        Val::Bool(x) => x.to_bits(),
        Val::S8(x) => x.to_bits(),
        Val::U8(x) => x.to_bits(),
        Val::S16(x) => x.to_bits(),
        Val::U16(x) => x.to_bits(),
        Val::S32(x) => x.to_bits(),
        Val::U32(x) => x.to_bits(),
        Val::S64(x) => x.to_bits(),
        Val::U64(x) => x.to_bits(),
        Val::Float32(x) => ScalarBits::to_bits(x),
        Val::Float64(x) => ScalarBits::to_bits(x),
        Val::Char(x) => x.to_bits(),
        _ => return None,
    })
}

/// Decodes a batch of stream items of type `ty` (until `bytes` ends): the
/// wire format, except that integer items wider than a byte are
/// fixed-width little-endian (see `fidius_guest`'s `encode_item`).
pub(crate) fn decode_items(bytes: &[u8], ty: &Type) -> Result<Vec<Val>, Error> {
    let mut r = Reader { bytes };
    let mut items = Vec::new();
    while !r.bytes.is_empty() {
        let item = match ty {
            Type::U16 => Val::U16(u16::from_le_bytes(r.array()?)),
            Type::S16 => Val::S16(i16::from_le_bytes(r.array()?)),
            Type::U32 => Val::U32(u32::from_le_bytes(r.array()?)),
            Type::S32 => Val::S32(i32::from_le_bytes(r.array()?)),
            Type::U64 => Val::U64(u64::from_le_bytes(r.array()?)),
            Type::S64 => Val::S64(i64::from_le_bytes(r.array()?)),
            ty => read(&mut r, ty)?,
        };
        items.push(item);
    }
    Ok(items)
}

/// Encodes one stream item, the counterpart of [`decode_items`].
pub(crate) fn encode_item(val: &Val, ty: &Type, out: &mut Vec<u8>) -> Result<(), Error> {
    match (val, ty) {
        (Val::U16(v), Type::U16) => out.extend_from_slice(&v.to_le_bytes()),
        (Val::S16(v), Type::S16) => out.extend_from_slice(&v.to_le_bytes()),
        (Val::U32(v), Type::U32) => out.extend_from_slice(&v.to_le_bytes()),
        (Val::S32(v), Type::S32) => out.extend_from_slice(&v.to_le_bytes()),
        (Val::U64(v), Type::U64) => out.extend_from_slice(&v.to_le_bytes()),
        (Val::S64(v), Type::S64) => out.extend_from_slice(&v.to_le_bytes()),
        (val, ty) => encode(val, ty, out)?,
    }
    Ok(())
}

fn narrow<T: TryFrom<u64>>(v: u64) -> Result<T, Error> {
    T::try_from(v).map_err(|_| format!("{v} out of range"))
}

fn read(r: &mut Reader<'_>, ty: &Type) -> Result<Val, Error> {
    Ok(match ty {
        Type::Bool => match r.byte()? {
            0 => Val::Bool(false),
            1 => Val::Bool(true),
            b => return Err(format!("invalid bool {b}")),
        },
        Type::S8 => Val::S8(r.byte()? as i8),
        Type::U8 => Val::U8(r.byte()?),
        Type::S16 => Val::S16(i16::try_from(unzigzag(r.varint(3)?)).map_err(|e| e.to_string())?),
        Type::U16 => Val::U16(narrow(r.varint(3)?)?),
        Type::S32 => Val::S32(i32::try_from(unzigzag(r.varint(5)?)).map_err(|e| e.to_string())?),
        Type::U32 => Val::U32(narrow(r.varint(5)?)?),
        Type::S64 => Val::S64(unzigzag(r.varint(10)?)),
        Type::U64 => Val::U64(r.varint(10)?),
        Type::Float32 => Val::Float32(f32::from_le_bytes(r.array()?)),
        Type::Float64 => Val::Float64(f64::from_le_bytes(r.array()?)),
        Type::Char => {
            let s = r.string()?;
            let mut chars = s.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Val::Char(c),
                _ => return Err(format!("`{s}` is not one char")),
            }
        }
        Type::String => Val::String(r.string()?),
        Type::List(l) => {
            let n = r.len()?;
            let elem = l.ty();
            let mut items = Vec::with_capacity(n);
            if elem == Type::U8 {
                items.extend(r.take(n)?.iter().map(|&b| Val::U8(b)));
            } else {
                for _ in 0..n {
                    items.push(read(r, &elem)?);
                }
            }
            Val::List(items)
        }
        Type::Record(rec) => Val::Record(
            rec.fields()
                .map(|f| Ok((f.name.to_owned(), read(r, &f.ty)?)))
                .collect::<Result<_, Error>>()?,
        ),
        Type::Tuple(t) => Val::Tuple(t.types().map(|t| read(r, &t)).collect::<Result<_, _>>()?),
        Type::Variant(v) => {
            let index: usize = narrow(r.varint(5)?)?;
            let case = v
                .cases()
                .nth(index)
                .ok_or_else(|| format!("variant case {index} does not exist"))?;
            let payload = match &case.ty {
                Some(t) => Some(Box::new(read(r, t)?)),
                None => None,
            };
            Val::Variant(case.name.to_owned(), payload)
        }
        Type::Enum(e) => {
            let index: usize = narrow(r.varint(5)?)?;
            let name = e
                .names()
                .nth(index)
                .ok_or_else(|| format!("enum case {index} does not exist"))?;
            Val::Enum(name.to_owned())
        }
        Type::Option(o) => match r.byte()? {
            0 => Val::Option(None),
            1 => Val::Option(Some(Box::new(read(r, &o.ty())?))),
            b => return Err(format!("invalid option tag {b}")),
        },
        Type::Result(res) => {
            let side = |r: &mut Reader<'_>, t: Option<Type>| -> Result<Option<Box<Val>>, Error> {
                t.map(|t| read(r, &t).map(Box::new)).transpose()
            };
            match r.varint(5)? {
                0 => Val::Result(Ok(side(r, res.ok())?)),
                1 => Val::Result(Err(side(r, res.err())?)),
                b => return Err(format!("invalid result tag {b}")),
            }
        }
        other => return Err(format!("WIT type {other:?} is not used by fidius")),
    })
}

/// Encodes `val` (of type `ty`) in the wire format.
pub(crate) fn encode(val: &Val, ty: &Type, out: &mut Vec<u8>) -> Result<(), Error> {
    fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    fn string(out: &mut Vec<u8>, s: &str) {
        varint(out, s.len() as u64);
        out.extend_from_slice(s.as_bytes());
    }
    let mismatch = || format!("the component returned {val:?} for WIT type {ty:?}");
    match (val, ty) {
        (Val::Bool(b), Type::Bool) => out.push(u8::from(*b)),
        (Val::S8(v), Type::S8) => out.push(*v as u8),
        (Val::U8(v), Type::U8) => out.push(*v),
        (Val::S16(v), Type::S16) => varint(out, zigzag(i64::from(*v))),
        (Val::U16(v), Type::U16) => varint(out, u64::from(*v)),
        (Val::S32(v), Type::S32) => varint(out, zigzag(i64::from(*v))),
        (Val::U32(v), Type::U32) => varint(out, u64::from(*v)),
        (Val::S64(v), Type::S64) => varint(out, zigzag(*v)),
        (Val::U64(v), Type::U64) => varint(out, *v),
        (Val::Float32(v), Type::Float32) => out.extend_from_slice(&v.to_le_bytes()),
        (Val::Float64(v), Type::Float64) => out.extend_from_slice(&v.to_le_bytes()),
        (Val::Char(c), Type::Char) => string(out, c.encode_utf8(&mut [0; 4])),
        (Val::String(s), Type::String) => string(out, s),
        (Val::List(items), Type::List(l)) => {
            varint(out, items.len() as u64);
            let elem = l.ty();
            if elem == Type::U8 {
                out.reserve(items.len());
                for item in items {
                    match item {
                        Val::U8(b) => out.push(*b),
                        _ => return Err(mismatch()),
                    }
                }
            } else {
                for item in items {
                    encode(item, &elem, out)?;
                }
            }
        }
        (Val::Record(fields), Type::Record(rec)) => {
            if fields.len() != rec.fields().len() {
                return Err(mismatch());
            }
            for ((_, v), f) in fields.iter().zip(rec.fields()) {
                encode(v, &f.ty, out)?;
            }
        }
        (Val::Tuple(items), Type::Tuple(t)) => {
            if items.len() != t.types().len() {
                return Err(mismatch());
            }
            for (v, t) in items.iter().zip(t.types()) {
                encode(v, &t, out)?;
            }
        }
        (Val::Variant(name, payload), Type::Variant(v)) => {
            let (index, case) = v
                .cases()
                .enumerate()
                .find(|(_, c)| c.name == name)
                .ok_or_else(mismatch)?;
            varint(out, index as u64);
            match (payload, &case.ty) {
                (Some(p), Some(t)) => encode(p, t, out)?,
                (None, None) => {}
                _ => return Err(mismatch()),
            }
        }
        (Val::Enum(name), Type::Enum(e)) => {
            let index = e.names().position(|n| n == name).ok_or_else(mismatch)?;
            varint(out, index as u64);
        }
        (Val::Option(o), Type::Option(t)) => match o {
            None => out.push(0),
            Some(v) => {
                out.push(1);
                encode(v, &t.ty(), out)?;
            }
        },
        (Val::Result(res), Type::Result(t)) => {
            let (tag, payload, pty) = match res {
                Ok(p) => (0, p, t.ok()),
                Err(p) => (1, p, t.err()),
            };
            varint(out, tag);
            match (payload, pty) {
                (Some(p), Some(t)) => encode(p, &t, out)?,
                (None, None) => {}
                _ => return Err(mismatch()),
            }
        }
        _ => return Err(mismatch()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `fast.scalar` bits: what the wire format holds round-trips through
    /// them, and bits that are no value of the type are refused.
    #[test]
    fn scalar_bits_round_trip_and_are_checked() {
        let cases = [
            (Val::Bool(true), Type::Bool),
            (Val::S8(-3), Type::S8),
            (Val::U16(65_535), Type::U16),
            (Val::S32(i32::MIN), Type::S32),
            (Val::S64(-1), Type::S64),
            (Val::U64(u64::MAX), Type::U64),
            (Val::Float32(-1.5), Type::Float32),
            (Val::Float64(f64::MAX), Type::Float64),
            (Val::Char('é'), Type::Char),
        ];
        let types: Vec<Type> = cases.iter().map(|(_, t)| t.clone()).collect();
        let mut wire = Vec::new();
        for (val, ty) in &cases {
            encode(val, ty, &mut wire).unwrap();
        }
        for (chunk, vals) in types.chunks(SCALAR_ARGS).zip(cases.chunks(SCALAR_ARGS)) {
            let mut bytes = Vec::new();
            for (val, ty) in vals {
                encode(val, ty, &mut bytes).unwrap();
            }
            let bits = scalar_args(&bytes, chunk).unwrap();
            for ((val, ty), bits) in vals.iter().zip(bits) {
                assert_eq!(scalar_val(bits, ty).as_ref(), Some(val));
                assert!(scalar_fits(bits, ty));
                let mut one = Vec::new();
                encode(val, ty, &mut one).unwrap();
                assert_eq!(scalar_result(bits, Some(ty)).unwrap(), one);
            }
        }
        for (bits, ty) in [
            (2, Type::Bool),
            (0x1ff, Type::S8),
            (0x80, Type::S8),
            (1 << 32, Type::U32),
            (1 << 32, Type::Float32),
            (0xd800, Type::Char),
        ] {
            assert_eq!(scalar_val(bits, &ty), None, "{bits:#x} as {ty:?}");
            assert!(!scalar_fits(bits, &ty));
            assert!(scalar_result(bits, Some(&ty)).is_err());
        }
        assert_eq!(scalar_result(7, None).unwrap(), Vec::<u8>::new());
        assert!(
            scalar_args(&[1, 2], &[Type::Bool]).is_err(),
            "bytes left over"
        );
    }
}
