//! Parsing of the attribute arguments shared by the macros.

use proc_macro2::{Span, TokenStream};
use syn::parse::Parser;
use syn::{Ident, LitInt, LitStr, Path};

use crate::interface::Side;

/// The path generated code uses to reach `fidius::__private`.
pub(crate) fn default_crate() -> Path {
    syn::parse_quote!(::fidius)
}

/// `crate = "path"`.
pub(crate) fn parse_crate(meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<Path> {
    let lit: LitStr = meta.value()?.parse()?;
    lit.parse::<Path>()
        .map_err(|_| syn::Error::new_spanned(&lit, "expected a path such as `::fidius`"))
}

/// Arguments of `#[plugin_interface(...)]` / `#[host_interface(...)]`.
pub(crate) struct InterfaceArgs {
    pub(crate) version: u32,
    pub(crate) buffer: Ident,
    pub(crate) krate: Path,
    pub(crate) host: Option<Path>,
    /// `config = C`: every plugin is configured with a `C`.
    pub(crate) config: Option<syn::Type>,
}

pub(crate) fn parse_interface_args(args: TokenStream, side: Side) -> syn::Result<InterfaceArgs> {
    let mut version = None;
    let mut buffer = None;
    let mut krate = None;
    let mut host = None;
    let mut config = None;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("version") {
            let lit: LitInt = meta.value()?.parse()?;
            let value = lit.base10_parse::<u32>().map_err(|_| {
                syn::Error::new_spanned(&lit, "`version` must be an integer from 1 to 4294967295")
            })?;
            if value == 0 {
                return Err(syn::Error::new_spanned(&lit, "`version` starts at 1"));
            }
            version = Some(value);
            Ok(())
        } else if meta.path.is_ident("buffer") {
            let ident: Ident = meta.value()?.parse()?;
            if ident != "PluginAllocated" {
                return Err(syn::Error::new_spanned(
                    &ident,
                    format!("unknown buffer strategy `{ident}`; supported: `PluginAllocated`"),
                ));
            }
            buffer = Some(ident);
            Ok(())
        } else if meta.path.is_ident("crate") {
            krate = Some(parse_crate(&meta)?);
            Ok(())
        } else if meta.path.is_ident("host") && side == Side::Plugin {
            host = Some(meta.value()?.parse::<Path>()?);
            Ok(())
        } else if meta.path.is_ident("config") && side == Side::Plugin {
            config = Some(meta.value()?.parse::<syn::Type>()?);
            Ok(())
        } else {
            let expected = match side {
                Side::Plugin => "`version`, `buffer`, `host`, `config` or `crate`",
                Side::Host => "`version`, `buffer` or `crate`",
            };
            Err(meta.error(format!(
                "unknown argument `{}`; expected {expected}",
                path_text(&meta.path)
            )))
        }
    });
    parser.parse2(args)?;
    let version = version.ok_or_else(|| {
        let name = match side {
            Side::Plugin => "plugin_interface",
            Side::Host => "host_interface",
        };
        syn::Error::new(
            Span::call_site(),
            format!("missing `version`: write `#[{name}(version = 1)]`"),
        )
    })?;
    Ok(InterfaceArgs {
        version,
        buffer: buffer.unwrap_or_else(|| Ident::new("PluginAllocated", Span::call_site())),
        krate: krate.unwrap_or_else(default_crate),
        host,
        config,
    })
}

/// Arguments of `#[plugin_impl(Trait, ...)]`.
pub(crate) struct ImplArgs {
    pub(crate) interface: Path,
    pub(crate) krate: Path,
    /// `config = C`: built with `Type::configure(config: C)`.
    pub(crate) config: Option<syn::Type>,
    /// `host`: the constructor also takes the host interface's client.
    pub(crate) host: bool,
}

pub(crate) fn parse_impl_args(args: TokenStream) -> syn::Result<ImplArgs> {
    let mut interface = None;
    let mut krate = None;
    let mut config = None;
    let mut host = false;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("crate") && meta.input.peek(syn::Token![=]) {
            krate = Some(parse_crate(&meta)?);
            Ok(())
        } else if meta.path.is_ident("config") && meta.input.peek(syn::Token![=]) {
            config = Some(meta.value()?.parse::<syn::Type>()?);
            Ok(())
        } else if meta.path.is_ident("host")
            && interface.is_some()
            && !meta.input.peek(syn::Token![=])
        {
            host = true;
            Ok(())
        } else if meta.input.is_empty() || meta.input.peek(syn::Token![,]) {
            if interface.is_some() {
                return Err(meta.error("the interface is named twice"));
            }
            interface = Some(meta.path);
            Ok(())
        } else {
            Err(meta.error(format!(
                "unknown argument `{}`; expected the interface trait, then optionally `config = Type`, `host` or `crate = \"…\"`",
                path_text(&meta.path)
            )))
        }
    });
    parser.parse2(args)?;
    Ok(ImplArgs {
        interface: interface.ok_or_else(|| {
            syn::Error::new(
                Span::call_site(),
                "missing interface: write `#[plugin_impl(MyTrait)]`",
            )
        })?,
        krate: krate.unwrap_or_else(default_crate),
        config,
        host,
    })
}

fn path_text(path: &Path) -> String {
    quote::quote!(#path).to_string().replace(' ', "")
}
