//! How each Rust type in a method signature crosses the boundary, and the
//! canonical text of a type that goes into the interface hash.

use proc_macro2::{Delimiter, TokenStream, TokenTree};
use quote::ToTokens;
use syn::{GenericArgument, PathArguments, Type};

/// How an argument crosses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ArgKind {
    /// By value as its `Scalar::Repr`.
    Scalar,
    /// `&str`: borrowed `(ptr, len)`, no copy.
    Str,
    /// `&[u8]`: borrowed `(ptr, len)`, no copy.
    Bytes,
    /// `String`: `(ptr, len)`, copied once into the plugin.
    String,
    /// `Vec<u8>`: `(ptr, len)`, copied once into the plugin.
    Vec,
    /// Serialized with the wire format. `by_ref` for `&T` (the plugin
    /// decodes a `T` and passes `&T`).
    Wire { by_ref: bool, inner: Box<Type> },
    /// `Stream<T>`: a pull-based stream the caller produces.
    Stream { item: Box<Type> },
}

/// How a value comes back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RetKind {
    Unit,
    Scalar,
    String,
    Vec,
    Wire,
    /// `Stream<T>`: a pull-based stream the callee produces.
    Stream {
        item: Box<Type>,
    },
}

/// `Stream<T>` (any path ending in `Stream` with one type argument).
pub(crate) fn as_stream(ty: &Type) -> Option<&Type> {
    match last_segment(ty) {
        Some((ident, args)) if ident == "Stream" => match type_args(args).as_slice() {
            [item] => Some(item),
            _ => None,
        },
        _ => None,
    }
}

const SCALARS: &[&str] = &[
    "u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64", "f32", "f64", "bool", "char", "usize",
    "isize",
];

/// The single identifier of a plain path type (`u64`, `String`,
/// `std::string::String` → `String`) with its generic arguments.
fn last_segment(ty: &Type) -> Option<(&syn::Ident, &PathArguments)> {
    match ty {
        Type::Path(p) if p.qself.is_none() => {
            let seg = p.path.segments.last()?;
            Some((&seg.ident, &seg.arguments))
        }
        Type::Group(g) => last_segment(&g.elem),
        Type::Paren(p) => last_segment(&p.elem),
        _ => None,
    }
}

fn type_args(args: &PathArguments) -> Vec<&Type> {
    match args {
        PathArguments::AngleBracketed(a) => a
            .args
            .iter()
            .filter_map(|a| match a {
                GenericArgument::Type(t) => Some(t),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn is_plain(ty: &Type, name: &str) -> bool {
    matches!(last_segment(ty), Some((ident, PathArguments::None)) if ident == name)
}

pub(crate) fn is_scalar(ty: &Type) -> bool {
    match ty {
        Type::Path(p) if p.qself.is_none() && p.path.segments.len() == 1 => {
            SCALARS.iter().any(|s| is_plain(ty, s))
        }
        _ => false,
    }
}

fn is_vec_u8(ty: &Type) -> bool {
    match last_segment(ty) {
        Some((ident, args)) if ident == "Vec" => {
            matches!(type_args(args).as_slice(), [t] if is_plain(t, "u8"))
        }
        _ => false,
    }
}

pub(crate) fn is_unit(ty: &Type) -> bool {
    matches!(ty, Type::Tuple(t) if t.elems.is_empty())
}

/// `Result<T, E>` with exactly two type arguments.
pub(crate) fn as_result(ty: &Type) -> Option<(&Type, &Type)> {
    match last_segment(ty) {
        Some((ident, args)) if ident == "Result" => match type_args(args).as_slice() {
            [ok, err] => Some((ok, err)),
            _ => None,
        },
        _ => None,
    }
}

/// Finds a part of `ty` that cannot cross the boundary.
pub(crate) fn unsupported(ty: &Type) -> Option<(TokenStream, &'static str)> {
    let why = match ty {
        Type::Ptr(_) => "raw pointers cannot cross a plugin boundary",
        Type::Reference(r) if r.mutability.is_some() => {
            "`&mut` arguments cannot cross a plugin boundary; take the value and return the result"
        }
        Type::ImplTrait(_) => {
            "`impl Trait` is not supported in plugin interfaces; use a concrete serde type"
        }
        Type::TraitObject(_) => {
            "trait objects cannot cross a plugin boundary; use a concrete serde type"
        }
        Type::BareFn(_) => "function pointers cannot cross a plugin boundary",
        Type::Never(_) => "`!` is not supported in plugin interfaces",
        Type::Infer(_) | Type::Macro(_) | Type::Verbatim(_) => {
            "this type is not supported in plugin interfaces"
        }
        Type::Path(p) if p.path.is_ident("Self") => {
            "`Self` cannot cross a plugin boundary; use a concrete serde type"
        }
        Type::Reference(r) if as_stream(&r.elem).is_some() => {
            "streams cross by value: write `Stream<T>`, not a reference"
        }
        Type::Reference(r) => return unsupported(&r.elem),
        Type::Slice(s) => return unsupported(&s.elem),
        Type::Array(a) => return unsupported(&a.elem),
        Type::Paren(p) => return unsupported(&p.elem),
        Type::Group(g) => return unsupported(&g.elem),
        Type::Tuple(t) => return t.elems.iter().find_map(unsupported),
        Type::Path(p) => {
            let args = p.path.segments.iter().flat_map(|s| type_args(&s.arguments));
            for arg in args {
                if as_stream(arg).is_some() {
                    return Some((
                        arg.to_token_stream(),
                        "`Stream<T>` can only be a whole argument or return type (or the `Ok` type of a `Result`), not nested in another type",
                    ));
                }
                if let Some(found) = unsupported(arg) {
                    return Some(found);
                }
            }
            return None;
        }
        _ => return None,
    };
    Some((ty.to_token_stream(), why))
}

pub(crate) fn classify_arg(ty: &Type) -> ArgKind {
    if let Some(item) = as_stream(ty) {
        return ArgKind::Stream {
            item: Box::new(item.clone()),
        };
    }
    if is_scalar(ty) {
        return ArgKind::Scalar;
    }
    if is_plain(ty, "String") {
        return ArgKind::String;
    }
    if is_vec_u8(ty) {
        return ArgKind::Vec;
    }
    if let Type::Reference(r) = ty {
        if matches!(&*r.elem, Type::Path(p) if p.path.is_ident("str")) {
            return ArgKind::Str;
        }
        if matches!(&*r.elem, Type::Slice(s) if is_plain(&s.elem, "u8")) {
            return ArgKind::Bytes;
        }
        return ArgKind::Wire {
            by_ref: true,
            inner: r.elem.clone(),
        };
    }
    ArgKind::Wire {
        by_ref: false,
        inner: Box::new(ty.clone()),
    }
}

pub(crate) fn classify_ret(ty: &Type) -> RetKind {
    if let Some(item) = as_stream(ty) {
        RetKind::Stream {
            item: Box::new(item.clone()),
        }
    } else if is_unit(ty) {
        RetKind::Unit
    } else if is_scalar(ty) {
        RetKind::Scalar
    } else if is_plain(ty, "String") {
        RetKind::String
    } else if is_vec_u8(ty) {
        RetKind::Vec
    } else {
        RetKind::Wire
    }
}

/// Canonical text of a type: its tokens with a single space only between
/// two words (`dyn Trait`, `'a mut`), so formatting never changes the hash.
pub(crate) fn canonical(tokens: &impl ToTokens) -> String {
    let mut out = String::new();
    write_canonical(tokens.to_token_stream(), &mut out);
    out
}

fn write_canonical(stream: TokenStream, out: &mut String) {
    let mut prev_word = false;
    for tree in stream {
        match tree {
            TokenTree::Group(g) => {
                let (open, close) = match g.delimiter() {
                    Delimiter::Parenthesis => ("(", ")"),
                    Delimiter::Bracket => ("[", "]"),
                    Delimiter::Brace => ("{", "}"),
                    Delimiter::None => ("", ""),
                };
                out.push_str(open);
                write_canonical(g.stream(), out);
                out.push_str(close);
                prev_word = false;
            }
            TokenTree::Ident(i) => {
                if prev_word {
                    out.push(' ');
                }
                out.push_str(&i.to_string());
                prev_word = true;
            }
            TokenTree::Literal(l) => {
                if prev_word {
                    out.push(' ');
                }
                out.push_str(&l.to_string());
                prev_word = true;
            }
            TokenTree::Punct(p) => {
                out.push(p.as_char());
                prev_word = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    #[test]
    fn canonical_text_ignores_formatting() {
        let a: Type = parse_quote!(Vec<Option<(u8, String)>>);
        let b: Type = syn::parse_str("Vec < Option<( u8 ,\n String )> >").unwrap();
        assert_eq!(canonical(&a), "Vec<Option<(u8,String)>>");
        assert_eq!(canonical(&a), canonical(&b));
        let r: Type = parse_quote!(&'a dyn Fn(u8) -> u8);
        assert_eq!(canonical(&r), "&'a dyn Fn(u8)->u8");
    }

    #[test]
    fn classification_table() {
        let cases: &[(Type, ArgKind)] = &[
            (parse_quote!(i64), ArgKind::Scalar),
            (parse_quote!(bool), ArgKind::Scalar),
            (parse_quote!(&str), ArgKind::Str),
            (parse_quote!(&'a [u8]), ArgKind::Bytes),
            (parse_quote!(String), ArgKind::String),
            (parse_quote!(std::string::String), ArgKind::String),
            (parse_quote!(Vec<u8>), ArgKind::Vec),
            (
                parse_quote!(Vec<u16>),
                ArgKind::Wire {
                    by_ref: false,
                    inner: Box::new(parse_quote!(Vec<u16>)),
                },
            ),
            (
                parse_quote!(&Input),
                ArgKind::Wire {
                    by_ref: true,
                    inner: Box::new(parse_quote!(Input)),
                },
            ),
            (
                parse_quote!(my::u64),
                ArgKind::Wire {
                    by_ref: false,
                    inner: Box::new(parse_quote!(my::u64)),
                },
            ),
        ];
        for (ty, kind) in cases {
            assert_eq!(&classify_arg(ty), kind, "{}", canonical(ty));
        }
        assert_eq!(classify_ret(&parse_quote!(())), RetKind::Unit);
        assert_eq!(classify_ret(&parse_quote!(Vec<u8>)), RetKind::Vec);
        assert!(as_result(&parse_quote!(Result<u8, E>)).is_some());
        assert!(as_result(&parse_quote!(io::Result<u8>)).is_none());
    }

    #[test]
    fn unsupported_types_are_found_inside_generics() {
        // The part found (what the error's span points at) and the reason.
        let found =
            |ty: Type| unsupported(&ty).map(|(part, why)| (part.to_string().replace(' ', ""), why));
        assert_eq!(
            found(parse_quote!(Vec<*const u8>)),
            Some((
                "*constu8".into(),
                "raw pointers cannot cross a plugin boundary"
            ))
        );
        assert_eq!(
            found(parse_quote!(&mut String)),
            Some((
                "&mutString".into(),
                "`&mut` arguments cannot cross a plugin boundary; take the value and return the result"
            ))
        );
        assert_eq!(
            found(parse_quote!(Option<Box<dyn Send>>)),
            Some((
                "dynSend".into(),
                "trait objects cannot cross a plugin boundary; use a concrete serde type"
            ))
        );
        assert_eq!(
            found(parse_quote!(Vec<(u8, fn())>)),
            Some((
                "fn()".into(),
                "function pointers cannot cross a plugin boundary"
            ))
        );
        assert_eq!(
            found(parse_quote!(Vec<Stream<u8>>)),
            Some((
                "Stream<u8>".into(),
                "`Stream<T>` can only be a whole argument or return type (or the `Ok` type of a `Result`), not nested in another type"
            ))
        );
        assert_eq!(found(parse_quote!(Option<Vec<(u8, String)>>)), None);
    }
}
