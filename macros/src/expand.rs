//! Code generation: metadata only (table, constraints); algorithms live in
//! the runtime crate.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::ext::IdentExt;
use syn::{Data, DeriveInput, Fields, Ident, Path};

use crate::attr;
use crate::ctxt::Ctxt;
use crate::model::{ident_for, Constraint, Field, Kind, Model, Name};
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
        // Errors about a missing column point at the field.
        let column = match attrs.column_name {
            Some(name) => Name {
                span: ident.span(),
                ..name
            },
            None => Name::from_ident(ident),
        };
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
    let krate = struct_attrs
        .krate
        .unwrap_or_else(|| syn::parse_quote!(::diesel_get_or_create));
    let table = match struct_attrs.table_name {
        Some(table) => Some(table),
        // Unknown: say nothing more about the table than that.
        None if struct_attrs.table_name_malformed => None,
        None => default_table_name(&mut cx, &input.ident).map(Path::from),
    };
    let Some(table) = table else {
        return cx.into_compile_errors();
    };

    let model = Model {
        ident: &input.ident,
        generics: &input.generics,
        krate,
        table,
        constraints,
    };
    if cx.has_errors() {
        // One mistake, one error: the model still implements every lookup,
        // so the calls that rely on the rejected constraint stay quiet.
        let mut tokens = expand_model(&model);
        tokens.extend(expand_any_key(&model));
        tokens.extend(cx.into_compile_errors());
        tokens
    } else {
        let mut tokens = expand_model(&model);
        tokens.extend(expand_keys(&model));
        tokens
    }
}

/// The `Model` impl: the table and the declared constraints.
fn expand_model(model: &Model<'_>) -> TokenStream {
    let ident = model.ident;
    let table = &model.table;
    let krate = &model.krate;
    let (impl_generics, ty_generics, where_clause) = model.generics.split_for_impl();
    let private = quote!(#krate::__private);

    let declared = model.constraints.iter().map(|constraint| {
        let kind = match constraint.kind {
            Kind::PrimaryKey => quote!(PrimaryKey),
            Kind::Unique => quote!(Unique),
            Kind::UniqueTogether => quote!(UniqueTogether),
        };
        // Spanned as in the `UniqueKey` impls, so that an unknown column is
        // one error, not one per mention.
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
    let model_name = ident.unraw().to_string();

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
    }
}

/// One `UniqueKey` impl per column order of each constraint, and one for a
/// column tuple no lookup can name. With a single impl, rustc infers the
/// lookup's columns from it and reports "type mismatch resolving
/// `<Key<..> as Lookup>::Columns == (id,)`" instead of the crate's message
/// (measured with `ui/calls/key_not_unique_primary_key_only.rs`). The second
/// impl is `#[diagnostic::do_not_recommend]`, which keeps it out of rustc's
/// list of the keys that are implemented.
fn expand_keys(model: &Model<'_>) -> TokenStream {
    let ident = model.ident;
    let table = &model.table;
    let krate = &model.krate;
    let (impl_generics, ty_generics, where_clause) = model.generics.split_for_impl();
    let private = quote!(#krate::__private);

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
    keys.extend(quote! {
        const _: () = {
            pub enum __NotAColumn {}

            #[automatically_derived]
            #[diagnostic::do_not_recommend]
            impl #impl_generics #private::UniqueKey<(__NotAColumn,)>
                for #ident #ty_generics #where_clause {}
        };
    });
    keys
}

/// After an error: every column tuple is a key, so no call site reports a
/// second error for the mistake already reported.
fn expand_any_key(model: &Model<'_>) -> TokenStream {
    let ident = model.ident;
    let krate = &model.krate;
    // A parameter name the model does not use.
    let mut columns = String::from("__GetOrCreateColumns");
    while model.generics.params.iter().any(|param| match param {
        syn::GenericParam::Type(ty) => ty.ident == columns,
        syn::GenericParam::Const(c) => c.ident == columns,
        syn::GenericParam::Lifetime(_) => false,
    }) {
        columns.push('_');
    }
    let columns = Ident::new(&columns, proc_macro2::Span::call_site());
    let mut generics = model.generics.clone();
    generics.params.push(syn::parse_quote!(#columns));
    let (impl_generics, _, _) = generics.split_for_impl();
    let (_, ty_generics, where_clause) = model.generics.split_for_impl();
    quote! {
        #[automatically_derived]
        impl #impl_generics #krate::__private::UniqueKey<#columns>
            for #ident #ty_generics #where_clause {}
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
fn default_table_name(cx: &mut Ctxt, ident: &Ident) -> Option<Ident> {
    let name = ident.unraw().to_string();
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
    let table = ident_for(&snake, ident.span());
    if table.is_none() {
        cx.error(
            ident,
            format!(
                "the default table name of `{name}`, `{snake}`, is not an identifier; \
                 name the table with `#[diesel(table_name = ..)]`"
            ),
        );
    }
    table
}
