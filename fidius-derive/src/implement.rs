//! `#[plugin_impl(Trait)]`: exports an impl block as a plugin.
//!
//! Emits the impl unchanged plus, in a `const _` block:
//! * a static vtable taken from `<dyn Trait as Implement<Type>>::VTABLE`;
//! * the [`PluginDescriptor`](fidius_guest::abi::PluginDescriptor) exported
//!   as `fidius_desc__<Trait>__<Type>`;
//! * the static metadata record exported as `fidius_meta__<Trait>__<Type>`.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{ItemImpl, Type};

use crate::args::parse_impl_args;
use crate::errors::{Errors, with_item};

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let item_impl: ItemImpl = match syn::parse2(item.clone()) {
        Ok(i) => i,
        Err(_) => {
            let e = syn::Error::new(
                proc_macro2::Span::call_site(),
                "#[plugin_impl(Trait)] goes on an impl block: `impl Trait for MyPlugin { … }`",
            );
            return with_item(item, e);
        }
    };
    match emit(args, &item_impl) {
        Ok(tokens) => tokens,
        Err(e) => with_item(item_impl.into_token_stream(), e),
    }
}

fn emit(args: TokenStream, item: &ItemImpl) -> syn::Result<TokenStream> {
    let mut errors = Errors::default();
    let args = match parse_impl_args(args) {
        Ok(a) => Some(a),
        Err(e) => {
            errors.push(e);
            None
        }
    };
    if !item.generics.params.is_empty() || item.generics.where_clause.is_some() {
        errors.spanned(
            &item.generics,
            "plugin types cannot be generic: the host must know the concrete type",
        );
    }
    if let Some(unsafety) = item.unsafety {
        errors.spanned(unsafety, "plugin impls cannot be `unsafe`");
    }
    let trait_path = match &item.trait_ {
        Some((None, path, _)) => Some(path),
        Some((Some(bang), _, _)) => {
            errors.spanned(bang, "negative impls cannot be plugins");
            None
        }
        None => {
            errors.spanned(
                &item.self_ty,
                "#[plugin_impl] goes on a trait impl: `impl Trait for MyPlugin { … }`",
            );
            None
        }
    };
    let plugin_ident = match &*item.self_ty {
        Type::Path(p) if p.qself.is_none() => match p.path.segments.last() {
            Some(seg) if seg.arguments.is_none() => Some(seg.ident.clone()),
            // Already reported on the impl's generics.
            _ if !item.generics.params.is_empty() => None,
            _ => {
                errors.spanned(
                    &item.self_ty,
                    "plugin types cannot be generic: the host must know the concrete type",
                );
                None
            }
        },
        other => {
            errors.spanned(
                other,
                "a plugin must be a named type such as `struct MyPlugin;`",
            );
            None
        }
    };
    if let (Some(args), Some(trait_path)) = (&args, trait_path) {
        let named = args.interface.segments.last().map(|s| &s.ident);
        let implemented = trait_path.segments.last().map(|s| &s.ident);
        if named != implemented {
            errors.spanned(
                trait_path,
                format!(
                    "this impl is for `{}` but the attribute names `{}`",
                    trait_path.to_token_stream().to_string().replace(' ', ""),
                    args.interface
                        .to_token_stream()
                        .to_string()
                        .replace(' ', "")
                ),
            );
        }
    }
    if let Some(ident) = &plugin_ident
        && !ident.to_string().is_ascii()
    {
        errors.spanned(
            ident,
            "plugin type names must be ASCII (they become exported symbol names)",
        );
    }
    let result = errors.finish();
    let (Some(args), Some(plugin_ident)) = (args, plugin_ident) else {
        // Both `None` cases pushed an error, so `result` is an `Err`.
        return Err(result.err().unwrap_or_else(|| {
            syn::Error::new(proc_macro2::Span::call_site(), "invalid #[plugin_impl]")
        }));
    };
    result?;

    let krate = &args.krate;
    let p = quote!(#krate::__private);
    let iface = &args.interface;
    let iface_name = iface
        .segments
        .last()
        .map(|s| s.ident.to_string())
        .unwrap_or_default();
    let self_ty = &item.self_ty;
    let plugin_name = plugin_ident.to_string();
    let desc_symbol = format!("fidius_desc__{iface_name}__{plugin_name}");
    let meta_symbol = format!("fidius_meta__{iface_name}__{plugin_name}");
    let implemented: Vec<String> = item
        .items
        .iter()
        .filter_map(|i| match i {
            syn::ImplItem::Fn(f) => Some(f.sig.ident.to_string()),
            _ => None,
        })
        .collect();
    let config_type = args
        .config
        .as_ref()
        .map(crate::types::canonical)
        .unwrap_or_default();
    let host = if args.host {
        quote!(unsafe { #p::host_client(__host) }?)
    } else {
        quote!()
    };
    let ctor = match &args.config {
        None if !args.host => {
            quote!(::core::result::Result::Ok(<#self_ty as ::core::default::Default>::default()))
        }
        None => quote!(::core::result::Result::Ok(<#self_ty>::new(#host))),
        Some(config) => {
            let comma = if args.host { quote!(,) } else { quote!() };
            quote_spanned! {config.span()=>
                let __config: #config = unsafe { #p::config::<#config>(__config_ptr, __config_len) }?;
                match <#self_ty>::configure(__config #comma #host) {
                    ::core::result::Result::Ok(__v) => ::core::result::Result::Ok(__v),
                    ::core::result::Result::Err(__e) => {
                        #[allow(unused_imports)]
                        use #p::{IntoPluginErrorDisplay as _, IntoPluginErrorExact as _};
                        ::core::result::Result::Err(#p::rejected((&&#p::ErrorWrap(__e)).fidius_plugin_error()))
                    }
                }
            }
        }
    };
    // The configuration must be the one the interface declares, if any.
    let accepts = match &args.config {
        Some(config) => quote_spanned! {config.span()=>
            const _: () = #p::accepts_config::<dyn #iface, #config>();
        },
        None => quote_spanned! {iface.span()=>
            const _: () = #p::accepts_config::<dyn #iface, #p::NoConfig>();
        },
    };
    let wasm = crate::wasm_glue::emit(&crate::wasm_glue::Glue {
        krate,
        iface,
        iface_name: &iface_name,
        plugin_name: &plugin_name,
        item,
        config: args.config.as_ref(),
        host: args.host,
    });
    Ok(quote! {
        #item

        #wasm

        #accepts

        impl #p::Implemented for #self_ty {
            const METHODS: &'static [&'static str] = &[#(#implemented),*];
        }

        #[cfg(not(target_family = "wasm"))]
        #[allow(non_upper_case_globals, clippy::undocumented_unsafe_blocks, unused_unsafe)]
        const _: () = {
            static __FIDIUS_VTABLE: <dyn #iface as #p::Implement<#self_ty>>::VTable =
                <dyn #iface as #p::Implement<#self_ty>>::VTABLE;

            // The runtime calls this with a config slice and host table that
            // outlive the call, and valid out slots.
            unsafe extern "C" fn __fidius_create(
                __config_ptr: *const u8,
                __config_len: usize,
                __host: *const #p::RawHost,
                __out: *mut #p::InstancePtr,
                __err: *mut #p::RBuf,
            ) -> u32 {
                let _ = (__config_ptr, __config_len, __host);
                unsafe { #p::create::<#self_ty>(__out, __err, || { #ctor }) }
            }

            #[unsafe(export_name = #desc_symbol)]
            static __FIDIUS_DESCRIPTOR: #p::PluginDescriptor = #p::descriptor::<#self_ty>(
                &<dyn #iface as #p::Interface>::INFO,
                #plugin_name,
                &__FIDIUS_VTABLE as *const _ as *const ::core::ffi::c_void,
                __fidius_create,
                #p::capabilities(
                    &<dyn #iface as #p::Interface>::INFO,
                    <#self_ty as #p::Implemented>::METHODS,
                ),
            );

        };

        // The static metadata record: an exported symbol in a native
        // library; on WASM the `fidius-meta` custom section, which the
        // runtime and `cargo fidius inspect` read without instantiating the
        // component.
        const _: () = {
            const __FIDIUS_RECORD: #p::MetaRecord = #p::MetaRecord {
                interface: &<dyn #iface as #p::Interface>::INFO,
                plugin_name: #plugin_name,
                implemented: <#self_ty as #p::Implemented>::METHODS,
                config_type: #config_type,
            };
            const __FIDIUS_META_LEN: usize = #p::meta_len(&__FIDIUS_RECORD);
            #[cfg_attr(not(target_family = "wasm"), unsafe(export_name = #meta_symbol))]
            #[cfg_attr(target_family = "wasm", unsafe(link_section = "fidius-meta"), used)]
            static __FIDIUS_META: [u8; __FIDIUS_META_LEN] =
                #p::meta_encode::<__FIDIUS_META_LEN>(&__FIDIUS_RECORD);
        };
    })
}
