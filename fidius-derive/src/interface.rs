//! `#[plugin_interface]`: parse the trait, build the [`Interface`] model,
//! validate it with spanned errors, then hand it to `interface_emit`.
//!
//! The model is plain data and the only input to code generation and to the
//! canonical text the interface hash is computed from.

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::{
    FnArg, Ident, ItemTrait, Pat, Path, ReturnType, TraitItem, TraitItemFn, Type, Visibility,
};

use crate::args::parse_interface_args;
use crate::errors::{Errors, with_item};
use crate::types::{self, ArgKind, RetKind};

/// Which macro the interface comes from.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// `#[plugin_interface]`: plugins implement it, hosts call it.
    Plugin,
    /// `#[host_interface]`: hosts implement it, plugins call it.
    Host,
}

/// A validated interface.
pub(crate) struct Interface {
    pub(crate) ident: Ident,
    pub(crate) vis: Visibility,
    pub(crate) version: u32,
    pub(crate) buffer: Ident,
    pub(crate) krate: Path,
    /// `host = Trait`: the host interface plugins may call.
    pub(crate) host: Option<Path>,
    /// `config = C`: the configuration type of every plugin.
    pub(crate) config: Option<Type>,
    pub(crate) side: Side,
    /// `#[interface_meta(key = "value")]`.
    pub(crate) meta: Vec<(String, String)>,
    /// In vtable order: required methods, then optional ones.
    pub(crate) methods: Vec<Method>,
}

pub(crate) struct Method {
    pub(crate) ident: Ident,
    pub(crate) docs: Vec<syn::Attribute>,
    pub(crate) args: Vec<Arg>,
    pub(crate) ret: Ret,
    /// `#[optional(since = N)]`.
    pub(crate) since: Option<u32>,
    /// `#[method_meta(key = "value")]`.
    pub(crate) meta: Vec<(String, String)>,
}

pub(crate) struct Arg {
    /// The parameter name as written, or `argN` for patterns.
    pub(crate) name: Ident,
    pub(crate) ty: Type,
    pub(crate) kind: ArgKind,
}

pub(crate) struct Value {
    pub(crate) ty: Type,
    pub(crate) kind: RetKind,
}

pub(crate) enum Ret {
    /// `T` (possibly `()`).
    Plain(Value),
    /// `Result<T, E>`: `E` comes back to the host typed.
    Fallible { ok: Value, err: Box<Type> },
}

impl Method {
    /// `fn name(T1,T2)->R` (no parameter names), as hashed.
    pub(crate) fn signature(&self) -> String {
        let args: Vec<String> = self.args.iter().map(|a| types::canonical(&a.ty)).collect();
        let mut sig = format!("fn {}({})", self.ident, args.join(","));
        let ret = match &self.ret {
            Ret::Plain(v) if v.kind == RetKind::Unit => None,
            Ret::Plain(v) => Some(types::canonical(&v.ty)),
            Ret::Fallible { ok, err } => Some(format!(
                "Result<{},{}>",
                types::canonical(&ok.ty),
                types::canonical(err)
            )),
        };
        if let Some(ret) = ret {
            sig.push_str("->");
            sig.push_str(&ret);
        }
        sig
    }
}

impl Interface {
    /// `Trait{sig;sig;}` over the required methods, with `config=C;` first
    /// when the interface declares a configuration type: the text
    /// [`fidius_guest::abi::interface_hash`] hashes.
    pub(crate) fn canonical(&self) -> String {
        let mut out = format!("{}{{", self.ident);
        if let Some(config) = &self.config {
            out.push_str("config=");
            out.push_str(&types::canonical(config));
            out.push(';');
        }
        for m in self.methods.iter().filter(|m| m.since.is_none()) {
            out.push_str(&m.signature());
            out.push(';');
        }
        out.push('}');
        out
    }
}

pub(crate) fn expand(args: TokenStream, item: TokenStream, side: Side) -> TokenStream {
    let macro_name = match side {
        Side::Plugin => "plugin_interface",
        Side::Host => "host_interface",
    };
    let mut item_trait: ItemTrait = match syn::parse2(item.clone()) {
        Ok(t) => t,
        Err(_) => {
            let e = syn::Error::new(
                Span::call_site(),
                format!(
                    "#[{macro_name}] goes on a trait: `pub trait MyPlugin: Send + Sync {{ … }}`"
                ),
            );
            return with_item(item, e);
        }
    };
    let args = parse_interface_args(args, side);
    let model = model(&mut item_trait, side);
    match (args, model) {
        (Ok(args), Ok((meta, methods))) => {
            let iface = Interface {
                ident: item_trait.ident.clone(),
                vis: item_trait.vis.clone(),
                version: args.version,
                buffer: args.buffer,
                krate: args.krate,
                host: args.host,
                config: args.config,
                side,
                meta,
                methods,
            };
            let mut errors = Errors::default();
            for m in &iface.methods {
                if let Some(since) = m.since
                    && since > iface.version
                {
                    errors.spanned(
                        &m.ident,
                        format!(
                            "`since = {since}` is newer than the interface's `version = {}`",
                            iface.version
                        ),
                    );
                }
            }
            if let Err(e) = errors.finish() {
                return with_item(item_trait.into_token_stream(), e);
            }
            crate::interface_emit::emit(&item_trait, &iface)
        }
        (Err(mut a), Err(b)) => {
            a.combine(b);
            with_item(item_trait.into_token_stream(), a)
        }
        (Err(e), _) | (_, Err(e)) => with_item(item_trait.into_token_stream(), e),
    }
}

/// Parses `#[name(key = "value", …)]` pairs.
fn meta_pairs(attr: &syn::Attribute, out: &mut Vec<(String, String)>) -> syn::Result<()> {
    attr.parse_nested_meta(|meta| {
        let key = meta
            .path
            .get_ident()
            .ok_or_else(|| meta.error("expected `key = \"value\"`"))?
            .to_string();
        let value: syn::LitStr = meta.value()?.parse()?;
        if out.iter().any(|(k, _)| *k == key) {
            return Err(meta.error(format!("metadata key `{key}` given twice")));
        }
        out.push((key, value.value()));
        Ok(())
    })
}

/// Takes the attributes named `name` out of `attrs`.
fn take_attrs(attrs: &mut Vec<syn::Attribute>, name: &str) -> Vec<syn::Attribute> {
    let (taken, kept) = std::mem::take(attrs)
        .into_iter()
        .partition(|a| a.path().is_ident(name));
    *attrs = kept;
    taken
}

fn has_bound(item: &ItemTrait, name: &str) -> bool {
    item.supertraits.iter().any(|b| match b {
        syn::TypeParamBound::Trait(t) => t.path.segments.last().is_some_and(|s| s.ident == name),
        _ => false,
    })
}

type Model = (Vec<(String, String)>, Vec<Method>);

/// Parse + validate: every problem is reported, each at its own token.
/// Strips fidius's helper attributes from `item` and gives optional methods
/// without a body a default one.
fn model(item: &mut ItemTrait, side: Side) -> syn::Result<Model> {
    let mut errors = Errors::default();
    let mut meta = Vec::new();
    for attr in take_attrs(&mut item.attrs, "interface_meta") {
        if let Err(e) = meta_pairs(&attr, &mut meta) {
            errors.push(e);
        }
    }
    if !item.generics.params.is_empty() || item.generics.where_clause.is_some() {
        errors.spanned(&item.generics, "plugin interfaces cannot be generic");
    }
    if item.unsafety.is_some() {
        errors.spanned(item.unsafety, "plugin interfaces cannot be `unsafe` traits");
    }
    if item.auto_token.is_some() {
        errors.spanned(item.auto_token, "plugin interfaces cannot be auto traits");
    }
    if !has_bound(item, "Send") || !has_bound(item, "Sync") {
        let ident = &item.ident;
        errors.spanned(
            ident,
            format!(
                "plugin interfaces are called from many threads: declare `trait {ident}: Send + Sync`"
            ),
        );
    }
    let mut methods = Vec::new();
    let item_ident = item.ident.clone();
    for trait_item in &mut item.items {
        match trait_item {
            TraitItem::Fn(f) => {
                let optional = take_attrs(&mut f.attrs, "optional");
                let method_meta = take_attrs(&mut f.attrs, "method_meta");
                let since = optional_since(&optional, side, &mut errors);
                let mut pairs = Vec::new();
                for attr in &method_meta {
                    if let Err(e) = meta_pairs(attr, &mut pairs) {
                        errors.push(e);
                    }
                }
                if since.is_some() && f.default.is_none() {
                    let message = format!(
                        "optional method `{}::{}` is not implemented by this plugin \
                         (fidius hosts get `CallError::NotImplemented` instead of calling it)",
                        item_ident, f.sig.ident
                    );
                    f.default = Some(syn::parse_quote!({ ::core::panic!(#message) }));
                    f.attrs.push(syn::parse_quote!(#[allow(unused_variables)]));
                }
                if let Some(mut m) = method(f, &mut errors) {
                    m.since = since;
                    m.meta = pairs;
                    methods.push(m);
                }
            }
            other => errors.spanned(
                other,
                "plugin interfaces may only contain methods (no associated types, consts or macros)",
            ),
        }
    }
    if methods.is_empty() && item.items.is_empty() {
        errors.spanned(&item.ident, "a plugin interface needs at least one method");
    }
    let optional = methods.iter().filter(|m| m.since.is_some()).count();
    if optional > 64 {
        errors.spanned(&item.ident, "at most 64 methods can be `#[optional]`");
    }
    // Vtable order: required methods first, then optional ones, each group
    // in declaration order (stable sort).
    methods.sort_by_key(|m| m.since.is_some());
    errors.finish().map(|()| (meta, methods))
}

/// `#[optional(since = N)]`.
fn optional_since(attrs: &[syn::Attribute], side: Side, errors: &mut Errors) -> Option<u32> {
    let attr = attrs.first()?;
    if side == Side::Host {
        errors.spanned(
            attr,
            "host interfaces cannot have optional methods: the host always implements all of them",
        );
        return None;
    }
    if let Some(second) = attrs.get(1) {
        errors.spanned(second, "`#[optional]` given twice");
    }
    let mut since = None;
    let parsed = attr.parse_nested_meta(|meta| {
        if meta.path.is_ident("since") {
            let lit: syn::LitInt = meta.value()?.parse()?;
            let value = lit.base10_parse::<u32>()?;
            if value == 0 {
                return Err(syn::Error::new_spanned(&lit, "`since` starts at 1"));
            }
            since = Some(value);
            Ok(())
        } else {
            Err(meta.error("expected `since = N`, the interface version that added the method"))
        }
    });
    if let Err(e) = parsed {
        errors.push(e);
        return None;
    }
    if since.is_none() {
        errors.spanned(
            attr,
            "missing `since`: write `#[optional(since = N)]` with the interface version that added the method",
        );
    }
    since
}

fn method(f: &TraitItemFn, errors: &mut Errors) -> Option<Method> {
    let sig = &f.sig;
    let before = errors.count();
    if sig.asyncness.is_some() {
        errors.spanned(
            sig.asyncness,
            "`async fn` is not supported in plugin interfaces; return a value (streams come with `fidius::Stream<T>`)",
        );
    }
    if sig.unsafety.is_some() {
        errors.spanned(sig.unsafety, "plugin methods cannot be `unsafe`");
    }
    if sig.constness.is_some() {
        errors.spanned(sig.constness, "plugin methods cannot be `const`");
    }
    if let Some(abi) = &sig.abi {
        errors.spanned(
            abi,
            "plugin methods cannot declare an ABI; fidius generates the `extern \"C\"` shims",
        );
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.spanned(&sig.generics, "plugin methods cannot be generic");
    }
    if let Some(v) = &sig.variadic {
        errors.spanned(v, "plugin methods cannot be variadic");
    }
    let mut inputs = sig.inputs.iter();
    match inputs.next() {
        Some(FnArg::Receiver(r)) if r.reference.is_some() && r.mutability.is_none() && r.colon_token.is_none() => {}
        Some(FnArg::Receiver(r)) if r.mutability.is_some() && r.reference.is_some() => errors.spanned(
            r,
            "plugin methods take `&self`: plugins are shared across threads, keep mutable state behind a lock",
        ),
        Some(FnArg::Receiver(r)) => errors.spanned(r, "plugin methods take `&self`"),
        _ => errors.spanned(&sig.ident, "plugin methods take `&self` as their first parameter"),
    }
    let mut args = Vec::new();
    for (index, input) in inputs.enumerate() {
        let FnArg::Typed(pt) = input else { continue };
        if let Some((tokens, why)) = types::unsupported(&pt.ty) {
            errors.spanned(tokens, why);
            continue;
        }
        let name = match &*pt.pat {
            Pat::Ident(p) if p.subpat.is_none() => p.ident.clone(),
            _ => Ident::new(&format!("arg{index}"), Span::call_site()),
        };
        args.push(Arg {
            name,
            ty: (*pt.ty).clone(),
            kind: types::classify_arg(&pt.ty),
        });
    }
    let ret_ty: Type = match &sig.output {
        ReturnType::Default => syn::parse_quote!(()),
        ReturnType::Type(_, ty) => (**ty).clone(),
    };
    let ret = ret_type(&ret_ty, errors)?;
    if errors.count() != before {
        return None;
    }
    Some(Method {
        ident: sig.ident.clone(),
        docs: f
            .attrs
            .iter()
            .filter(|a| a.path().is_ident("doc"))
            .cloned()
            .collect(),
        args,
        ret,
        since: None,
        meta: Vec::new(),
    })
}

fn ret_type(ty: &Type, errors: &mut Errors) -> Option<Ret> {
    let check = |ty: &Type, errors: &mut Errors| -> bool {
        if let Type::Reference(_) = ty {
            errors.spanned(
                ty,
                "plugin methods cannot return borrowed data; return an owned type",
            );
            return false;
        }
        if let Some((tokens, why)) = types::unsupported(ty) {
            errors.spanned(tokens, why);
            return false;
        }
        true
    };
    if let Some((ok, err)) = types::as_result(ty) {
        let fine = check(ok, errors) & check(err, errors);
        return fine.then(|| Ret::Fallible {
            ok: Value {
                ty: ok.clone(),
                kind: types::classify_ret(ok),
            },
            err: Box::new(err.clone()),
        });
    }
    check(ty, errors).then(|| {
        Ret::Plain(Value {
            ty: ty.clone(),
            kind: types::classify_ret(ty),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interface(tokens: TokenStream) -> Interface {
        let mut item: ItemTrait = syn::parse2(tokens).unwrap();
        let args = parse_interface_args(quote::quote!(version = 2), Side::Plugin).unwrap();
        let (meta, methods) = model(&mut item, Side::Plugin).unwrap_or_else(|e| panic!("{e}"));
        Interface {
            ident: item.ident.clone(),
            vis: item.vis.clone(),
            version: args.version,
            buffer: args.buffer,
            krate: args.krate,
            host: None,
            config: None,
            side: Side::Plugin,
            meta,
            methods,
        }
    }

    #[test]
    fn a_declared_config_type_enters_the_hash_first() {
        let mut iface = interface(quote::quote! {
            trait T: Send + Sync { fn a(&self) -> u8; }
        });
        assert_eq!(iface.canonical(), "T{fn a()->u8;}");
        iface.config = Some(syn::parse_quote!(crate::Settings));
        assert_eq!(iface.canonical(), "T{config=crate::Settings;fn a()->u8;}");
    }

    #[test]
    fn optional_methods_do_not_enter_the_hash_and_go_last() {
        let base = interface(quote::quote! {
            trait T: Send + Sync { fn a(&self) -> u8; fn b(&self); }
        });
        let evolved = interface(quote::quote! {
            #[interface_meta(owner = "imaging")]
            trait T: Send + Sync {
                #[optional(since = 2)]
                #[method_meta(unit = "px", cost = "high")]
                fn c(&self, x: u32) -> u32;
                fn a(&self) -> u8;
                fn b(&self);
            }
        });
        assert_eq!(base.canonical(), evolved.canonical());
        let order: Vec<String> = evolved
            .methods
            .iter()
            .map(|m| m.ident.to_string())
            .collect();
        assert_eq!(order, ["a", "b", "c"]);
        assert_eq!(evolved.methods[2].since, Some(2));
        assert_eq!(evolved.methods[2].meta[1], ("cost".into(), "high".into()));
        assert_eq!(evolved.meta, [("owner".to_string(), "imaging".to_string())]);
    }

    #[test]
    fn canonical_text_is_pinned() {
        let iface = interface(quote::quote! {
            pub trait ImageFilter: Send + Sync {
                fn apply(&self, input: ApplyInput) -> ApplyOutput;
                fn name(&self) -> String;
                fn check(&self, data: &[u8], strict: bool) -> Result<(), Problem>;
            }
        });
        assert_eq!(
            iface.canonical(),
            "ImageFilter{fn apply(ApplyInput)->ApplyOutput;fn name()->String;\
             fn check(&[u8],bool)->Result<(),Problem>;}"
        );
    }

    #[test]
    fn parameter_names_do_not_matter_but_types_do() {
        let a = interface(quote::quote! { trait T: Send + Sync { fn f(&self, x: u32) -> u8; } });
        let b =
            interface(quote::quote! { trait T: Send + Sync { fn f(&self, renamed: u32) -> u8; } });
        let c = interface(quote::quote! { trait T: Send + Sync { fn f(&self, x: u64) -> u8; } });
        assert_eq!(a.canonical(), b.canonical());
        assert_ne!(a.canonical(), c.canonical());
    }
}
