//! What `#[plugin_interface]` emits for WebAssembly components (under
//! `#[cfg(target_family = "wasm")]`): an inherent impl on `dyn Trait` that
//! the component glue calls whichever plugin an instance holds through.
//!
//! * `__fidius_wasm_<method>`: the method with owned arguments (`String`
//!   for `&str`, `T` for `&T`), which the typed WIT exports call with the
//!   values they convert from the bindings' types;
//! * `__fidius_wasm_fast`: `fast.call`, the method's wire-format arguments
//!   decoded and its result encoded.
//!
//! Both come from the interface's own signatures, so a component may hold
//! several plugins of one interface: the glue, emitted once, does not
//! depend on any plugin's impl block.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use crate::interface::{Arg, Interface, Method, Ret};
use crate::types::{ArgKind, RetKind};

/// How an argument is decoded from the wire format: the owned type it is
/// decoded into, and whether the method takes it by reference.
pub(crate) fn owned_arg(arg: &Arg) -> (TokenStream, bool) {
    let ty = &arg.ty;
    match &arg.kind {
        ArgKind::Scalar | ArgKind::String | ArgKind::Vec | ArgKind::Stream { .. } => {
            (quote!(#ty), false)
        }
        ArgKind::Str => (quote!(::std::string::String), true),
        ArgKind::Bytes => (quote!(::std::vec::Vec<u8>), true),
        ArgKind::Wire { by_ref, inner } => (quote!(#inner), *by_ref),
    }
}

/// The method's return type as written.
fn return_type(m: &Method) -> TokenStream {
    match &m.ret {
        Ret::Plain(v) => {
            let ty = &v.ty;
            quote!(#ty)
        }
        Ret::Fallible { ok, err } => {
            let ok = &ok.ty;
            quote!(::core::result::Result<#ok, #err>)
        }
    }
}

/// `__fidius_wasm_<method>`.
pub(crate) fn owned_ident(m: &Method) -> proc_macro2::Ident {
    format_ident!("__fidius_wasm_{}", m.ident)
}

pub(crate) fn emit(iface: &Interface, p: &TokenStream) -> TokenStream {
    let trait_ident = &iface.ident;
    let owned = iface.methods.iter().map(|m| {
        let method = &m.ident;
        let wrapper = owned_ident(m);
        let params = m.args.iter().enumerate().map(|(i, a)| {
            let v = format_ident!("__a{}", i);
            let (ty, _) = owned_arg(a);
            quote!(#v: #ty)
        });
        let args = m.args.iter().enumerate().map(|(i, a)| {
            let v = format_ident!("__a{}", i);
            if owned_arg(a).1 {
                quote!(&#v)
            } else {
                quote!(#v)
            }
        });
        let ret = return_type(m);
        quote! {
            #[inline]
            pub fn #wrapper(&self, #(#params),*) -> #ret {
                <Self as #trait_ident>::#method(self, #(#args),*)
            }
        }
    });
    let arms = iface.methods.iter().enumerate().map(|(index, m)| {
        let index = index as u32;
        let method = &m.ident;
        let name = method.to_string();
        let mut decode = Vec::new();
        let mut call_args = Vec::new();
        for (i, arg) in m.args.iter().enumerate() {
            let v = format_ident!("__a{}", i);
            let what = format!("argument `{}` of `{}`", arg.name, method);
            decode.push(match &arg.kind {
                ArgKind::Stream { .. } => quote! {
                    let #v = #p::fast_stream_arg(&mut __rest, __streams, #what, #name, __fns)?;
                },
                ArgKind::Bytes => quote!(let #v: &[u8] = #p::fast_bytes(&mut __rest, #what)?;),
                ArgKind::Vec => quote! {
                    let #v: ::std::vec::Vec<u8> = #p::fast_bytes(&mut __rest, #what)?.to_vec();
                },
                _ => {
                    let (ty, _) = owned_arg(arg);
                    quote!(let #v: #ty = #p::fast_arg(&mut __rest, #what)?;)
                }
            });
            let by_ref = matches!(arg.kind, ArgKind::Str | ArgKind::Wire { by_ref: true, .. });
            call_args.push(if by_ref { quote!(&#v) } else { quote!(#v) });
        }
        let what = format!("result of `{method}`");
        // A returned stream crosses as its handle.
        let ret = match &m.ret {
            Ret::Plain(v) if v.kind == RetKind::Vec => quote!(#p::fast_ret_bytes(&__r)),
            Ret::Plain(v) if matches!(v.kind, RetKind::Stream { .. }) => {
                quote!(#p::fast_ret(&#p::fast_stream_ret(__r, #name), #what))
            }
            Ret::Fallible { ok, .. } if matches!(ok.kind, RetKind::Stream { .. }) => quote! {
                #p::fast_ret(&__r.map(|__s| #p::fast_stream_ret(__s, #name)), #what)
            },
            _ => quote!(#p::fast_ret(&__r, #what)),
        };
        quote! {
            #index => {
                #(#decode)*
                #p::fast_end(__rest)?;
                let __r = <Self as #trait_ident>::#method(self, #(#call_args),*);
                ::core::result::Result::Ok(#ret)
            }
        }
    });
    quote! {
        #[cfg(target_family = "wasm")]
        #[doc(hidden)]
        #[allow(clippy::all, unused_variables, unused_mut)]
        impl dyn #trait_ident {
            #(#owned)*

            /// `fast.call` on this plugin.
            pub fn __fidius_wasm_fast(
                &self,
                __method: u32,
                __args: &[u8],
                __streams: &[u32],
                __fns: #p::HostStreamFns,
            ) -> ::core::result::Result<::std::vec::Vec<u8>, ::std::string::String> {
                let mut __rest: &[u8] = __args;
                match __method {
                    #(#arms)*
                    __other => ::core::result::Result::Err(::std::format!("no method number {__other}")),
                }
            }
        }
    }
}
