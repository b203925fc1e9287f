//! `impl WitInterface for dyn Trait`: the code that derives an interface's
//! WIT at run time (`cargo fidius wit` calls it), by tracing each argument
//! and return type through serde.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use crate::interface::{Interface, Ret, Value};
use crate::types::{ArgKind, RetKind};

/// The WIT type of a stream item; a `Result<T, E>` item (errors as items)
/// becomes `result<T, E>`.
fn stream_item(item: &syn::Type, what: &str, p: &TokenStream) -> TokenStream {
    match crate::types::as_result(item) {
        Some((ok, err)) => quote_spanned! {item.span()=>
            #p::WitTy::Result(
                ::std::boxed::Box::new(__w.ty::<#ok>(#what)?),
                ::std::boxed::Box::new(__w.ty::<#err>(#what)?),
            )
        },
        None => quote_spanned!(item.span()=> __w.ty::<#item>(#what)?),
    }
}

pub(crate) fn wit_impl(iface: &Interface, p: &TokenStream) -> TokenStream {
    let trait_ident = &iface.ident;
    let methods = iface.methods.iter().map(|m| {
        let name = m.ident.to_string();
        let params = m.args.iter().map(|arg| {
            let arg_name = arg.name.to_string();
            let what = format!("argument `{arg_name}` of `{name}`");
            let ty = &arg.ty;
            let traced = match &arg.kind {
                ArgKind::Scalar | ArgKind::String | ArgKind::Vec => quote!(#ty),
                ArgKind::Str => quote!(::std::string::String),
                ArgKind::Bytes => quote!(::std::vec::Vec<u8>),
                ArgKind::Wire { inner, .. } => quote!(#inner),
                ArgKind::Stream { item } => {
                    let item = stream_item(item, &format!("item of {what}"), p);
                    return quote_spanned!(arg.ty.span()=> __params.push((#arg_name, #p::WitTy::Stream(::std::boxed::Box::new(#item))));)
                }
            };
            quote_spanned!(arg.ty.span()=> __params.push((#arg_name, __w.ty::<#traced>(#what)?));)
        });
        let value = |v: &Value, what: String| -> TokenStream {
            let ty = &v.ty;
            match &v.kind {
                RetKind::Unit => quote!(#p::WitTy::Unit),
                RetKind::Stream { item } => {
                    let item = stream_item(item, &format!("item of {what}"), p);
                    quote_spanned!(ty.span()=> #p::WitTy::Stream(::std::boxed::Box::new(#item)))
                }
                _ => quote_spanned!(ty.span()=> __w.ty::<#ty>(#what)?),
            }
        };
        let returns = match &m.ret {
            Ret::Plain(v) => {
                let v = value(v, format!("result of `{name}`"));
                quote!(#p::WitReturns::Plain(#v))
            }
            Ret::Fallible { ok, err } => {
                let ok = value(ok, format!("result of `{name}`"));
                let what = format!("error of `{name}`");
                let err_ty = quote_spanned!(err.span()=> __w.ty::<#err>(#what)?);
                quote!(#p::WitReturns::Fallible(#ok, #err_ty))
            }
        };
        quote! {{
            let mut __params = ::std::vec::Vec::new();
            #(#params)*
            let __returns = #returns;
            __w.method(#name, __params, __returns)?;
        }}
    });
    let config = iface.config.as_ref().map(|config| {
        quote_spanned! {config.span()=>
            let __config = __w.ty::<#config>("the configuration type")?;
            __w.config(__config)?;
        }
    });
    quote! {
        impl dyn #trait_ident {
            /// This interface's WIT (what `cargo fidius wit` writes).
            #[doc(hidden)]
            pub fn __fidius_wit() -> ::core::result::Result<::std::string::String, #p::WitError> {
                <Self as #p::WitInterface>::wit()
            }

            /// Typed Python stubs of this interface (what `cargo fidius
            /// stub --python` writes).
            #[doc(hidden)]
            pub fn __fidius_python() -> ::core::result::Result<::std::string::String, #p::WitError> {
                let __model = <Self as #p::WitInterface>::model()?;
                let __host = #p::host_model::<Self>();
                ::core::result::Result::Ok(#p::python_stub(
                    &<dyn #trait_ident as #p::Interface>::INFO,
                    &__model,
                    __host.as_ref().map(|(__i, __m)| (*__i, __m)),
                ))
            }

            /// A Python plugin skeleton of this interface importing the
            /// stub module `stubs` (what `cargo fidius new plugin --lang
            /// python` writes).
            #[doc(hidden)]
            pub fn __fidius_python_plugin(stubs: &str) -> ::core::result::Result<::std::string::String, #p::WitError> {
                let __model = <Self as #p::WitInterface>::model()?;
                ::core::result::Result::Ok(#p::python_plugin(
                    &<dyn #trait_ident as #p::Interface>::INFO,
                    &__model,
                    <dyn #trait_ident as #p::Interface>::INFO.host.is_some(),
                    stubs,
                ))
            }

            /// The metadata record of plugin `plugin_name` built from this
            /// interface's WIT by another toolchain (what `cargo fidius
            /// stamp` adds to such a component).
            #[doc(hidden)]
            pub fn __fidius_foreign_record(plugin_name: &str) -> ::std::vec::Vec<u8> {
                #p::foreign_record(&<dyn #trait_ident as #p::Interface>::INFO, plugin_name)
            }
        }

        impl #p::WitInterface for dyn #trait_ident {
            #[allow(unreachable_code, clippy::diverging_sub_expression)]
            fn build() -> ::core::result::Result<#p::WitBuilder, #p::WitError> {
                let mut __w = #p::WitBuilder::new(&<dyn #trait_ident as #p::Interface>::INFO);
                #(#methods)*
                #config
                ::core::result::Result::Ok(__w)
            }
        }
    }
}
