//! Tests of the expansion without a compiler run: formatted snapshots of
//! what the derive emits (`snapshots`), and a generator of structs that
//! checks the derive never panics and always emits parsable items (`fuzz`).

mod fuzz;
mod snapshots;

use proc_macro2::TokenStream;

/// The derive's output for `input`, formatted as rustfmt would; panics if
/// the output is not a sequence of Rust items.
fn pretty(input: TokenStream) -> String {
    let output = crate::expand::derive_inner(input);
    let file = syn::parse_file(&output.to_string())
        .unwrap_or_else(|err| panic!("unparsable expansion ({err}):\n{output}"));
    prettyplease::unparse(&file)
}
