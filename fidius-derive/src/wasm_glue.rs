//! The WebAssembly component glue `#[plugin_impl]` emits (under
//! `#[cfg(target_family = "wasm")]`), so one plugin crate builds for native
//! and WASM unchanged.
//!
//! It reads the interface's WIT (written by `cargo fidius wit`, found through
//! `FIDIUS_WIT_PATH`, which `cargo fidius build` sets), runs `wit-bindgen` on
//! it, and implements the generated `Guest` traits by calling the plugin's
//! trait methods. Values cross between the bindings' types and the
//! interface's serde types through the wire format (identical shapes by
//! construction); identical types are moved as they are.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ImplItem, ItemImpl, Path, Type};

use crate::wit_parse::{self, kebab};

pub(crate) struct Glue<'a> {
    pub(crate) krate: &'a Path,
    pub(crate) iface: &'a Path,
    pub(crate) iface_name: &'a str,
    pub(crate) plugin_name: &'a str,
    pub(crate) item: &'a ItemImpl,
    pub(crate) config: Option<&'a Type>,
    pub(crate) host: bool,
}

fn error(msg: String) -> TokenStream {
    quote!(#[cfg(target_family = "wasm")] ::core::compile_error!(#msg);)
}

/// Where the WIT of `iface` is: the first `<dir>/<iface>.wit` among
/// `FIDIUS_WIT_PATH`'s directories.
fn find_wit(file: &str) -> Option<std::path::PathBuf> {
    let dirs = std::env::var_os("FIDIUS_WIT_PATH")?;
    std::env::split_paths(&dirs)
        .map(|d| d.join(file))
        .find(|p| p.is_file())
}

fn snake(kebab: &str) -> String {
    let s = kebab.replace('-', "_");
    const KEYWORDS: &[&str] = &[
        "as", "break", "const", "continue", "crate", "else", "enum", "extern", "false", "fn",
        "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref",
        "return", "self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use",
        "where", "while", "async", "await", "dyn", "abstract", "become", "box", "do", "final",
        "macro", "override", "priv", "typeof", "unsized", "virtual", "yield", "try", "gen",
    ];
    if KEYWORDS.contains(&s.as_str()) {
        format!("{s}_")
    } else {
        s
    }
}

pub(crate) fn emit(g: &Glue<'_>) -> TokenStream {
    let krate = g.krate;
    let p = quote!(#krate::__private);
    let iface = g.iface;
    let iface_kebab = kebab(g.iface_name);
    let file = format!("{iface_kebab}.wit");
    let Some(path) = find_wit(&file) else {
        return error(format!(
            "no WIT found for interface `{}`: build WASM plugins with `cargo fidius build \
             --target wasm32-wasip2`, which finds `wit/{file}` in the interface crate (write it \
             with `cargo fidius wit -p <interface crate>`), or list the directory holding it in \
             FIDIUS_WIT_PATH",
            g.iface_name
        ));
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => return error(format!("cannot read {}: {e}", path.display())),
    };
    let (funcs, outputs) = match wit_parse::interface(&text, &iface_kebab) {
        Ok(f) => f,
        Err(e) => return error(format!("{}: {e}", path.display())),
    };
    // `create` takes the configuration typed when the interface declares
    // one, else its wire encoding.
    let create_param = match wit_parse::interface(&text, "plugin") {
        Ok((funcs, _)) => funcs
            .into_iter()
            .find(|f| f.name == "create")
            .and_then(|f| f.params.into_iter().next())
            .map(|(_, t)| t),
        Err(e) => return error(format!("{}: {e}", path.display())),
    };
    let typed_config = create_param
        .filter(|t| *t != wit_parse::WitType::List(Box::new(wit_parse::WitType::Prim("u8"))));
    // Argument streams are resources of the imported `sources` interface.
    let inputs = if text.lines().any(|l| l.trim() == "interface sources {") {
        match wit_parse::interface(&text, "sources") {
            Ok((_, r)) => r,
            Err(e) => return error(format!("{}: {e}", path.display())),
        }
    } else {
        Vec::new()
    };
    let is_input = |t: &wit_parse::WitType| matches!(t, wit_parse::WitType::Named(n) if inputs.iter().any(|r| &r.name == n));
    let output_of = |t: &wit_parse::WitType| match t {
        wit_parse::WitType::Named(n) => outputs.iter().find(|r| &r.name == n),
        _ => None,
    };
    let path_str = path.display().to_string();
    let world = format!("fidius:{iface_kebab}/{iface_kebab}-rust-plugin");
    let runtime_path = format!(
        "{}::__private::wit_bindgen::rt",
        quote!(#krate).to_string().replace(' ', "")
    );
    let pkg = format_ident!("{}", snake(&iface_kebab));
    let exports = quote!(__b::exports::fidius::#pkg::#pkg);
    let lifecycle = quote!(__b::exports::fidius::#pkg::plugin);
    let fast = quote!(__b::exports::fidius::#pkg::fast);
    let self_ty = &g.item.self_ty;
    let plugin_name = g.plugin_name;
    let stale = format!(
        "{path_str} is stale: it does not describe this version of `{}`; regenerate it with \
         `cargo fidius wit`",
        g.iface_name
    );

    let user_methods: Vec<&syn::ImplItemFn> = g
        .item
        .items
        .iter()
        .filter_map(|i| match i {
            ImplItem::Fn(f) => Some(f),
            _ => None,
        })
        .collect();

    let mut methods = Vec::new();
    let mut fast_arms = Vec::new();
    let mut scalar_arms = Vec::new();
    for (index, f) in funcs.iter().enumerate() {
        let index = index as u32;
        let rust_name = format_ident!("{}", snake(&f.name));
        // `fast.scalar` through the typed export's own glue: the same
        // conversions, no memory crossing.
        if f.params.len() <= SCALAR_ARGS
            && f.params
                .iter()
                .map(|(_, t)| t)
                .chain(&f.result)
                .all(|t| matches!(t, wit_parse::WitType::Prim(_)))
        {
            let bits = [quote!(__x0), quote!(__x1), quote!(__x2), quote!(__x3)];
            let args = bits[..f.params.len()]
                .iter()
                .map(|b| quote!(#p::ScalarBits::from_bits(#b)));
            scalar_arms.push(quote! {
                #index => #p::ScalarBits::to_bits(<__Glue as #exports::Guest>::#rust_name(#(#args),*)),
            });
        }
        let params: Vec<(proc_macro2::Ident, TokenStream)> = f
            .params
            .iter()
            .enumerate()
            .map(|(i, (_, t))| (format_ident!("__p{}", i), t.rust(&quote!(#exports))))
            .collect();
        let decl = params.iter().map(|(n, t)| quote!(#n: #t));
        let ret = f.result.as_ref().map(|t| t.rust(&quote!(#exports)));
        let ret_decl = ret.as_ref().map(|r| quote!(-> #r));
        let Some(user) = user_methods
            .iter()
            .find(|m| kebab(&m.sig.ident.to_string()) == f.name)
        else {
            // An optional method this plugin leaves out: its capability
            // bit is clear, so the runtime never calls it.
            let name = &f.name;
            let unused = params.iter().map(|(n, _)| n);
            methods.push(quote! {
                fn #rust_name(#(#decl),*) #ret_decl {
                    let _ = (#(#unused,)*);
                    #p::wasm_not_implemented(#name)
                }
            });
            fast_arms.push(quote!(#index => #p::wasm_not_implemented(#name),));
            continue;
        };
        let method = &user.sig.ident;
        let method_name = method.to_string();
        let inputs: Vec<&syn::PatType> = user
            .sig
            .inputs
            .iter()
            .filter_map(|a| match a {
                FnArg::Typed(t) => Some(t),
                FnArg::Receiver(_) => None,
            })
            .collect();
        if inputs.len() != params.len() {
            return error(stale.clone());
        }
        let mut fast_args = Vec::new();
        let mut fast_decode = Vec::new();
        for (i, input) in inputs.iter().enumerate() {
            let what = format!("argument `{}` of `{}`", quote!(#input.pat), method);
            let v = format_ident!("__f{}", i);
            let span = input.ty.span();
            let ty = &input.ty;
            if is_stream(ty) {
                fast_decode.push(quote_spanned! {span=>
                    let #v: #ty = #p::fast_stream_arg(&mut __rest, &__streams, #what, #method_name, __host_streams())?;
                });
                fast_args.push(quote!(#v));
                continue;
            }
            if is_u8_slice_ref(&input.ty) {
                fast_decode.push(
                    quote_spanned!(span=> let #v: &[u8] = #p::fast_bytes(&mut __rest, #what)?;),
                );
                fast_args.push(quote!(#v));
                continue;
            }
            if is_vec_u8(&input.ty) {
                fast_decode.push(quote_spanned!(span=> let #v: ::std::vec::Vec<u8> = #p::fast_bytes(&mut __rest, #what)?.to_vec();));
                fast_args.push(quote!(#v));
                continue;
            }
            match &*input.ty {
                Type::Reference(r) => {
                    let target = owned(&r.elem);
                    fast_decode.push(
                        quote_spanned!(span=> let #v: #target = #p::fast_arg(&mut __rest, #what)?;),
                    );
                    fast_args.push(quote!(&#v));
                }
                other => {
                    fast_decode.push(
                        quote_spanned!(span=> let #v: #other = #p::fast_arg(&mut __rest, #what)?;),
                    );
                    fast_args.push(quote!(#v));
                }
            }
        }
        let what_ret = format!("result of `{method}`");
        let fast_ret = match &user.sig.output {
            syn::ReturnType::Type(_, t) if is_vec_u8(t) => quote!(#p::fast_ret_bytes(&__r)),
            // A returned stream crosses as its handle.
            syn::ReturnType::Type(_, t) if is_stream(t) => {
                quote!(#p::fast_ret(&#p::fast_stream_ret(__r, #method_name), #what_ret))
            }
            syn::ReturnType::Type(_, t) if result_ok(t).is_some_and(is_stream) => quote! {
                #p::fast_ret(&__r.map(|__s| #p::fast_stream_ret(__s, #method_name)), #what_ret)
            },
            _ => quote!(#p::fast_ret(&__r, #what_ret)),
        };
        fast_arms.push(quote! {
            #index => {
                #(#fast_decode)*
                #p::fast_end(__rest)?;
                let __r = <#self_ty as #iface>::#method(&*__this(), #(#fast_args),*);
                ::core::result::Result::Ok(#fast_ret)
            }
        });
        let mut args = Vec::new();
        for (((name, wit_ty), input), (_, wit)) in params.iter().zip(&inputs).zip(&f.params) {
            let what = format!("argument `{}` of `{}`", quote!(#input.pat), method);
            let span = input.ty.span();
            if is_input(wit) {
                args.push(quote_spanned! {span=>
                    #p::typed_stream_arg(move |__max: u32| #name.next(__max), #method_name)
                });
                continue;
            }
            let _ = wit_ty;
            let arg = match &*input.ty {
                Type::Reference(r) => {
                    let target = owned(&r.elem);
                    quote_spanned!(span=> &#p::transcode::<#wit_ty, #target>(#name, #what))
                }
                _ => quote_spanned!(span=> #p::transcode::<#wit_ty, _>(#name, #what)),
            };
            args.push(arg);
        }
        let call = quote!(<#self_ty as #iface>::#method(&*__this(), #(#args),*));
        let what = format!("result of `{method}`");
        // A returned stream becomes its `<method>-stream` resource.
        let wrap = |r: &wit_parse::WitResource, value: TokenStream| {
            let handle = wit_parse::WitType::Named(r.name.clone()).rust(&exports);
            let imp = format_ident!("__Out{}", wit_parse::upper_camel(&r.name));
            quote!(#handle::new(#imp(#p::TypedStreamOut::new(#value, #method_name))))
        };
        let body = match (&f.result, &ret) {
            (Some(t), _) if output_of(t).is_some() => {
                let r = output_of(t).expect("checked");
                wrap(r, call)
            }
            (Some(wit_parse::WitType::Result(Some(ok), err)), Some(_))
                if output_of(ok).is_some() =>
            {
                let r = output_of(ok).expect("checked");
                let ok = wrap(r, quote!(__s));
                let err_ty = err.as_ref().map_or(quote!(()), |t| t.rust(&exports));
                quote! {
                    match #call {
                        ::core::result::Result::Ok(__s) => ::core::result::Result::Ok(#ok),
                        ::core::result::Result::Err(__e) => ::core::result::Result::Err(#p::transcode::<_, #err_ty>(__e, #what)),
                    }
                }
            }
            (_, Some(r)) => quote!(#p::transcode::<_, #r>(#call, #what)),
            (_, None) => quote!(#call;),
        };
        methods.push(quote! {
            fn #rust_name(#(#decl),*) #ret_decl { #body }
        });
    }

    let host = if g.host {
        quote!(#p::wasm_host_client(#plugin_name, __b::fidius::#pkg::host::call, __host_streams()))
    } else {
        quote!()
    };
    let ctor = match g.config {
        None if !g.host => {
            quote!(::core::result::Result::Ok(<#self_ty as ::core::default::Default>::default()))
        }
        None => quote!(::core::result::Result::Ok(<#self_ty>::new(#host))),
        Some(config) => {
            let comma = if g.host { quote!(,) } else { quote!() };
            quote_spanned! {config.span()=>
                let __config: #config = match #p::wasm_config::<#config>(&__config) {
                    ::core::result::Result::Ok(__c) => __c,
                    ::core::result::Result::Err(__m) => return ::core::result::Result::Err(#lifecycle::CreateError::Config(__m)),
                };
                match <#self_ty>::configure(__config #comma #host) {
                    ::core::result::Result::Ok(__v) => ::core::result::Result::Ok(__v),
                    ::core::result::Result::Err(__e) => {
                        #[allow(unused_imports)]
                        use #p::{IntoPluginErrorDisplay as _, IntoPluginErrorExact as _};
                        ::core::result::Result::Err((&&#p::ErrorWrap(__e)).fidius_plugin_error())
                    }
                }
            }
        }
    };
    // The exported stream resources: their types in `Guest`, and their
    // `next` reading the stream the method returned.
    let mut resource_types = Vec::new();
    let mut resource_impls = Vec::new();
    for r in &outputs {
        let camel = format_ident!("{}", wit_parse::upper_camel(&r.name));
        let guest = format_ident!("Guest{}", wit_parse::upper_camel(&r.name));
        let imp = format_ident!("__Out{}", wit_parse::upper_camel(&r.name));
        let item = r.item.rust(&exports);
        resource_types.push(quote!(type #camel = #imp;));
        resource_impls.push(quote! {
            struct #imp(#p::TypedStreamOut);

            impl #exports::#guest for #imp {
                fn next(&self, __max: u32) -> ::core::result::Result<::std::vec::Vec<#item>, ::std::string::String> {
                    self.0.next::<#item>(__max)
                }
            }
        });
    }
    let module = format_ident!("__fidius_wasm_{}_{}", g.iface_name, plugin_name);
    let (create_sig, create_encode) = match &typed_config {
        Some(t) => {
            let t = t.rust(&lifecycle);
            (
                quote!(fn create(__typed: #t) -> ::core::result::Result<(), #lifecycle::CreateError>),
                quote!(let __config: ::std::vec::Vec<u8> = #p::wasm_encode_config(&__typed);),
            )
        }
        None => (
            quote!(fn create(__config: ::std::vec::Vec<u8>) -> ::core::result::Result<(), #lifecycle::CreateError>),
            quote!(),
        ),
    };

    quote! {
        #[cfg(target_family = "wasm")]
        #[allow(non_snake_case, unused_imports, dead_code, clippy::all)]
        #[doc(hidden)]
        mod #module {
            use super::*;

            mod __b {
                #p::wit_bindgen::generate!({
                    inline: #text,
                    world: #world,
                    runtime_path: #runtime_path,
                    additional_derives: [#p::WitWire],
                });
            }

            // Rebuild when the WIT changes; refuse one for another version
            // of the interface.
            const _: &[u8] = include_bytes!(#path_str);
            const _: () = ::core::assert!(
                #p::wit_hash_matches(#text, <dyn #iface as #p::Interface>::INFO.hash),
                #stale
            );

            // Set by `create`, taken by `destroy` (the host calls nothing
            // in between, and a component instance runs one call at a time).
            static __INSTANCE: ::std::sync::Mutex<::core::option::Option<::std::sync::Arc<#self_ty>>> =
                ::std::sync::Mutex::new(::core::option::Option::None);

            fn __slot() -> ::std::sync::MutexGuard<'static, ::core::option::Option<::std::sync::Arc<#self_ty>>> {
                __INSTANCE.lock().unwrap_or_else(::std::sync::PoisonError::into_inner)
            }

            fn __this() -> ::std::sync::Arc<#self_ty> {
                match &*__slot() {
                    ::core::option::Option::Some(__v) => ::std::sync::Arc::clone(__v),
                    ::core::option::Option::None => #p::wasm_not_created(#plugin_name),
                }
            }

            struct __Glue;

            impl #lifecycle::Guest for __Glue {
                #create_sig {
                    #p::wasm_install_panic_hook(__b::fidius::#pkg::host::panicked);
                    #create_encode
                    let __made: ::core::result::Result<#self_ty, #p::PluginError> = { #ctor };
                    match __made {
                        ::core::result::Result::Ok(__v) => {
                            *__slot() = ::core::option::Option::Some(::std::sync::Arc::new(__v));
                            ::core::result::Result::Ok(())
                        }
                        ::core::result::Result::Err(__e) => ::core::result::Result::Err(
                            #lifecycle::CreateError::Rejected(#p::transcode(__e, "the plugin's error")),
                        ),
                    }
                }

                fn destroy() {
                    let __taken = __slot().take();
                    drop(__taken);
                }
            }

            impl #exports::Guest for __Glue {
                #(#resource_types)*
                #(#methods)*
            }

            #(#resource_impls)*

            fn __host_streams() -> #p::HostStreamFns {
                #p::HostStreamFns {
                    next: __b::fidius::#pkg::host::stream_next,
                    drop: __b::fidius::#pkg::host::stream_drop,
                }
            }

            impl #fast::Guest for __Glue {
                fn call(
                    __method: u32,
                    __args: ::std::vec::Vec<u8>,
                    __streams: ::std::vec::Vec<u32>,
                ) -> ::core::result::Result<::std::vec::Vec<u8>, ::std::string::String> {
                    let mut __rest: &[u8] = &__args;
                    match __method {
                        #(#fast_arms)*
                        __other => ::core::result::Result::Err(::std::format!("no method number {__other}")),
                    }
                }

                #[allow(unused_variables)]
                fn scalar(__method: u32, __x0: u64, __x1: u64, __x2: u64, __x3: u64) -> u64 {
                    match __method {
                        #(#scalar_arms)*
                        __other => #p::wasm_not_scalar(__other),
                    }
                }

                fn stream_next(
                    __stream: u32,
                    __max: u32,
                ) -> ::core::result::Result<::core::option::Option<::std::vec::Vec<u8>>, ::std::string::String> {
                    #p::fast_stream_next(__stream, __max)
                }

                fn stream_drop(__stream: u32) {
                    #p::fast_stream_drop(__stream)
                }
            }

            __b::export!(__Glue with_types_in __b);
        }
    }
}

/// The most parameters a method may have to take `fast.scalar`.
const SCALAR_ARGS: usize = 4;

/// `#[derive(WitWire)]`, put on the types `wit-bindgen` generates: serde
/// impls through a field-for-field shadow type (`#[serde(remote)]`), so the
/// bindings' types and the interface's types share one wire encoding.
pub(crate) fn wit_wire(input: TokenStream) -> TokenStream {
    let item: syn::DeriveInput = match syn::parse2(input) {
        Ok(i) => i,
        Err(e) => return e.to_compile_error(),
    };
    let ident = &item.ident;
    let remote = ident.to_string();
    let mut shadow = item.clone();
    shadow.attrs.clear();
    shadow.ident = format_ident!("__FidiusShadow");
    shadow.vis = syn::Visibility::Inherited;
    match &mut shadow.data {
        syn::Data::Struct(s) => s.fields.iter_mut().for_each(|f| f.attrs.clear()),
        syn::Data::Enum(e) => e.variants.iter_mut().for_each(|v| {
            v.attrs.clear();
            v.discriminant = None;
            v.fields.iter_mut().for_each(|f| f.attrs.clear());
        }),
        syn::Data::Union(_) => {
            return syn::Error::new(ident.span(), "WitWire does not support unions")
                .to_compile_error();
        }
    }
    let serde = quote!(::fidius::__private::serde);
    let serde_path = "::fidius::__private::serde";
    quote! {
        const _: () = {
            #[derive(#serde::Serialize, #serde::Deserialize)]
            #[serde(crate = #serde_path, remote = #remote)]
            #[allow(dead_code, non_camel_case_types)]
            #shadow

            impl #serde::Serialize for #ident {
                fn serialize<__S: #serde::Serializer>(&self, __s: __S) -> ::core::result::Result<__S::Ok, __S::Error> {
                    __FidiusShadow::serialize(self, __s)
                }
            }

            impl<'de> #serde::Deserialize<'de> for #ident {
                fn deserialize<__D: #serde::Deserializer<'de>>(__d: __D) -> ::core::result::Result<Self, __D::Error> {
                    __FidiusShadow::deserialize(__d)
                }
            }
        };
    }
}

/// `Vec<u8>` as written (any path ending in `Vec` with the argument `u8`).
fn is_vec_u8(ty: &Type) -> bool {
    let Type::Path(p) = ty else { return false };
    let Some(seg) = p.path.segments.last() else {
        return false;
    };
    if seg.ident != "Vec" {
        return false;
    }
    let syn::PathArguments::AngleBracketed(args) = &seg.arguments else {
        return false;
    };
    matches!(args.args.first(), Some(syn::GenericArgument::Type(Type::Path(t))) if args.args.len() == 1 && t.path.is_ident("u8"))
}

/// `Stream<T>` as written (any path ending in `Stream` with one type
/// argument).
fn is_stream(ty: &Type) -> bool {
    let Type::Path(p) = ty else { return false };
    p.path.segments.last().is_some_and(|seg| {
        seg.ident == "Stream"
            && matches!(&seg.arguments, syn::PathArguments::AngleBracketed(a) if a.args.len() == 1)
    })
}

/// `T` of `Result<T, E>` as written.
fn result_ok(ty: &Type) -> Option<&Type> {
    let Type::Path(p) = ty else { return None };
    let seg = p.path.segments.last()?;
    if seg.ident != "Result" {
        return None;
    }
    match &seg.arguments {
        syn::PathArguments::AngleBracketed(a) => match a.args.first()? {
            syn::GenericArgument::Type(t) => Some(t),
            _ => None,
        },
        _ => None,
    }
}

/// `&[u8]` as written.
fn is_u8_slice_ref(ty: &Type) -> bool {
    matches!(ty, Type::Reference(r) if matches!(&*r.elem, Type::Slice(s) if matches!(&*s.elem, Type::Path(t) if t.path.is_ident("u8"))))
}

/// The owned type a `&T` parameter is decoded into: `String` for `str`,
/// `Vec<E>` for `[E]`, else `T`.
fn owned(referent: &Type) -> TokenStream {
    match referent {
        Type::Path(tp) if tp.path.is_ident("str") => quote!(::std::string::String),
        Type::Slice(s) => {
            let e = &s.elem;
            quote!(::std::vec::Vec<#e>)
        }
        other => quote!(#other),
    }
}
