//! What is inserted next to the key: nothing (`()`), or anything `Insertable`.

use diesel::Insertable;

/// Values inserted together with the lookup key when no row exists.
///
/// Implemented for `()` (insert the key alone) and for anything Diesel can
/// insert into table `T` alongside the key: a tuple of `column.eq(value)`
/// assignments, a single assignment, an `Option` of one, or a
/// `#[derive(Insertable)]` struct (or a reference to one).
///
/// `Marker` only lets both impls coexist; it is always inferred.
#[diagnostic::on_unimplemented(
    message = "`{Self}` and the lookup key cannot be inserted together into `{T}`",
    label = "expected `()`, a tuple of `column.eq(value)` for this table, or an `Insertable` struct",
    note = "every column of the key and of these values must be a column of `{T}`, \
            and the values must not repeat a key column"
)]
pub trait InsertValues<T, K, Marker> {
    /// The combined key-and-values insert.
    type Values;
    /// Combine with the key into one row to insert.
    fn with_key(self, key: K) -> Self::Values;
}

/// Inference marker for `()` defaults.
#[doc(hidden)]
#[derive(Debug)]
pub enum KeyOnly {}

/// Inference marker for `Insertable` defaults.
#[doc(hidden)]
#[derive(Debug)]
pub enum WithValues {}

impl<T, K: Insertable<T>> InsertValues<T, K, KeyOnly> for () {
    type Values = K::Values;

    fn with_key(self, key: K) -> Self::Values {
        key.values()
    }
}

impl<T, K, D> InsertValues<T, K, WithValues> for D
where
    (K, D): Insertable<T>,
{
    type Values = <(K, D) as Insertable<T>>::Values;

    fn with_key(self, key: K) -> Self::Values {
        (key, self).values()
    }
}
