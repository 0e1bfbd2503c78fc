//! The typed model of the input: fields, their columns, and the constraints.

use proc_macro2::Span;
use syn::{Generics, Ident, Path};

pub(crate) struct Model<'a> {
    pub(crate) ident: &'a Ident,
    pub(crate) generics: &'a Generics,
    /// The schema's table module, e.g. `users` or `crate::schema::users`.
    pub(crate) table: Path,
    /// Deduplicated constraints, in declaration order.
    pub(crate) constraints: Vec<Constraint>,
}

pub(crate) struct Field<'a> {
    pub(crate) ident: &'a Ident,
    /// The column in the table module (`#[diesel(column_name = ..)]` or the
    /// field's name).
    pub(crate) column: Ident,
    pub(crate) embed: bool,
}

/// Where a constraint was declared.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Kind {
    PrimaryKey,
    Unique,
    UniqueTogether,
}

pub(crate) struct Constraint {
    pub(crate) kind: Kind,
    /// The columns, in declaration order, each with the span of the token
    /// that named it (for errors about missing columns).
    pub(crate) columns: Vec<Ident>,
    pub(crate) span: Span,
}

impl Constraint {
    /// The column set, order-insensitive, for deduplication.
    pub(crate) fn column_set(&self) -> Vec<String> {
        let mut set: Vec<String> = self.columns.iter().map(|c| c.to_string()).collect();
        set.sort();
        set
    }
}
