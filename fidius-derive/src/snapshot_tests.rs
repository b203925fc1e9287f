//! Expansion snapshots: what the macros write, pretty-printed, so reviewers
//! see generated code change in diffs. Regenerate with
//! `FIDIUS_BLESS=1 cargo test -p fidius-derive snapshot`.

use std::path::Path;

use proc_macro2::TokenStream;
use quote::quote;

fn check(name: &str, tokens: TokenStream) {
    let file: syn::File = syn::parse2(tokens).expect("expansion parses as a file");
    let pretty = prettyplease::unparse(&file);
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/expand")
        .join(format!("{name}.expanded.rs"));
    if std::env::var_os("FIDIUS_BLESS").is_some() {
        std::fs::write(&path, &pretty).expect("write snapshot");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "missing snapshot {} ({e}); run with FIDIUS_BLESS=1",
            path.display()
        )
    });
    assert!(
        expected == pretty,
        "expansion of {name} changed; review and rerun with FIDIUS_BLESS=1\n{pretty}"
    );
}

#[test]
fn snapshot_plugin_interface() {
    check(
        "plugin_interface",
        crate::interface::expand(
            quote!(version = 2, host = Services),
            quote! {
                #[interface_meta(category = "imaging")]
                pub trait ImageFilter: Send + Sync {
                    /// Filters one image.
                    fn apply(&self, input: ApplyInput) -> ApplyOutput;
                    fn add(&self, a: i64, b: i64) -> i64;
                    fn count(&self, data: &[u8], name: &str) -> Result<u64, PluginError>;
                    fn reset(&self);
                    #[optional(since = 2)]
                    #[method_meta(unit = "px")]
                    fn tiles(&self, input: Stream<ApplyInput>) -> Stream<u64>;
                }
            },
            crate::interface::Side::Plugin,
        ),
    );
}

#[test]
fn snapshot_host_interface() {
    check(
        "host_interface",
        crate::interface::expand(
            quote!(version = 1),
            quote! {
                pub trait Services: Send + Sync {
                    fn log(&self, message: &str);
                    fn lookup(&self, key: String) -> Option<String>;
                }
            },
            crate::interface::Side::Host,
        ),
    );
}

#[test]
fn snapshot_plugin_impl_and_registry() {
    let mut out = crate::implement::expand(
        quote!(ImageFilter, config = InvertConfig, host),
        quote! {
            impl ImageFilter for Invert {
                fn apply(&self, input: ApplyInput) -> ApplyOutput {
                    invert(input)
                }
            }
        },
    );
    out.extend(crate::registry::expand(TokenStream::new()));
    check("plugin_impl", out);
}
