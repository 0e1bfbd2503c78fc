//! The typed model of the input: fields, their columns, and the constraints.

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::{Generics, Ident, Path};

pub(crate) struct Model<'a> {
    pub(crate) ident: &'a Ident,
    pub(crate) generics: &'a Generics,
    /// The path of the runtime crate: `::diesel_get_or_create`, or
    /// `#[get_or_create(crate = ..)]`.
    pub(crate) krate: Path,
    /// The schema's table module, e.g. `users` or `crate::schema::users`.
    pub(crate) table: Path,
    /// Deduplicated constraints, in declaration order.
    pub(crate) constraints: Vec<Constraint>,
}

pub(crate) struct Field<'a> {
    pub(crate) ident: &'a Ident,
    /// The column in the table module (`#[diesel(column_name = ..)]` or the
    /// field's name).
    pub(crate) column: Name,
    pub(crate) embed: bool,
}

/// A field, column or table name, as Diesel reads it: without the `r#` of a
/// raw identifier (`r#type` and `"type"` both name the column `type`).
#[derive(Clone)]
pub(crate) struct Name {
    pub(crate) text: String,
    /// Where errors about the name go (and the span of the emitted path).
    pub(crate) span: Span,
    /// Where the name was written, for errors about the name itself: the
    /// string literal of `column_name = "..."`.
    pub(crate) origin: Span,
}

impl Name {
    pub(crate) fn from_ident(ident: &Ident) -> Self {
        Name {
            text: ident.unraw().to_string(),
            span: ident.span(),
            origin: ident.span(),
        }
    }

    /// The identifier that names this column in Rust: raw (`r#type`) when
    /// the name is a keyword. `None` when no identifier can name it (`self`,
    /// `a b`, `1st`): Diesel's `table!` cannot declare such a column either.
    pub(crate) fn to_ident(&self) -> Option<Ident> {
        ident_for(&self.text, self.span)
    }
}

/// The identifier for `text`, raw when it is a keyword; `None` when `text`
/// is not an identifier or is one of the keywords no raw identifier can
/// spell (`self`, `Self`, `super`, `crate`, `_`). Never panics.
pub(crate) fn ident_for(text: &str, span: Span) -> Option<Ident> {
    let mut chars = text.chars();
    let first = chars.next()?;
    if !(first == '_' || unicode_ident::is_xid_start(first))
        || !chars.all(unicode_ident::is_xid_continue)
    {
        return None;
    }
    match text {
        "_" | "self" | "Self" | "super" | "crate" => None,
        _ if KEYWORDS.contains(&text) => Some(Ident::new_raw(text, span)),
        _ => Some(Ident::new(text, span)),
    }
}

/// Strict and reserved keywords of every edition (a raw identifier is valid
/// in all of them, so erring towards raw is harmless).
const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "do", "dyn",
    "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl", "in", "let",
    "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref", "return",
    "static", "struct", "trait", "true", "try", "type", "typeof", "union", "unsafe", "unsized",
    "use", "virtual", "where", "while", "yield",
];

/// Where a constraint was declared.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Kind {
    PrimaryKey,
    Unique,
    UniqueTogether,
}

pub(crate) struct Constraint {
    pub(crate) kind: Kind,
    /// The columns' identifiers, in declaration order, each with the span
    /// of the token that named it (for errors about missing columns).
    pub(crate) columns: Vec<Ident>,
    pub(crate) span: Span,
}

impl Constraint {
    /// The column set, order-insensitive, for deduplication.
    pub(crate) fn column_set(&self) -> Vec<String> {
        let mut set: Vec<String> = self.columns.iter().map(|c| c.unraw().to_string()).collect();
        set.sort();
        set
    }
}
