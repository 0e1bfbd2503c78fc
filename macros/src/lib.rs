//! The derive behind `diesel-get-or-create`; depend on that crate, which
//! re-exports it and documents it.

mod attr;
mod ctxt;
mod expand;
mod model;
#[cfg(test)]
mod tests;
mod validate;

use proc_macro::TokenStream;

/// Derives `diesel_get_or_create::GetOrCreate`; see that crate's documentation.
#[proc_macro_derive(GetOrCreate, attributes(unique, unique_together, get_or_create))]
pub fn derive_get_or_create(input: TokenStream) -> TokenStream {
    expand::derive_inner(input.into()).into()
}
