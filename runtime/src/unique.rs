//! The compile-time check: which column sets a model declares unique.

/// Marks `Cols`, a tuple of column types, as exactly the columns of one
/// uniqueness constraint of the model `Self`.
///
/// `#[derive(GetOrCreate)]` implements this once for every column order of
/// every declared constraint: each `#[unique]` field, each
/// `#[unique_together(..)]`, and the primary key. The operations of
/// [`GetOrCreate`](crate::GetOrCreate) require `Self: UniqueKey<K::Columns>` of
/// their lookup `K`, so a lookup that no constraint covers does not compile.
/// Implementing it by hand defeats that check; don't.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no uniqueness constraint on exactly the columns `{Cols}`",
    label = "no `#[unique]`, `#[unique_together(..)]` or primary key of `{Self}` covers this lookup",
    note = "without a unique constraint, concurrent callers can insert duplicate rows, so this lookup is refused",
    note = "a lookup must name exactly the columns of one declared constraint (in any order): \
            put other columns in the defaults, or declare the constraint on the model with \
            `#[unique]` on a field or `#[unique_together(a, b)]` on the struct, \
            and create the matching unique index in the database"
)]
pub trait UniqueKey<Cols> {}
