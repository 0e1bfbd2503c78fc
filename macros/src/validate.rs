//! Semantic checks: turn the attributes into constraints over columns.

use proc_macro2::{Span, TokenStream};
use syn::ext::IdentExt;
use syn::Ident;

use crate::attr::StructAttrs;
use crate::ctxt::Ctxt;
use crate::model::{Constraint, Field, Kind, Name};

/// A lookup key is a tuple with one element per column, and the derive
/// implements the check once per column order (n! impls): keep that small.
pub(crate) const MAX_COLUMNS: usize = 6;

pub(crate) fn constraints(
    cx: &mut Ctxt,
    struct_ident: &Ident,
    attrs: &StructAttrs,
    fields: &[Field<'_>],
    unique_fields: &[(usize, TokenStream)],
) -> Vec<Constraint> {
    let mut out: Vec<Constraint> = Vec::new();

    // The primary key: `#[diesel(primary_key(..))]`, else the column `id`.
    // Like Diesel's own derives, both name columns, not fields.
    match &attrs.primary_key {
        Some(keys) => {
            if let Some(c) = resolve_primary_key(cx, struct_ident, fields, keys) {
                if c.columns.len() > MAX_COLUMNS {
                    cx.error_at(c.span, too_many_columns(c.columns.len()));
                } else {
                    out.push(c);
                }
            }
        }
        None => {
            if let Some(id) = fields.iter().find(|f| f.column.text == "id" && !f.embed) {
                if let Some(column) = column_ident(cx, &id.column) {
                    out.push(Constraint {
                        kind: Kind::PrimaryKey,
                        columns: vec![column],
                        span: id.ident.span(),
                    });
                }
            }
        }
    }

    for (index, attr) in unique_fields {
        let span = first_span(attr);
        let field = &fields[*index];
        if field.embed {
            cx.error(
                attr,
                format!(
                    "`#[unique]` cannot go on `{}`: it is `#[diesel(embed)]`, not a column; \
                     put `#[unique]` on the column's field in the embedded struct's model, \
                     or name its columns with `#[unique_together(..)]`",
                    field.ident
                ),
            );
            continue;
        }
        if let Some(column) = column_ident(cx, &field.column) {
            out.push(Constraint {
                kind: Kind::Unique,
                columns: vec![column],
                span,
            });
        }
    }

    for together in &attrs.unique_together {
        if let Some(c) = resolve(
            cx,
            struct_ident,
            fields,
            &together.fields,
            "#[unique_together(..)]",
        ) {
            if c.columns.len() > MAX_COLUMNS {
                cx.error(&together.attr, too_many_columns(c.columns.len()));
                continue;
            }
            out.push(Constraint {
                kind: Kind::UniqueTogether,
                span: first_span(&together.attr),
                ..c
            });
        }
    }

    // Collapse duplicates (`#[unique]` on the primary key, the same
    // `unique_together` twice or in another order).
    let mut seen = Vec::new();
    out.retain(|c| {
        let set = c.column_set();
        if seen.contains(&set) {
            false
        } else {
            seen.push(set);
            true
        }
    });

    if out.is_empty() && !cx.has_errors() {
        cx.error(
            struct_ident,
            format!(
                "`{struct_ident}` declares no uniqueness constraint, so no lookup could be \
                 atomic; mark a unique column with `#[unique]`, declare \
                 `#[unique_together(field_a, field_b)]` on the struct, or name the primary \
                 key with `#[diesel(primary_key(..))]` (the default is the column `id`)"
            ),
        );
    }
    out
}

fn too_many_columns(n: usize) -> String {
    format!(
        "this constraint has {n} columns, more than the {MAX_COLUMNS} a lookup key supports \
         (its check is implemented once per column order)"
    )
}

/// The identifier of a column, or an error at the name when no Rust
/// identifier can name it (so no `table!` column can have that name).
fn column_ident(cx: &mut Ctxt, column: &Name) -> Option<Ident> {
    let ident = column.to_ident();
    if ident.is_none() {
        cx.error_at(
            column.origin,
            format!(
                "`{}` cannot name a column of a Diesel `table!`: a column is a Rust identifier \
                 (a keyword is written `r#type`, or `column_name = \"type\"`)",
                column.text
            ),
        );
    }
    ident
}

/// Resolve `#[diesel(primary_key(..))]`, which names columns (as in Diesel).
fn resolve_primary_key(
    cx: &mut Ctxt,
    struct_ident: &Ident,
    fields: &[Field<'_>],
    names: &[Name],
) -> Option<Constraint> {
    let mut columns: Vec<Ident> = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    let mut ok = true;
    for name in names {
        if seen.contains(&name.text.as_str()) {
            cx.error_at(
                name.span,
                format!(
                    "column `{}` is named twice in `#[diesel(primary_key(..))]`",
                    name.text
                ),
            );
            ok = false;
            continue;
        }
        seen.push(&name.text);
        if let Some(field) = fields
            .iter()
            .find(|f| !f.embed && f.column.text == name.text)
        {
            match column_ident(cx, &field.column) {
                Some(mut column) => {
                    column.set_span(name.span);
                    columns.push(column);
                }
                None => ok = false,
            }
        } else {
            let valid: Vec<String> = fields
                .iter()
                .filter(|f| !f.embed)
                .map(|f| format!("`{}`", f.column.text))
                .collect();
            cx.error_at(
                name.span,
                format!(
                    "no field of `{}` has the column `{}` named in \
                     `#[diesel(primary_key(..))]`; its columns are {}",
                    struct_ident.unraw(),
                    name.text,
                    valid.join(", ")
                ),
            );
            ok = false;
        }
    }
    ok.then(|| Constraint {
        kind: Kind::PrimaryKey,
        columns,
        span: names.first().map_or_else(Span::call_site, |n| n.span),
    })
}

/// Resolve field names to columns, reporting unknown and repeated names.
fn resolve(
    cx: &mut Ctxt,
    struct_ident: &Ident,
    fields: &[Field<'_>],
    names: &[Ident],
    attr_name: &str,
) -> Option<Constraint> {
    debug_assert!(attr_name.starts_with("#[unique_together"));
    let mut columns: Vec<Ident> = Vec::new();
    let mut seen: Vec<Ident> = Vec::new();
    let mut ok = true;
    for name in names {
        // `r#type` and `type` name the same field.
        let unraw = name.unraw();
        if seen.contains(&unraw) {
            cx.error(
                name,
                format!("field `{name}` is named twice in `{attr_name}`"),
            );
            ok = false;
            continue;
        }
        seen.push(unraw.clone());
        match fields.iter().find(|f| f.ident.unraw() == unraw) {
            Some(field) if field.embed => {
                cx.error(
                    name,
                    format!(
                        "field `{name}` is `#[diesel(embed)]`, not a column; \
                         name the embedded struct's column fields instead"
                    ),
                );
                ok = false;
            }
            Some(field) => match column_ident(cx, &field.column) {
                Some(mut column) => {
                    column.set_span(name.span());
                    columns.push(column);
                }
                None => ok = false,
            },
            None => {
                let valid: Vec<String> = fields
                    .iter()
                    .filter(|f| !f.embed)
                    .map(|f| format!("`{}`", f.ident))
                    .collect();
                let hint = closest(name, fields)
                    .map(|f| format!("did you mean `{f}`? "))
                    .unwrap_or_default();
                cx.error(
                    name,
                    format!(
                        "unknown field `{name}` in `{attr_name}`; {hint}the fields of `{struct_ident}` are {}",
                        valid.join(", ")
                    ),
                );
                ok = false;
            }
        }
    }
    ok.then(|| Constraint {
        kind: Kind::UniqueTogether,
        columns,
        span: names.first().map_or_else(Span::call_site, Ident::span),
    })
}

fn first_span(tokens: &TokenStream) -> Span {
    tokens
        .clone()
        .into_iter()
        .next()
        .map_or_else(Span::call_site, |t| t.span())
}

/// The column field whose name is nearest `name`, if it is near enough to be
/// a typo (edit distance at most a third of the name, and at least 1).
fn closest<'a>(name: &Ident, fields: &'a [Field<'_>]) -> Option<&'a Ident> {
    let name = name.unraw().to_string();
    fields
        .iter()
        .filter(|f| !f.embed)
        .map(|f| (edit_distance(&name, &f.ident.unraw().to_string()), f.ident))
        .filter(|(d, _)| *d <= (name.len() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, ident)| ident)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let subst = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = subst.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}
