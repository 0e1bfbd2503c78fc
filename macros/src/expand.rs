//! Code generation: metadata only (table, constraints); algorithms live in
//! the runtime crate.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::{Data, DeriveInput, Fields, Ident};

use crate::attr;
use crate::ctxt::Ctxt;
use crate::model::{Constraint, Field, Kind, Model};
use crate::validate;

/// Testable entry point: tokens in, tokens out, errors as `compile_error!`.
pub(crate) fn derive_inner(input: TokenStream) -> TokenStream {
    match syn::parse2::<DeriveInput>(input) {
        Ok(input) => derive(&input),
        Err(err) => err.into_compile_error(),
    }
}

fn derive(input: &DeriveInput) -> TokenStream {
    let mut cx = Ctxt::default();
    let named = match &input.data {
        Data::Struct(data) => match &data.fields {
            Fields::Named(named) => Some(named),
            Fields::Unnamed(_) | Fields::Unit => {
                cx.error(
                    &input.ident,
                    "`#[derive(GetOrCreate)]` needs a struct with named fields, \
                     one per column, like Diesel's `Queryable` and `Selectable`",
                );
                None
            }
        },
        Data::Enum(data) => {
            cx.error_at(
                data.enum_token.span,
                "`#[derive(GetOrCreate)]` works on a model struct with named fields, not on an enum",
            );
            None
        }
        Data::Union(data) => {
            cx.error_at(
                data.union_token.span,
                "`#[derive(GetOrCreate)]` works on a model struct with named fields, not on a union",
            );
            None
        }
    };
    let Some(named) = named else {
        return cx.into_compile_errors();
    };

    let struct_attrs = attr::struct_attrs(&mut cx, &input.attrs);
    let mut fields = Vec::new();
    let mut unique_fields = Vec::new();
    for (index, field) in named.named.iter().enumerate() {
        let Some(ident) = &field.ident else { continue };
        let attrs = attr::field_attrs(&mut cx, &field.attrs);
        if let Some(unique) = &attrs.unique {
            unique_fields.push((index, unique.clone()));
        }
        let mut column = attrs
            .column_name
            .unwrap_or_else(|| Ident::new(&unraw(ident), ident.span()));
        column.set_span(ident.span());
        fields.push(Field {
            ident,
            column,
            embed: attrs.embed,
        });
    }
    let constraints = validate::constraints(
        &mut cx,
        &input.ident,
        &struct_attrs,
        &fields,
        &unique_fields,
    );
    let table = struct_attrs
        .table_name
        .unwrap_or_else(|| default_table_name(&input.ident).into());

    let model = Model {
        ident: &input.ident,
        generics: &input.generics,
        table,
        constraints,
    };
    // Emit what we could build even after an error, so one mistake gives one
    // error and not one more at every call site.
    let mut tokens = expand(&model);
    tokens.extend(cx.into_compile_errors());
    tokens
}

fn expand(model: &Model<'_>) -> TokenStream {
    let ident = model.ident;
    let table = &model.table;
    let (impl_generics, ty_generics, where_clause) = model.generics.split_for_impl();
    let private = quote!(::diesel_get_or_create::__private);

    let declared = model.constraints.iter().map(|constraint| {
        let kind = match constraint.kind {
            Kind::PrimaryKey => quote!(PrimaryKey),
            Kind::Unique => quote!(Unique),
            Kind::UniqueTogether => quote!(UniqueTogether),
        };
        // Spanned as in the `UniqueKey` impls below, so that an unknown
        // column is one error, not one per mention.
        let names = constraint.columns.iter().map(|column| {
            let path = quote_spanned!(column.span()=> #table::#column);
            quote!(<#path as #private::diesel::Column>::NAME)
        });
        quote! {
            #private::DeclaredConstraint::__new(
                #private::ConstraintKind::#kind,
                &[#(#names),*],
            )
        }
    });
    let model_name = ident.to_string();

    let mut keys = TokenStream::new();
    for constraint in &model.constraints {
        for order in permutations(constraint) {
            let columns = order
                .iter()
                .map(|column| quote_spanned!(column.span()=> #table::#column));
            keys.extend(quote! {
                #[automatically_derived]
                impl #impl_generics #private::UniqueKey<(#(#columns,)*)>
                    for #ident #ty_generics #where_clause {}
            });
        }
    }

    quote! {
        #[automatically_derived]
        impl #impl_generics #private::Model for #ident #ty_generics #where_clause {
            type Table = #table::table;

            const NAME: &'static str = #model_name;

            const CONSTRAINTS: &'static [#private::DeclaredConstraint] = &[#(#declared),*];

            #[inline(always)]
            fn table() -> Self::Table {
                #table::table
            }
        }
        #keys
    }
}

/// Every order of the constraint's columns: a lookup may name them in any.
fn permutations(constraint: &Constraint) -> Vec<Vec<&Ident>> {
    fn go<'a>(
        rest: &mut Vec<&'a Ident>,
        prefix: &mut Vec<&'a Ident>,
        out: &mut Vec<Vec<&'a Ident>>,
    ) {
        if rest.is_empty() {
            out.push(prefix.clone());
            return;
        }
        for i in 0..rest.len() {
            let column = rest.remove(i);
            prefix.push(column);
            go(rest, prefix, out);
            prefix.pop();
            rest.insert(i, column);
        }
    }
    if constraint.columns.len() > validate::MAX_COLUMNS {
        return Vec::new();
    }
    let mut out = Vec::new();
    go(
        &mut constraint.columns.iter().collect(),
        &mut Vec::new(),
        &mut out,
    );
    out
}

/// Diesel's default: the struct name in snake case, plus `s`.
fn default_table_name(ident: &Ident) -> Ident {
    let name = unraw(ident);
    let mut snake = String::with_capacity(name.len() + 4);
    for (i, ch) in name.char_indices() {
        if ch.is_uppercase() {
            if i > 0 {
                snake.push('_');
            }
            snake.extend(ch.to_lowercase());
        } else {
            snake.push(ch);
        }
    }
    snake.push('s');
    format_ident!("{}", snake, span = ident.span())
}

fn unraw(ident: &Ident) -> String {
    let s = ident.to_string();
    s.strip_prefix("r#").map(str::to_owned).unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::derive_inner;
    use quote::quote;

    fn expand(input: proc_macro2::TokenStream) -> String {
        derive_inner(input).to_string()
    }

    #[test]
    fn composite_constraint_in_every_order_and_duplicates_collapsed() {
        let out = expand(quote! {
            #[diesel(table_name = crate::schema::users)]
            #[unique_together(first_name, last_name)]
            #[unique_together(last_name, first_name)]
            struct User { #[unique] id: i32, first_name: String, last_name: String }
        });
        assert!(
            out.contains("type Table = crate :: schema :: users :: table"),
            "{out}"
        );
        assert_eq!(out.matches("UniqueKey <").count(), 3, "{out}");
        assert!(
            out.contains("UniqueKey < (crate :: schema :: users :: id ,) >"),
            "{out}"
        );
        assert!(out.contains("(crate :: schema :: users :: first_name , crate :: schema :: users :: last_name ,)"), "{out}");
        assert!(out.contains("(crate :: schema :: users :: last_name , crate :: schema :: users :: first_name ,)"), "{out}");
        assert!(!out.contains("compile_error"), "{out}");
    }

    #[test]
    fn declared_constraints_list_kinds_and_sql_names_once_each() {
        let out = expand(quote! {
            #[diesel(table_name = users)]
            #[unique_together(first_name, last_name)]
            struct User { #[unique] id: i32, #[unique] #[diesel(column_name = mail)] email: String, first_name: String, last_name: String }
        });
        assert!(
            out.contains("const NAME : & 'static str = \"User\""),
            "{out}"
        );
        let declared = out
            .split("CONSTRAINTS")
            .nth(1)
            .unwrap()
            .split("] ;")
            .next()
            .unwrap();
        assert_eq!(
            declared.matches("DeclaredConstraint :: __new").count(),
            3,
            "{declared}"
        );
        let kinds: Vec<&str> = ["PrimaryKey", "Unique ,", "UniqueTogether"]
            .into_iter()
            .filter(|k| declared.contains(&format!("ConstraintKind :: {k}")))
            .collect();
        assert_eq!(kinds.len(), 3, "{declared}");
        assert!(declared.contains("< users :: mail as :: diesel_get_or_create :: __private :: diesel :: Column > :: NAME"), "{declared}");
        assert!(declared.contains("[< users :: first_name as"), "{declared}");
    }

    #[test]
    fn default_table_name_and_renamed_primary_key_columns() {
        let out = expand(quote! {
            #[diesel(primary_key(user_id, label))]
            struct UserTag { user_id: i32, #[diesel(column_name = label)] tag: String }
        });
        assert!(out.contains("type Table = user_tags :: table"), "{out}");
        assert!(
            out.contains("(user_tags :: user_id , user_tags :: label ,)"),
            "{out}"
        );
        assert!(
            out.contains("(user_tags :: label , user_tags :: user_id ,)"),
            "{out}"
        );
    }

    #[test]
    fn default_primary_key_is_the_column_id() {
        let out = expand(quote! {
            struct Visit { #[diesel(column_name = id)] visit_id: i32, email: String }
        });
        assert!(out.contains("UniqueKey < (visits :: id ,) >"), "{out}");
        let out = expand(quote! {
            struct Visit { visit_id: i32, email: String }
        });
        assert!(out.contains("declares no uniqueness constraint"), "{out}");
    }

    #[test]
    fn six_columns_give_720_orders_and_seven_are_refused() {
        let out = expand(quote! {
            #[unique_together(a, b, c, d, e, f)]
            struct T { id: i32, a: i32, b: i32, c: i32, d: i32, e: i32, f: i32 }
        });
        assert_eq!(out.matches("UniqueKey <").count(), 1 + 720);
        let out = expand(quote! {
            #[unique_together(a, b, c, d, e, f, g)]
            struct T { id: i32, a: i32, b: i32, c: i32, d: i32, e: i32, f: i32, g: i32 }
        });
        assert!(out.contains("compile_error"), "{out}");
        assert!(out.contains("more than the 6"), "{out}");
        assert!(out.contains("Model for T"), "{out}");
    }

    #[test]
    fn every_error_is_reported_at_once_and_the_impl_is_still_emitted() {
        let out = expand(quote! {
            #[unique_together(frist_name)]
            #[unique_together()]
            struct User { id: i32, #[unique(x)] email: String, first_name: String }
        });
        assert_eq!(out.matches("compile_error").count(), 3, "{out}");
        assert!(out.contains("unknown field `frist_name`"), "{out}");
        assert!(out.contains("Model for User"), "{out}");
    }

    #[test]
    fn skips_diesel_options_it_does_not_read() {
        let out = expand(quote! {
            #[derive(Queryable)]
            #[diesel(check_for_backend(diesel::sqlite::Sqlite), table_name = people, treat_none_as_null = true)]
            struct Person { id: i32, #[diesel(deserialize_as = String, column_name = mail)] #[unique] email: String }
        });
        assert!(!out.contains("compile_error"), "{out}");
        assert!(out.contains("UniqueKey < (people :: mail ,) >"), "{out}");
    }
}
