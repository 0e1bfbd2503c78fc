//! Reading the attributes: ours (`#[unique]`, `#[unique_together(..)]`) and
//! the parts of Diesel's `#[diesel(..)]` that name the table and columns.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::parse::ParseStream;
use syn::punctuated::Punctuated;
use syn::{Attribute, Ident, LitStr, Path, Token};

use crate::ctxt::Ctxt;

mod kw {
    syn::custom_keyword!(table_name);
    syn::custom_keyword!(primary_key);
    syn::custom_keyword!(column_name);
    syn::custom_keyword!(embed);
}

pub(crate) const UNIQUE: &str = "unique";
pub(crate) const UNIQUE_TOGETHER: &str = "unique_together";

/// What the struct-level attributes say.
#[derive(Default)]
pub(crate) struct StructAttrs {
    pub(crate) table_name: Option<Path>,
    pub(crate) primary_key: Option<Vec<Ident>>,
    /// Each `#[unique_together(..)]`, as written (checked later).
    pub(crate) unique_together: Vec<UniqueTogether>,
}

pub(crate) struct UniqueTogether {
    /// The attribute's tokens, for error spans.
    pub(crate) attr: TokenStream,
    pub(crate) fields: Vec<Ident>,
}

/// What a field's attributes say.
#[derive(Default)]
pub(crate) struct FieldAttrs {
    pub(crate) column_name: Option<Ident>,
    pub(crate) embed: bool,
    /// The `#[unique]` attribute's tokens, if present (for error spans).
    pub(crate) unique: Option<TokenStream>,
}

pub(crate) fn struct_attrs(cx: &mut Ctxt, attrs: &[Attribute]) -> StructAttrs {
    let mut out = StructAttrs::default();
    for attr in attrs {
        if attr.path().is_ident("diesel") {
            let result = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("table_name") {
                    out.table_name = Some(meta.value()?.parse()?);
                } else if meta.path.is_ident("primary_key") {
                    let content;
                    syn::parenthesized!(content in meta.input);
                    let keys = Punctuated::<Ident, Token![,]>::parse_terminated(&content)?;
                    out.primary_key = Some(keys.into_iter().collect());
                } else {
                    skip_meta_value(meta.input)?;
                }
                Ok(())
            });
            // Diesel's own derives report malformed `#[diesel(..)]`; we only
            // add to that when the part we read is malformed.
            if let Err(err) = result {
                cx.push(err);
            }
        } else if attr.path().is_ident(UNIQUE_TOGETHER) {
            match parse_unique_together(attr) {
                Ok(fields) => out.unique_together.push(UniqueTogether {
                    attr: attr.to_token_stream(),
                    fields,
                }),
                Err(err) => cx.push(err),
            }
        } else if attr.path().is_ident(UNIQUE) {
            cx.error(
                attr,
                "`#[unique]` goes on a field; for a constraint over several fields, \
                 write `#[unique_together(field_a, field_b)]` on the struct",
            );
        }
    }
    out
}

fn parse_unique_together(attr: &Attribute) -> syn::Result<Vec<Ident>> {
    const FORM: &str =
        "expected `#[unique_together(field_a, field_b, ..)]` naming fields of this struct";
    let list = match &attr.meta {
        syn::Meta::List(list) => list,
        other => return Err(syn::Error::new_spanned(other, FORM)),
    };
    let fields = list
        .parse_args_with(Punctuated::<Ident, Token![,]>::parse_terminated)
        .map_err(|err| syn::Error::new(err.span(), FORM))?;
    if fields.is_empty() {
        return Err(syn::Error::new_spanned(
            attr,
            "`#[unique_together()]` names no fields; \
             write `#[unique_together(field_a, field_b, ..)]`",
        ));
    }
    Ok(fields.into_iter().collect())
}

pub(crate) fn field_attrs(cx: &mut Ctxt, attrs: &[Attribute]) -> FieldAttrs {
    let mut out = FieldAttrs::default();
    for attr in attrs {
        if attr.path().is_ident("diesel") {
            let result = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("column_name") {
                    let value = meta.value()?;
                    out.column_name = Some(if value.peek(LitStr) {
                        let lit: LitStr = value.parse()?;
                        lit.parse_with(syn::ext::IdentExt::parse_any)?
                    } else {
                        syn::ext::IdentExt::parse_any(value)?
                    });
                } else if meta.path.is_ident("embed") {
                    out.embed = true;
                } else {
                    skip_meta_value(meta.input)?;
                }
                Ok(())
            });
            if let Err(err) = result {
                cx.push(err);
            }
        } else if attr.path().is_ident(UNIQUE) {
            if !matches!(attr.meta, syn::Meta::Path(_)) {
                cx.error(
                    &attr.meta,
                    "`#[unique]` takes no arguments; write `#[unique]` on the field, \
                     or `#[unique_together(field_a, field_b)]` on the struct \
                     for a constraint over several fields",
                );
            }
            if out.unique.is_some() {
                cx.error(attr, "duplicate `#[unique]` on this field");
            }
            out.unique = Some(attr.to_token_stream());
        } else if attr.path().is_ident(UNIQUE_TOGETHER) {
            cx.error(
                attr,
                "`#[unique_together(..)]` goes on the struct, not on a field; \
                 on a single field write `#[unique]`",
            );
        }
    }
    out
}

/// Skip the value of a `#[diesel(..)]` option we do not read:
/// `key = tokens..` or `key(tokens..)`, up to the next top-level comma.
fn skip_meta_value(input: ParseStream<'_>) -> syn::Result<()> {
    input.step(|cursor| {
        let mut rest = *cursor;
        while let Some((tt, next)) = rest.token_tree() {
            if let proc_macro2::TokenTree::Punct(p) = &tt {
                if p.as_char() == ',' {
                    break;
                }
            }
            rest = next;
        }
        Ok(((), rest))
    })
}
