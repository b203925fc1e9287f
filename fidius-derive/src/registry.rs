//! `fidius_plugin_registry!()`: exports the library header
//! (`fidius_library`) that marks a cdylib as a fidius plugin library and
//! says which ABI it speaks. The plugins themselves are found through their
//! own exported descriptor and metadata symbols.

use proc_macro2::TokenStream;
use quote::quote;
use syn::parse::Parser;

use crate::args::{default_crate, parse_crate};

pub(crate) fn expand(input: TokenStream) -> TokenStream {
    let mut krate = None;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("crate") {
            krate = Some(parse_crate(&meta)?);
            Ok(())
        } else {
            Err(meta
                .error("unknown argument; `fidius_plugin_registry!()` takes only `crate = \"…\"`"))
        }
    });
    if let Err(e) = parser.parse2(input) {
        return e.to_compile_error();
    }
    let krate = krate.unwrap_or_else(default_crate);
    quote! {
        #[cfg(not(target_family = "wasm"))]
        const _: () = {
            #[unsafe(export_name = "fidius_library")]
            static __FIDIUS_LIBRARY: #krate::__private::LibraryHeader =
                #krate::__private::LibraryHeader::CURRENT;
        };
    }
}
