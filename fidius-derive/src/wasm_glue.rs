//! The WebAssembly component glue `#[plugin_impl]` emits (under
//! `#[cfg(target_family = "wasm")]`), so one plugin crate builds for native
//! and WASM unchanged.
//!
//! Two parts:
//! * every `#[plugin_impl]` registers its constructor (an `inventory`
//!   entry naming the interface and the plugin);
//! * the first `#[plugin_impl]` of an interface in a crate also emits the
//!   interface's glue: it reads the interface's WIT (written by `cargo
//!   fidius wit`, found through `FIDIUS_WIT_PATH`, which `cargo fidius
//!   build` sets), runs `wit-bindgen` on it, and implements the generated
//!   `Guest` traits. `plugin.create` makes the plugin it names through the
//!   registry; the other exports call the instance's `Rc<dyn Trait>`
//!   through what `#[plugin_interface]` emits for WASM (see
//!   `wasm_dispatch`). So a component holds any number of plugins of an
//!   interface, as a native library does.
//!
//! Values cross between the bindings' types and the interface's serde
//! types through the wire format (identical shapes by construction);
//! identical types are moved as they are.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{ItemImpl, Path, Type};

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
    let register = register(g);
    let glue = if first_of(&kebab(g.iface_name)) {
        interface_glue(g)
    } else {
        quote!()
    };
    quote! {
        #register
        #glue
    }
}

/// Whether this is the first `#[plugin_impl]` of interface `iface` this
/// compiler process expands for the crate being compiled.
///
/// A component exports each interface once, and a macro invocation cannot
/// see its siblings, so the first `#[plugin_impl]` of an interface emits
/// the interface's glue and every one registers its plugin. rustc expands
/// each invocation once per compilation, and one rustc process compiles one
/// crate, which makes "first" well-defined; the key also names the crate,
/// for tools that keep one process across crates. Only the `wasm` build
/// uses the glue, which calls plugins through the registry, so it does not
/// matter which `#[plugin_impl]` is first.
fn first_of(iface: &str) -> bool {
    static SEEN: std::sync::Mutex<std::collections::BTreeSet<String>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let key = format!(
        "{} {} {iface}",
        var("CARGO_MANIFEST_DIR"),
        var("CARGO_CRATE_NAME")
    );
    SEEN.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(key)
}

/// The plugin's constructor, registered for the interface's glue.
fn register(g: &Glue<'_>) -> TokenStream {
    let krate = g.krate;
    let p = quote!(#krate::__private);
    let iface = g.iface;
    let self_ty = &g.item.self_ty;
    let plugin_name = g.plugin_name;
    let host = if g.host {
        quote!(#p::wasm_host_client(#plugin_name, __host))
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
                let __config: #config = #p::wasm_config::<#config>(__config)
                    .map_err(#p::WasmCreateError::Config)?;
                match <#self_ty>::configure(__config #comma #host) {
                    ::core::result::Result::Ok(__v) => ::core::result::Result::Ok(__v),
                    ::core::result::Result::Err(__e) => {
                        #[allow(unused_imports)]
                        use #p::{IntoPluginErrorDisplay as _, IntoPluginErrorExact as _};
                        ::core::result::Result::Err(#p::WasmCreateError::Rejected(
                            (&&#p::ErrorWrap(__e)).fidius_plugin_error(),
                        ))
                    }
                }
            }
        }
    };
    quote! {
        #[cfg(target_family = "wasm")]
        #[allow(non_snake_case, clippy::all)]
        const _: () = {
            fn __fidius_wasm_create(
                __config: &[u8],
                __host: #p::WasmHost,
            ) -> ::core::result::Result<::std::boxed::Box<dyn ::core::any::Any>, #p::WasmCreateError> {
                let _ = (&__config, &__host);
                let __made: ::core::result::Result<#self_ty, #p::WasmCreateError> = { #ctor };
                let __plugin: ::std::rc::Rc<dyn #iface> = ::std::rc::Rc::new(__made?);
                ::core::result::Result::Ok(#p::wasm_made(__plugin))
            }

            #p::inventory::submit! {
                #p::WasmPluginEntry {
                    interface: <dyn #iface as #p::Interface>::INFO.name,
                    plugin: #plugin_name,
                    create: __fidius_wasm_create,
                }
            }
        };
    }
}

/// The component glue of the interface: its bindings, exports and the
/// instance's plugin, created by name through the registry.
fn interface_glue(g: &Glue<'_>) -> TokenStream {
    let krate = g.krate;
    let p = quote!(#krate::__private);
    let iface = g.iface;
    let iface_kebab = kebab(g.iface_name);
    let iface_name = g.iface_name;
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
            .and_then(|f| f.params.into_iter().nth(1))
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
    let host = quote!(__b::fidius::#pkg::host);
    let stale = format!(
        "{path_str} is stale: it does not describe this version of `{}`; regenerate it with \
         `cargo fidius wit`",
        g.iface_name
    );

    let mut methods = Vec::new();
    let mut scalar_arms = Vec::new();
    for (index, f) in funcs.iter().enumerate() {
        let index = index as u32;
        let rust_name = format_ident!("{}", snake(&f.name));
        let method_name = snake(&f.name);
        let wrapper = format_ident!("__fidius_wasm_{}", method_name);
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
        let mut args = Vec::new();
        for ((name, wit_ty), (param, wit)) in params.iter().zip(&f.params) {
            if is_input(wit) {
                args.push(quote! {
                    #p::typed_stream_arg(move |__max: u32| #name.next(__max), #method_name)
                });
            } else {
                let what = format!("argument `{param}` of `{method_name}`");
                args.push(quote!(#p::transcode::<#wit_ty, _>(#name, #what)));
            }
        }
        let call = quote!(<dyn #iface>::#wrapper(&*__this(), #(#args),*));
        let what = format!("result of `{method_name}`");
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
    let module = format_ident!("__fidius_wasm_{}", iface_name);
    let (create_sig, create_encode) = match &typed_config {
        Some(t) => {
            let t = t.rust(&lifecycle);
            (
                quote!(fn create(__plugin: ::std::string::String, __typed: #t) -> ::core::result::Result<(), #lifecycle::CreateError>),
                quote!(let __config: ::std::vec::Vec<u8> = #p::wasm_encode_config(&__typed);),
            )
        }
        None => (
            quote!(fn create(__plugin: ::std::string::String, __config: ::std::vec::Vec<u8>) -> ::core::result::Result<(), #lifecycle::CreateError>),
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
            // in between, and a component instance runs one call at a
            // time, on one thread).
            ::std::thread_local! {
                static __INSTANCE: ::core::cell::RefCell<::core::option::Option<::std::rc::Rc<dyn #iface>>> =
                    const { ::core::cell::RefCell::new(::core::option::Option::None) };
            }

            fn __this() -> ::std::rc::Rc<dyn #iface> {
                match __INSTANCE.with_borrow(::core::clone::Clone::clone) {
                    ::core::option::Option::Some(__v) => __v,
                    ::core::option::Option::None => #p::wasm_not_created(#iface_name),
                }
            }

            struct __Glue;

            impl #lifecycle::Guest for __Glue {
                #create_sig {
                    #p::wasm_install_panic_hook(#host::panicked);
                    #create_encode
                    let __made = #p::wasm_create::<dyn #iface>(
                        <dyn #iface as #p::Interface>::INFO.name,
                        &__plugin,
                        &__config,
                        __wasm_host(),
                    );
                    match __made {
                        ::core::result::Result::Ok(__v) => {
                            __INSTANCE.set(::core::option::Option::Some(__v));
                            ::core::result::Result::Ok(())
                        }
                        ::core::result::Result::Err(#p::WasmCreateError::Config(__m)) => {
                            ::core::result::Result::Err(#lifecycle::CreateError::Config(__m))
                        }
                        ::core::result::Result::Err(#p::WasmCreateError::Rejected(__e)) => {
                            ::core::result::Result::Err(#lifecycle::CreateError::Rejected(
                                #p::transcode(__e, "the plugin's error"),
                            ))
                        }
                        ::core::result::Result::Err(#p::WasmCreateError::UnknownPlugin(__m)) => {
                            ::core::result::Result::Err(#lifecycle::CreateError::UnknownPlugin(__m))
                        }
                    }
                }

                fn destroy() {
                    let __taken = __INSTANCE.take();
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
                    next: #host::stream_next,
                    drop: #host::stream_drop,
                }
            }

            fn __event(__e: #host::CallEvent) -> #p::HostCallEvent {
                match __e {
                    #host::CallEvent::Need(__n) => #p::HostCallEvent::Need { position: __n.position, max: __n.max },
                    #host::CallEvent::Dropped(__n) => #p::HostCallEvent::Dropped(__n),
                    #host::CallEvent::Done(__r) => #p::HostCallEvent::Done(__r),
                }
            }

            fn __wasm_host() -> #p::WasmHost {
                #p::WasmHost {
                    call: #host::call,
                    call_start: |__m, __a, __n| __event(#host::call_start(__m, __a, __n)),
                    call_feed: |__f| __event(#host::call_feed(&match __f {
                        #p::HostCallFeed::Items(__b) => #host::Feed::Items(__b),
                        #p::HostCallFeed::End => #host::Feed::End,
                        #p::HostCallFeed::Failed(__m) => #host::Feed::Failed(__m),
                        #p::HostCallFeed::Ack => #host::Feed::Ack,
                    })),
                    streams: __host_streams(),
                }
            }

            impl #fast::Guest for __Glue {
                fn call(
                    __method: u32,
                    __args: ::std::vec::Vec<u8>,
                    __streams: ::std::vec::Vec<u32>,
                ) -> ::core::result::Result<::std::vec::Vec<u8>, ::std::string::String> {
                    __this().__fidius_wasm_fast(__method, &__args, &__streams, __host_streams())
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
