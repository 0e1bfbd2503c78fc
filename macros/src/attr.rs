//! Reading the attributes: ours (`#[unique]`, `#[unique_together(..)]`,
//! `#[get_or_create(crate = ..)]`) and the parts of Diesel's `#[diesel(..)]`
//! that name the table and the columns.
//!
//! Every other `#[diesel(..)]` option is parsed with the grammar Diesel's own
//! derives give it (a type, an expression, a literal, a parenthesized list) and
//! skipped, so a value such as `deserialize_as = Wrapper<'a, A, 3>` passes
//! through untouched. Malformed Diesel options are Diesel's to report: we only
//! report the ones we read.

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::parse::discouraged::Speculative;
use syn::parse::{ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{Attribute, Ident, LitBool, LitStr, Meta, Path, Token};

use crate::ctxt::Ctxt;
use crate::model::Name;

pub(crate) const UNIQUE: &str = "unique";
pub(crate) const UNIQUE_TOGETHER: &str = "unique_together";
pub(crate) const GET_OR_CREATE: &str = "get_or_create";
const DIESEL: &str = "diesel";

/// What the struct-level attributes say.
#[derive(Default)]
pub(crate) struct StructAttrs {
    /// The first `#[diesel(table_name = ..)]` (Diesel's derives use the first).
    pub(crate) table_name: Option<Path>,
    /// Set when a `table_name` could not be read: the table is unknown.
    pub(crate) table_name_malformed: bool,
    pub(crate) primary_key: Option<Vec<Name>>,
    /// Each `#[unique_together(..)]`, as written (checked later).
    pub(crate) unique_together: Vec<UniqueTogether>,
    /// `#[get_or_create(crate = ..)]`.
    pub(crate) krate: Option<Path>,
}

pub(crate) struct UniqueTogether {
    /// The attribute's tokens, for error spans.
    pub(crate) attr: TokenStream,
    pub(crate) fields: Vec<Ident>,
}

/// What a field's attributes say.
#[derive(Default)]
pub(crate) struct FieldAttrs {
    pub(crate) column_name: Option<Name>,
    pub(crate) embed: bool,
    /// The `#[unique]` attribute's tokens, if present (for error spans).
    pub(crate) unique: Option<TokenStream>,
}

pub(crate) fn struct_attrs(cx: &mut Ctxt, attrs: &[Attribute]) -> StructAttrs {
    let mut out = StructAttrs::default();
    for attr in attrs {
        if attr.path().is_ident(DIESEL) {
            diesel_options(cx, attr, |cx, key, input| {
                if key == "table_name" {
                    let table =
                        parse_eq::<Path>(input, "table_name = path::to::table").and_then(|path| {
                            plain_path(path, Some("diesel(table_name = path::to::table)"))
                        });
                    match table {
                        Ok(path) => {
                            out.table_name.get_or_insert(path);
                        }
                        Err(err) => {
                            cx.push(err);
                            out.table_name_malformed = true;
                            skip_to_comma(input);
                        }
                    }
                    true
                } else if key == "primary_key" {
                    match parse_primary_key(input) {
                        Ok(names) => out.primary_key = Some(names),
                        Err(err) => {
                            cx.push(err);
                            skip_to_comma(input);
                        }
                    }
                    true
                } else {
                    false
                }
            });
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
        } else if attr.path().is_ident(GET_OR_CREATE) {
            parse_get_or_create(cx, attr, &mut out.krate);
        }
    }
    out
}

pub(crate) fn field_attrs(cx: &mut Ctxt, attrs: &[Attribute]) -> FieldAttrs {
    let mut out = FieldAttrs::default();
    for attr in attrs {
        if attr.path().is_ident(DIESEL) {
            diesel_options(cx, attr, |cx, key, input| {
                if key == "column_name" {
                    match parse_column_name(input) {
                        Ok(name) => out.column_name = Some(name),
                        Err(err) => {
                            cx.push(err);
                            skip_to_comma(input);
                        }
                    }
                    true
                } else if key == "embed" {
                    out.embed = true;
                    true
                } else {
                    false
                }
            });
        } else if attr.path().is_ident(UNIQUE) {
            if !matches!(attr.meta, Meta::Path(_)) {
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
        } else if attr.path().is_ident(GET_OR_CREATE) {
            cx.error(
                attr,
                "`#[get_or_create(..)]` goes on the struct, not on a field",
            );
        }
    }
    out
}

fn parse_unique_together(attr: &Attribute) -> syn::Result<Vec<Ident>> {
    const FORM: &str =
        "expected `#[unique_together(field_a, field_b, ..)]` naming fields of this struct";
    let list = match &attr.meta {
        Meta::List(list) => list,
        other => return Err(syn::Error::new_spanned(other, FORM)),
    };
    // `parse_any`: `#[unique_together(type)]` names the field `r#type`.
    let fields = list
        .parse_args_with(|input: ParseStream<'_>| {
            Punctuated::<Ident, Token![,]>::parse_terminated_with(input, Ident::parse_any)
        })
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

/// `#[get_or_create(crate = path)]`, `crate = "path"` as in serde.
fn parse_get_or_create(cx: &mut Ctxt, attr: &Attribute, krate: &mut Option<Path>) {
    const FORM: &str = "expected `#[get_or_create(crate = path::to::diesel_get_or_create)]`";
    let list = match &attr.meta {
        Meta::List(list) => list,
        other => return cx.error(other, FORM),
    };
    let mut duplicate = None;
    let mut unknown = false;
    let result = list.parse_nested_meta(|meta| {
        if !meta.path.is_ident("crate") {
            unknown = true;
            return Err(meta.error(format!(
                "unknown option `{}` in `#[get_or_create(..)]`; the only option is \
                 `crate = path::to::diesel_get_or_create`",
                meta.path.to_token_stream()
            )));
        }
        let value = meta.value()?;
        let path = if value.peek(LitStr) {
            value.parse::<LitStr>()?.parse::<Path>()?
        } else {
            value.parse::<Path>()?
        };
        let path = plain_path(path, None)?;
        if krate.is_some() {
            duplicate.get_or_insert_with(|| {
                syn::Error::new_spanned(&meta.path, "duplicate `crate` in `#[get_or_create(..)]`")
            });
        } else {
            *krate = Some(path);
        }
        Ok(())
    });
    if let Some(err) = duplicate {
        cx.push(err);
    }
    match result {
        Err(err) if unknown => cx.push(err),
        Err(err) => cx.error_at(err.span(), format!("{err}; {FORM}")),
        Ok(()) => {}
    }
}

/// A module path (a `table!` module, a crate): no generic arguments.
fn plain_path(path: Path, form: Option<&str>) -> syn::Result<Path> {
    for segment in &path.segments {
        if !segment.arguments.is_none() {
            let form = form
                .map(|form| format!("; expected `#[{form}]`"))
                .unwrap_or_default();
            return Err(syn::Error::new_spanned(
                &segment.arguments,
                format!("a module's path takes no generic arguments{form}"),
            ));
        }
    }
    Ok(path)
}

/// `primary_key(a, b)`: column names, raw or not (`r#type`).
fn parse_primary_key(input: ParseStream<'_>) -> syn::Result<Vec<Name>> {
    const FORM: &str = "expected `#[diesel(primary_key(column_a, column_b))]`";
    let content;
    syn::parenthesized!(content in input);
    let keys = Punctuated::<Ident, Token![,]>::parse_terminated_with(&content, Ident::parse_any)
        .map_err(|err| syn::Error::new(err.span(), FORM))?;
    if keys.is_empty() {
        return Err(syn::Error::new(
            content.span(),
            "`primary_key()` names no columns; write \
             `#[diesel(primary_key(column_a, column_b))]`",
        ));
    }
    Ok(keys.iter().map(Name::from_ident).collect())
}

/// `column_name = name`, `column_name = r#type` or `column_name = "type"`,
/// as Diesel accepts it.
fn parse_column_name(input: ParseStream<'_>) -> syn::Result<Name> {
    const FORM: &str = "column_name = name";
    if !input.peek(Token![=]) {
        return Err(input.error(format!("expected `#[diesel({FORM})]`")));
    }
    input.parse::<Token![=]>()?;
    if input.peek(LitStr) {
        let lit: LitStr = input.parse()?;
        Ok(Name {
            text: lit.value(),
            span: lit.span(),
            origin: lit.span(),
        })
    } else {
        let ident = input
            .call(Ident::parse_any)
            .map_err(|err| syn::Error::new(err.span(), format!("expected `#[diesel({FORM})]`")))?;
        Ok(Name::from_ident(&ident))
    }
}

fn parse_eq<T: syn::parse::Parse>(input: ParseStream<'_>, form: &str) -> syn::Result<T> {
    let form_error = |span: Span| syn::Error::new(span, format!("expected `#[diesel({form})]`"));
    if !input.peek(Token![=]) {
        return Err(form_error(input.span()));
    }
    input.parse::<Token![=]>()?;
    input.parse().map_err(|err| form_error(err.span()))
}

/// Walk one `#[diesel(option, option = value, option(..), ..)]`: `read` takes
/// the options it knows (returns `true` after parsing the value); every other
/// option's value is parsed with Diesel's grammar and skipped. The structure of
/// the attribute is Diesel's to report, so nothing here is an error.
fn diesel_options(
    cx: &mut Ctxt,
    attr: &Attribute,
    mut read: impl FnMut(&mut Ctxt, &Ident, ParseStream<'_>) -> bool,
) {
    let Meta::List(list) = &attr.meta else {
        return;
    };
    let parser = |input: ParseStream<'_>| -> syn::Result<()> {
        while !input.is_empty() {
            let Ok(key) = input.call(Ident::parse_any) else {
                skip_to_comma(input);
                if input.parse::<Option<Token![,]>>()?.is_none() {
                    // Not a comma either: give up on this attribute.
                    skip_rest(input);
                }
                continue;
            };
            if !read(cx, &key, input) {
                skip_value(&key, input);
            }
            if !input.is_empty() && input.parse::<Token![,]>().is_err() {
                skip_to_comma(input);
                let _ = input.parse::<Option<Token![,]>>();
            }
        }
        Ok(())
    };
    // The parser consumes every token and never fails.
    let _ = parser.parse2(list.tokens.clone());
}

/// The grammar of the value of each `#[diesel(..)]` option of Diesel 2's
/// `Queryable`, `Selectable`, `Insertable`, `AsChangeset`, `Identifiable`,
/// `Associations`, `QueryableByName` and `AsExpression`/`SqlType` derives.
#[derive(Clone, Copy)]
enum Value {
    /// `embed`, `skip_insertion`, `aggregate`, ...
    Flag,
    /// `= some::TypePath<A, B>`
    TypePath,
    /// `= any type`
    Type,
    /// `= any expression`
    Expr,
    /// `= true`
    Bool,
    /// `= ident` or `= "string"`
    Name,
    /// `(..)`, whose content Diesel reads
    Parens,
}

fn value_of(key: &Ident) -> Option<Value> {
    let key = key.to_string();
    Some(match key.as_str() {
        "embed" | "skip_insertion" | "skip_update" | "aggregate" | "not_sized"
        | "foreign_derive" => Value::Flag,
        "sql_type" | "serialize_as" | "deserialize_as" => Value::TypePath,
        "select_expression_type" | "base_query_type" => Value::Type,
        "select_expression" | "base_query" => Value::Expr,
        "treat_none_as_default_value" | "treat_none_as_null" => Value::Bool,
        "column_name" => Value::Name,
        "table_name" => Value::TypePath,
        "primary_key" | "belongs_to" | "mysql_type" | "sqlite_type" | "postgres_type"
        | "check_for_backend" => Value::Parens,
        _ => return None,
    })
}

/// Skip an option's value: parsed with the option's grammar when that reaches
/// the next `,` (or the end), else, for values Diesel will reject anyway, up to
/// the next top-level comma.
fn skip_value(key: &Ident, input: ParseStream<'_>) {
    let grammars: &[Value] = match value_of(key) {
        Some(value) => &[value][..],
        // An option this Diesel version may have added: whichever form fits.
        None => &[
            Value::Flag,
            Value::Parens,
            Value::Type,
            Value::Expr,
            Value::Name,
        ],
    };
    for grammar in grammars {
        let fork = input.fork();
        if parse_value(*grammar, &fork).is_ok() && (fork.is_empty() || fork.peek(Token![,])) {
            input.advance_to(&fork);
            return;
        }
    }
    skip_to_comma(input);
}

fn parse_value(value: Value, input: ParseStream<'_>) -> syn::Result<()> {
    if let Value::Flag = value {
        return Ok(());
    }
    if let Value::Parens = value {
        let content;
        syn::parenthesized!(content in input);
        skip_rest(&content);
        return Ok(());
    }
    input.parse::<Token![=]>()?;
    match value {
        Value::TypePath => {
            input.parse::<syn::TypePath>()?;
        }
        Value::Type => {
            input.parse::<syn::Type>()?;
        }
        Value::Expr => {
            input.parse::<syn::Expr>()?;
        }
        Value::Bool => {
            input.parse::<LitBool>()?;
        }
        Value::Name => {
            if input.peek(LitStr) {
                input.parse::<LitStr>()?;
            } else {
                input.call(Ident::parse_any)?;
            }
        }
        Value::Flag | Value::Parens => {}
    }
    Ok(())
}

/// Skip token trees up to (not including) the next top-level comma.
fn skip_to_comma(input: ParseStream<'_>) {
    let _ = input.step(|cursor| {
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
    });
}

fn skip_rest(input: ParseStream<'_>) {
    let _ = input.step(|cursor| {
        let mut rest = *cursor;
        while let Some((_, next)) = rest.token_tree() {
            rest = next;
        }
        Ok(((), rest))
    });
}
