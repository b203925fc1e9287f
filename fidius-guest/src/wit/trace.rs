//! Finds the shape of a serde type by driving its `Deserialize` impl with a
//! deserializer that records what it is asked for, so interface types need
//! no derive beyond serde's. Enums are traced once per variant (one run per
//! unexplored variant); recursive types are rejected because WIT has none.

use std::collections::BTreeMap;

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Visitor};

use super::{Def, Ty, WitError};

/// Named types found so far, shared by every trace of one interface.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    /// WIT name → (serde name, definition), in order of first appearance.
    pub(crate) defs: Vec<(String, &'static str, Def)>,
    enums: BTreeMap<&'static str, EnumState>,
    stack: Vec<&'static str>,
}

#[derive(Debug)]
struct EnumState {
    variants: &'static [&'static str],
    /// Per variant: `None` until traced, then its payload (`Ty::Unit` for
    /// none).
    payloads: Vec<Option<Ty>>,
}

impl Registry {
    /// The shape of `T`, registering the named types it uses.
    pub(crate) fn trace<T: DeserializeOwned>(&mut self, what: &str) -> Result<Ty, WitError> {
        // Every run explores at least one new enum variant; the bound only
        // guards against a `Deserialize` impl that behaves differently on
        // every run.
        for _ in 0..10_000 {
            let mut out = None;
            self.stack.clear();
            T::deserialize(De {
                reg: self,
                out: &mut out,
            })
            .map_err(|e: TraceError| WitError::new(format!("{what}: {}", e.0)))?;
            let ty = out.ok_or_else(|| WitError::new(format!("{what}: nothing was read")))?;
            if self
                .enums
                .values()
                .all(|e| e.payloads.iter().all(Option::is_some))
            {
                self.finish_enums()?;
                return Ok(ty);
            }
        }
        Err(WitError::new(format!(
            "{what}: its Deserialize impl never explored every enum variant"
        )))
    }

    fn finish_enums(&mut self) -> Result<(), WitError> {
        let done: Vec<_> = self
            .enums
            .iter()
            .map(|(n, e)| (*n, e.variants, e.payloads.clone()))
            .collect();
        for (name, variants, payloads) in done {
            let payloads: Vec<Ty> = payloads
                .into_iter()
                .map(|p| p.unwrap_or(Ty::Unit))
                .collect();
            let def = if payloads.iter().all(|p| *p == Ty::Unit) {
                Def::Enum(variants.iter().map(|v| super::names::kebab(v)).collect())
            } else {
                Def::Variant(
                    variants
                        .iter()
                        .zip(payloads)
                        .map(|(v, p)| (super::names::kebab(v), (p != Ty::Unit).then_some(p)))
                        .collect(),
                )
            };
            self.define(name, def).map_err(|e| WitError::new(e.0))?;
        }
        Ok(())
    }

    fn define(&mut self, serde_name: &'static str, def: Def) -> Result<Ty, TraceError> {
        let name = super::names::kebab(serde_name);
        match self.defs.iter().find(|(n, _, _)| *n == name) {
            Some((_, other, existing)) if *existing != def => Err(TraceError(format!(
                "two different types are both named `{name}` in WIT (`{other}` and \
                 `{serde_name}`, or one generic type used with different parameters); \
                 rename one with #[serde(rename = \"…\")]"
            ))),
            Some(_) => Ok(Ty::Named(name)),
            None => {
                self.defs.push((name.clone(), serde_name, def));
                Ok(Ty::Named(name))
            }
        }
    }

    fn enter(&mut self, name: &'static str) -> Result<(), TraceError> {
        if self.stack.contains(&name) {
            return Err(TraceError(format!(
                "`{name}` contains itself; WIT has no recursive types"
            )));
        }
        self.stack.push(name);
        Ok(())
    }
}

#[derive(Debug)]
pub(crate) struct TraceError(String);

impl std::fmt::Display for TraceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TraceError {}

impl de::Error for TraceError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        TraceError(format!(
            "its Deserialize impl failed while being traced: {msg}"
        ))
    }
}

fn unsupported(what: &str) -> TraceError {
    TraceError(format!("{what} cannot be mapped to a WIT type"))
}

struct De<'a> {
    reg: &'a mut Registry,
    out: &'a mut Option<Ty>,
}

impl De<'_> {
    fn set<V>(self, ty: Ty, value: V) -> Result<V, TraceError> {
        *self.out = Some(ty);
        Ok(value)
    }
}

macro_rules! scalar {
    ($($method:ident => $ty:ident, $visit:ident($($value:expr)?);)*) => {
        $(fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
            let value = visitor.$visit($($value)?)?;
            self.set(Ty::$ty, value)
        })*
    };
}

impl<'de> de::Deserializer<'de> for De<'_> {
    type Error = TraceError;

    scalar! {
        deserialize_bool => Bool, visit_bool(false);
        deserialize_i8 => S8, visit_i8(0);
        deserialize_i16 => S16, visit_i16(0);
        deserialize_i32 => S32, visit_i32(0);
        deserialize_i64 => S64, visit_i64(0);
        deserialize_u8 => U8, visit_u8(0);
        deserialize_u16 => U16, visit_u16(0);
        deserialize_u32 => U32, visit_u32(0);
        deserialize_u64 => U64, visit_u64(0);
        deserialize_f32 => F32, visit_f32(0.0);
        deserialize_f64 => F64, visit_f64(0.0);
        deserialize_char => Char, visit_char('a');
        deserialize_str => String, visit_str("");
        deserialize_string => String, visit_string(String::new());
        deserialize_unit => Unit, visit_unit();
    }

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, TraceError> {
        Err(unsupported(
            "a self-describing type (#[serde(untagged)], #[serde(flatten)], serde_json::Value, …)",
        ))
    }

    fn deserialize_i128<V: Visitor<'de>>(self, _: V) -> Result<V::Value, TraceError> {
        Err(unsupported("i128"))
    }

    fn deserialize_u128<V: Visitor<'de>>(self, _: V) -> Result<V::Value, TraceError> {
        Err(unsupported("u128"))
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        let value = visitor.visit_bytes(&[])?;
        self.set(Ty::List(Box::new(Ty::U8)), value)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        let value = visitor.visit_byte_buf(Vec::new())?;
        self.set(Ty::List(Box::new(Ty::U8)), value)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        let mut inner = None;
        let value = visitor.visit_some(De {
            reg: &mut *self.reg,
            out: &mut inner,
        })?;
        let inner = inner.ok_or_else(|| unsupported("an option that reads no value"))?;
        self.set(Ty::Option(Box::new(inner)), value)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        _: V,
    ) -> Result<V::Value, TraceError> {
        Err(unsupported(&format!(
            "the unit struct `{name}` (WIT has no empty records)"
        )))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        let mut items = Seq::new(self.reg, 1);
        let value = visitor.visit_seq(&mut items)?;
        let item = items
            .types
            .pop()
            .flatten()
            .ok_or_else(|| unsupported("a sequence that reads no item"))?;
        self.set(Ty::List(Box::new(item)), value)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        let mut items = Seq::new(self.reg, len);
        let value = visitor.visit_seq(&mut items)?;
        let types = items.finish("a tuple")?;
        self.set(Ty::Tuple(types), value)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        self.deserialize_tuple(len, visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        let mut map = Map {
            reg: self.reg,
            left: 1,
            key: None,
            value: None,
        };
        let value = visitor.visit_map(&mut map)?;
        let (Some(k), Some(v)) = (map.key, map.value) else {
            return Err(unsupported("a map that reads no entry"));
        };
        self.set(Ty::List(Box::new(Ty::Tuple(vec![k, v]))), value)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        if fields.is_empty() {
            return Err(unsupported(&format!("the struct `{name}` without fields")));
        }
        self.reg.enter(name)?;
        let mut items = Seq::new(&mut *self.reg, fields.len());
        let value = visitor.visit_seq(&mut items)?;
        let types = items.finish(name)?;
        self.reg.stack.pop();
        let def = Def::Record(
            fields
                .iter()
                .zip(types)
                .map(|(f, t)| (super::names::kebab(f), t))
                .collect(),
        );
        let ty = self.reg.define(name, def)?;
        self.set(ty, value)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        if variants.is_empty() {
            return Err(unsupported(&format!("the enum `{name}` without variants")));
        }
        if name == "Result" && variants == ["Ok", "Err"] {
            return Err(unsupported(
                "a `Result` inside a value (only a method's return type may be a Result)",
            ));
        }
        self.reg.enter(name)?;
        let state = self.reg.enums.entry(name).or_insert_with(|| EnumState {
            variants,
            payloads: vec![None; variants.len()],
        });
        let index = state.payloads.iter().position(Option::is_none).unwrap_or(0);
        let mut payload = None;
        let value = visitor.visit_enum(Enum {
            reg: &mut *self.reg,
            index,
            payload: &mut payload,
        })?;
        self.reg.stack.pop();
        if let Some(state) = self.reg.enums.get_mut(name) {
            state.payloads[index] = Some(payload.unwrap_or(Ty::Unit));
        }
        let kebab = super::names::kebab(name);
        self.set(Ty::Named(kebab), value)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, _: V) -> Result<V::Value, TraceError> {
        Err(unsupported("a bare identifier"))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, TraceError> {
        Err(unsupported("an ignored value"))
    }

    fn is_human_readable(&self) -> bool {
        false
    }
}

struct Seq<'a> {
    reg: &'a mut Registry,
    left: usize,
    types: Vec<Option<Ty>>,
}

impl<'a> Seq<'a> {
    fn new(reg: &'a mut Registry, len: usize) -> Self {
        Seq {
            reg,
            left: len,
            types: Vec::with_capacity(len),
        }
    }

    fn finish(self, what: &str) -> Result<Vec<Ty>, TraceError> {
        if self.left != 0 {
            return Err(unsupported(&format!(
                "{what} whose Deserialize impl stops early"
            )));
        }
        self.types
            .into_iter()
            .map(|t| t.ok_or_else(|| unsupported(&format!("an element of {what}"))))
            .collect()
    }
}

impl<'de> de::SeqAccess<'de> for &mut Seq<'_> {
    type Error = TraceError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, TraceError> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        let mut out = None;
        let value = seed.deserialize(De {
            reg: &mut *self.reg,
            out: &mut out,
        })?;
        self.types.push(out);
        Ok(Some(value))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

struct Map<'a> {
    reg: &'a mut Registry,
    left: usize,
    key: Option<Ty>,
    value: Option<Ty>,
}

impl<'de> de::MapAccess<'de> for &mut Map<'_> {
    type Error = TraceError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, TraceError> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        let value = seed.deserialize(De {
            reg: &mut *self.reg,
            out: &mut self.key,
        })?;
        Ok(Some(value))
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<S::Value, TraceError> {
        seed.deserialize(De {
            reg: &mut *self.reg,
            out: &mut self.value,
        })
    }
}

struct Enum<'a> {
    reg: &'a mut Registry,
    index: usize,
    payload: &'a mut Option<Ty>,
}

impl<'de, 'a> de::EnumAccess<'de> for Enum<'a> {
    type Error = TraceError;
    type Variant = Self;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Self), TraceError> {
        let index = u32::try_from(self.index).map_err(|_| unsupported("an enum this large"))?;
        let de: de::value::U32Deserializer<TraceError> = index.into_deserializer();
        let value = seed.deserialize(de)?;
        Ok((value, self))
    }
}

impl<'de> de::VariantAccess<'de> for Enum<'_> {
    type Error = TraceError;

    fn unit_variant(self) -> Result<(), TraceError> {
        *self.payload = Some(Ty::Unit);
        Ok(())
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<S::Value, TraceError> {
        seed.deserialize(De {
            reg: self.reg,
            out: self.payload,
        })
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        de::Deserializer::deserialize_tuple(
            De {
                reg: self.reg,
                out: self.payload,
            },
            len,
            visitor,
        )
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        let enum_name = *self.reg.stack.last().unwrap_or(&"variant");
        let variant = self
            .reg
            .enums
            .get(enum_name)
            .map(|e| e.variants[self.index])
            .unwrap_or("payload");
        // The payload record is named `<enum>-<variant>`; it needs a
        // 'static name for the registry, and interfaces are traced once per
        // `cargo fidius wit` run, so leaking it is bounded.
        let name: &'static str = Box::leak(format!("{enum_name}_{variant}").into_boxed_str());
        de::Deserializer::deserialize_struct(
            De {
                reg: self.reg,
                out: self.payload,
            },
            name,
            fields,
            visitor,
        )
    }
}
