//! What is inserted next to the key: nothing (`()`), or anything `Insertable`.

use core::marker::PhantomData;

use diesel::Insertable;

use crate::key::LookupAssignments;

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

/// Defaults (or create values) computed only when a call inserts the row:
/// what [`lazy`] returns.
#[derive(Debug, Clone, Copy)]
pub struct LazyDefaults<F>(F);

/// Defaults (or create values) that `make` computes only when the call
/// inserts the row: a `get_or_create` that finds the row never calls it.
///
/// `make` returns what the call would take directly (`()`, a tuple of
/// `column.eq(value)`, an `Insertable` struct). It runs at most once per
/// call, just before the first `INSERT`; a call that loses the race to a
/// concurrent insert has run it and does not use its values. On PostgreSQL,
/// `update_or_create_with` sends its create values in its one statement
/// (`INSERT .. ON CONFLICT DO UPDATE`), so there it runs on every call.
///
/// ```
/// # #[cfg(feature = "sqlite")]
/// # fn main() -> diesel::QueryResult<()> {
/// # use diesel::prelude::*;
/// # use diesel::connection::SimpleConnection;
/// use diesel_get_or_create::{lazy, prelude::*};
/// # diesel::table! { tags (id) { id -> Integer, name -> Text, slug -> Text } }
/// # #[derive(Queryable, Selectable, GetOrCreate)]
/// # #[diesel(table_name = tags)]
/// # pub struct Tag { pub id: i32, #[unique] pub name: String, pub slug: String }
/// # fn slugify(s: &str) -> String { s.to_lowercase() }
/// # let mut conn = SqliteConnection::establish(":memory:").unwrap();
/// # conn.batch_execute("CREATE TABLE tags (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, slug TEXT NOT NULL)")?;
/// let mut computed = 0;
/// for _ in 0..3 {
///     Tag::get_or_create(
///         &mut conn,
///         tags::name.key("Rust"),
///         lazy(|| {
///             computed += 1;
///             tags::slug.eq(slugify("Rust"))
///         }),
///     )?;
/// }
/// assert_eq!(computed, 1, "only the call that inserted computed the defaults");
/// # Ok(())
/// # }
/// # #[cfg(not(feature = "sqlite"))]
/// # fn main() {}
/// ```
pub fn lazy<F, D>(make: F) -> LazyDefaults<F>
where
    F: FnOnce() -> D,
{
    LazyDefaults(make)
}

/// Inference marker for [`lazy`] defaults: `Mk` is the computed values'.
#[doc(hidden)]
#[derive(Debug)]
pub struct Computed<Mk>(PhantomData<fn() -> Mk>);

impl<T, K, F, D, Mk> InsertValues<T, K, Computed<Mk>> for LazyDefaults<F>
where
    F: FnOnce() -> D,
    D: InsertValues<T, K, Mk>,
{
    type Values = D::Values;

    fn with_key(self, key: K) -> Self::Values {
        (self.0)().with_key(key)
    }
}

/// One row of a batch insert: the key's assignments and the values, as a
/// record Diesel can insert many of at once (`Vec<Self::Row>`).
///
/// Implemented next to [`InsertValues`] for `()`, `Insertable` values and
/// [`lazy`] values; `Marker` is the same inference marker.
#[diagnostic::on_unimplemented(
    message = "`{Self}` and the lookup key cannot form one row of a batch insert into `{T}`",
    label = "expected `()`, a tuple of `column.eq(value)` for this table, or an `Insertable` struct",
    note = "every column of the key and of these values must be a column of `{T}`"
)]
pub trait InsertRow<T, K, Marker> {
    /// The key's assignments and the values.
    type Row;
    /// Combine with the key into one record.
    fn row(self, key: K) -> Self::Row;
}

impl<T, K: LookupAssignments> InsertRow<T, K, KeyOnly> for () {
    type Row = K::Assignments;

    fn row(self, key: K) -> Self::Row {
        key.assignments()
    }
}

impl<T, K: LookupAssignments, D> InsertRow<T, K, WithValues> for D
where
    (K, D): Insertable<T>,
{
    type Row = (K::Assignments, D);

    fn row(self, key: K) -> Self::Row {
        (key.assignments(), self)
    }
}

impl<T, K, F, D, Mk> InsertRow<T, K, Computed<Mk>> for LazyDefaults<F>
where
    F: FnOnce() -> D,
    D: InsertRow<T, K, Mk>,
{
    type Row = D::Row;

    fn row(self, key: K) -> Self::Row {
        (self.0)().row(key)
    }
}
