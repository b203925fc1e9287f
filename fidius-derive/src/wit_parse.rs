//! Just enough of WIT to read back the functions of an interface from the
//! files `cargo fidius wit` writes: `name: func(a: T, …) -> R;` lines inside
//! `interface name { … }`, with the type grammar fidius emits.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

#[path = "../../fidius-guest/src/wit/names.rs"]
#[allow(dead_code, unreachable_pub)]
mod names;

pub(crate) use names::{kebab, upper_camel};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum WitType {
    Prim(&'static str),
    String,
    List(Box<WitType>),
    Option(Box<WitType>),
    Result(Option<Box<WitType>>, Option<Box<WitType>>),
    Tuple(Vec<WitType>),
    Named(String),
}

#[derive(Debug)]
pub(crate) struct WitFunc {
    pub(crate) name: String,
    pub(crate) params: Vec<(String, WitType)>,
    pub(crate) result: Option<WitType>,
}

/// A stream resource (`resource <name> { next: func(max: u32) ->
/// result<list<item>, string>; }`).
#[derive(Debug)]
pub(crate) struct WitResource {
    pub(crate) name: String,
    pub(crate) item: WitType,
}

/// The functions of `interface <iface>` in `text`, in order.
#[cfg(test)]
pub(crate) fn funcs(text: &str, iface: &str) -> Result<Vec<WitFunc>, String> {
    Ok(interface(text, iface)?.0)
}

/// The functions and stream resources of `interface <iface>` in `text`, in
/// order.
pub(crate) fn interface(
    text: &str,
    iface: &str,
) -> Result<(Vec<WitFunc>, Vec<WitResource>), String> {
    let header = format!("interface {} {{", names::ident(iface));
    let start = text
        .lines()
        .position(|l| l.trim() == header)
        .ok_or_else(|| format!("no `{header}` block"))?;
    let mut out = Vec::new();
    let mut resources = Vec::new();
    let mut resource: Option<String> = None;
    let mut depth = 0usize;
    for line in text.lines().skip(start + 1) {
        let line = line.trim();
        if line.ends_with('{') {
            if depth == 0
                && let Some(name) = line
                    .strip_prefix("resource ")
                    .and_then(|l| l.strip_suffix('{'))
            {
                resource = Some(name.trim().trim_start_matches('%').to_owned());
            }
            depth += 1;
            continue;
        }
        if line == "}" {
            if depth == 0 {
                return Ok((out, resources));
            }
            depth -= 1;
            resource = None;
            continue;
        }
        let Some((name, rest)) = line.split_once(": func(") else {
            continue;
        };
        if depth > 0 {
            // A resource's `next`: its result is `result<list<item>, string>`.
            if let (Some(resource), "next") = (&resource, name) {
                let item = rest
                    .strip_prefix("max: u32) -> result<list<")
                    .and_then(|r| r.strip_suffix(">, string>;"))
                    .ok_or_else(|| format!("unexpected stream resource method `{line}`"))?;
                let mut p = Parser { s: item, i: 0 };
                resources.push(WitResource {
                    name: resource.clone(),
                    item: p.ty()?,
                });
            }
            continue;
        }
        let rest = rest
            .strip_suffix(';')
            .ok_or_else(|| format!("`{line}` does not end with `;`"))?;
        let mut p = Parser { s: rest, i: 0 };
        let mut params = Vec::new();
        loop {
            p.ws();
            if p.eat(")") {
                break;
            }
            let pname = p.ident()?;
            p.ws();
            p.expect(":")?;
            let ty = p.ty()?;
            params.push((pname, ty));
            p.ws();
            if !p.eat(",") {
                p.ws();
                p.expect(")")?;
                break;
            }
        }
        p.ws();
        let result = if p.eat("->") { Some(p.ty()?) } else { None };
        out.push(WitFunc {
            name: name.trim_start_matches('%').to_owned(),
            params,
            result,
        });
    }
    Err(format!("the `{header}` block is not closed"))
}

struct Parser<'a> {
    s: &'a str,
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.s[self.i..].starts_with(' ') {
            self.i += 1;
        }
    }

    fn eat(&mut self, tok: &str) -> bool {
        if self.s[self.i..].starts_with(tok) {
            self.i += tok.len();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, tok: &str) -> Result<(), String> {
        if self.eat(tok) {
            Ok(())
        } else {
            Err(format!("expected `{tok}` at `{}`", &self.s[self.i..]))
        }
    }

    fn ident(&mut self) -> Result<String, String> {
        self.ws();
        self.eat("%");
        let rest = &self.s[self.i..];
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .unwrap_or(rest.len());
        if len == 0 {
            return Err(format!("expected a name at `{rest}`"));
        }
        self.i += len;
        Ok(rest[..len].to_owned())
    }

    fn ty(&mut self) -> Result<WitType, String> {
        self.ws();
        if self.eat("_") {
            return Err("`_` outside a result".into());
        }
        let name = self.ident()?;
        let generic = |p: &mut Self| -> Result<Vec<Option<WitType>>, String> {
            let mut args = Vec::new();
            if !p.eat("<") {
                return Ok(args);
            }
            loop {
                p.ws();
                if p.eat("_") {
                    args.push(None);
                } else {
                    args.push(Some(p.ty()?));
                }
                p.ws();
                if p.eat(">") {
                    return Ok(args);
                }
                p.expect(",")?;
            }
        };
        Ok(match name.as_str() {
            "bool" => WitType::Prim("bool"),
            "s8" => WitType::Prim("i8"),
            "s16" => WitType::Prim("i16"),
            "s32" => WitType::Prim("i32"),
            "s64" => WitType::Prim("i64"),
            "u8" => WitType::Prim("u8"),
            "u16" => WitType::Prim("u16"),
            "u32" => WitType::Prim("u32"),
            "u64" => WitType::Prim("u64"),
            "f32" => WitType::Prim("f32"),
            "f64" => WitType::Prim("f64"),
            "char" => WitType::Prim("char"),
            "string" => WitType::String,
            "list" | "option" | "tuple" | "result" => {
                let args = generic(self)?;
                let one = |args: Vec<Option<WitType>>| -> Result<Box<WitType>, String> {
                    match <[Option<WitType>; 1]>::try_from(args) {
                        Ok([Some(t)]) => Ok(Box::new(t)),
                        _ => Err(format!("`{name}` takes one type")),
                    }
                };
                match name.as_str() {
                    "list" => WitType::List(one(args)?),
                    "option" => WitType::Option(one(args)?),
                    "tuple" => WitType::Tuple(
                        args.into_iter()
                            .map(|a| a.ok_or_else(|| "`_` in a tuple".to_owned()))
                            .collect::<Result<_, _>>()?,
                    ),
                    _ => {
                        let mut it = args.into_iter();
                        let ok = it.next().flatten().map(Box::new);
                        let err = it.next().flatten().map(Box::new);
                        WitType::Result(ok, err)
                    }
                }
            }
            _ => WitType::Named(name),
        })
    }
}

impl WitType {
    /// The Rust type `wit-bindgen` generates for this WIT type; named types
    /// live in module `types`.
    pub(crate) fn rust(&self, types: &TokenStream) -> TokenStream {
        match self {
            WitType::Prim(p) => {
                let p = format_ident!("{}", p);
                quote!(#p)
            }
            WitType::String => quote!(::std::string::String),
            WitType::List(t) => {
                let t = t.rust(types);
                quote!(::std::vec::Vec<#t>)
            }
            WitType::Option(t) => {
                let t = t.rust(types);
                quote!(::core::option::Option<#t>)
            }
            WitType::Result(ok, err) => {
                let ok = ok.as_ref().map_or(quote!(()), |t| t.rust(types));
                let err = err.as_ref().map_or(quote!(()), |t| t.rust(types));
                quote!(::core::result::Result<#ok, #err>)
            }
            WitType::Tuple(ts) => {
                let ts = ts.iter().map(|t| t.rust(types));
                quote!((#(#ts,)*))
            }
            WitType::Named(n) => {
                let n = format_ident!("{}", upper_camel(n));
                quote!(#types::#n)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_generated_functions() {
        let text = "package fidius:calc@1.0.0;\n\ninterface calc {\n    record point {\n        x: s64,\n    }\n\n    variant v {\n        a(point),\n    }\n\n    add: func(a: s64, b: s64) -> s64;\n    check: func(shape: shape, min-area: f64) -> result<_, check-error>;\n    bump: func();\n    %type: func(m: list<tuple<string, option<u8>>>) -> result<u64>;\n}\n";
        let f = funcs(text, "calc").unwrap();
        assert_eq!(f.len(), 4);
        assert_eq!(
            f[0].params,
            vec![
                ("a".into(), WitType::Prim("i64")),
                ("b".into(), WitType::Prim("i64"))
            ]
        );
        assert_eq!(
            f[1].result,
            Some(WitType::Result(
                None,
                Some(Box::new(WitType::Named("check-error".into())))
            ))
        );
        assert_eq!(f[2].result, None);
        assert_eq!(f[3].name, "type");
        assert_eq!(
            f[3].params[0].1,
            WitType::List(Box::new(WitType::Tuple(vec![
                WitType::String,
                WitType::Option(Box::new(WitType::Prim("u8")))
            ])))
        );
    }
}
