//! Collects every `syn::Error` of one expansion so the user sees them all
//! at once (serde's `Ctxt` pattern).

use proc_macro2::TokenStream;

#[derive(Default)]
pub(crate) struct Errors {
    errors: Option<syn::Error>,
    count: usize,
}

impl Errors {
    /// How many errors were pushed so far.
    pub(crate) fn count(&self) -> usize {
        self.count
    }

    pub(crate) fn push(&mut self, error: syn::Error) {
        self.count += 1;
        match &mut self.errors {
            Some(all) => all.combine(error),
            None => self.errors = Some(error),
        }
    }

    pub(crate) fn spanned(
        &mut self,
        tokens: impl quote::ToTokens,
        message: impl std::fmt::Display,
    ) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    /// `Ok(())` when nothing was pushed.
    pub(crate) fn finish(self) -> Result<(), syn::Error> {
        self.errors.map_or(Ok(()), Err)
    }
}

/// On error, still emit the user's item so the rest of their crate
/// type-checks, plus the errors.
pub(crate) fn with_item(item: TokenStream, error: syn::Error) -> TokenStream {
    let errors = error.to_compile_error();
    quote::quote! { #item #errors }
}
