//! The trait `#[derive(GetOrCreate)]` implements.

use diesel::query_builder::QueryFragment;
use diesel::{Connection, QueryResult, Table};

use crate::batch::sync::{
    GetOrCreateAllBackend, UpdateOrCreateAllBackend, UpdateOrCreateEachBackend,
};
use crate::driver::sync::{GetOrCreateBackend, UpdateOrCreateBackend};
use crate::key::Lookup;
use crate::unique::UniqueKey;
use crate::verify::{
    ConstraintError, ConstraintReport, DeclaredConstraint, Introspect, ModelConstraints,
    SchemaBackend,
};

/// What `#[derive(GetOrCreate)]` implements: the model's table and its
/// declared constraints. Users never name or implement it; they call
/// [`GetOrCreate`], which every `Model` gets.
#[doc(hidden)]
pub trait Model: Sized {
    /// The model's table, from `#[diesel(table_name = ..)]`.
    type Table: Table;

    /// The model's name, for reports.
    const NAME: &'static str;

    /// The declared constraints, primary key first.
    const CONSTRAINTS: &'static [DeclaredConstraint];

    /// The table value (a unit struct in Diesel's schema).
    fn table() -> Self::Table;
}

impl<M: Model> GetOrCreate for M {}

/// Atomic `get_or_create` and `update_or_create` for a Diesel model.
///
/// `#[derive(GetOrCreate)]` gives a model this trait: the derive supplies
/// the table and the model's uniqueness constraints ([`UniqueKey`] impls),
/// and every algorithm lives in this crate, chosen by the connection's
/// backend. It cannot be implemented by hand.
///
/// Every operation returns the row, as the model, and `true` if this call
/// inserted it. The lookup `key` is one `column.key(value)` or a tuple of
/// them, and must name exactly the columns of one constraint of the model
/// (in any order), or the call does not compile.
pub trait GetOrCreate: Model {
    /// The model's declared uniqueness constraints (primary key,
    /// `#[unique]` fields, `#[unique_together(..)]`), with its table's name
    /// as backend `DB` renders it: the input of [`verify_all`](crate::verify_all).
    fn constraints<DB>() -> ModelConstraints<DB>
    where
        DB: SchemaBackend,
        Self::Table: QueryFragment<DB>,
    {
        ModelConstraints::new(Self::NAME, &Self::table(), Self::CONSTRAINTS)
    }

    /// Check that the database has a unique index on exactly the columns of
    /// each declared constraint (in any order; not partial, not on an
    /// expression). See [`verify_all`](crate::verify_all), which checks
    /// several models at once.
    fn verify_constraints<C>(conn: &mut C) -> Result<ConstraintReport, ConstraintError>
    where
        C: Connection,
        C::Backend: Introspect<C>,
        Self::Table: QueryFragment<C::Backend>,
    {
        crate::verify::verify_all(conn, &[Self::constraints()])
    }

    /// The `CREATE UNIQUE INDEX` statements, for backend `DB`, that create
    /// every declared constraint (the primary key's included), ready for a
    /// migration: `User::unique_constraints_sql::<Pg>()`.
    fn unique_constraints_sql<DB>() -> Vec<String>
    where
        DB: SchemaBackend,
        Self::Table: QueryFragment<DB>,
    {
        Self::constraints::<DB>().create_sql()
    }

    /// Return the row with this key, or insert the key with `defaults`.
    ///
    /// `defaults` are only written when the row is created; pass `()` to
    /// insert the key alone. Returns `(row, created)`.
    ///
    /// A conflict on a unique column *outside* the key (say the defaults
    /// repeat another row's `username`) is returned as that
    /// `DatabaseError(UniqueViolation, ..)`: it is never taken for "found",
    /// and no row is touched.
    fn get_or_create<C, K, D, Mk>(conn: &mut C, key: K, defaults: D) -> QueryResult<(Self, bool)>
    where
        C: Connection,
        K: Lookup,
        Self: UniqueKey<K::Columns>,
        C::Backend: GetOrCreateBackend<C, Self, K, D, Mk>,
    {
        <C::Backend as GetOrCreateBackend<C, Self, K, D, Mk>>::get_or_create(conn, key, defaults)
    }

    /// `get_or_create` for many keys at once: for each `(key, defaults)`,
    /// in input order, the key's row and whether this call created it.
    ///
    /// The keys are sorted and their repeats merged first: a key given more
    /// than once is looked up and created once, with the defaults of its
    /// first occurrence, and every occurrence returns its row (created only
    /// at the first). New rows are inserted in key order, so batches over
    /// the same keys wait for each other instead of deadlocking. The
    /// statements run on chunks of up to 500 keys: one read of the existing
    /// rows, one insert of the missing ones, and one more read (see the
    /// README for each backend). Defaults may be [`lazy`](crate::lazy):
    /// computed only for keys that are inserted.
    ///
    /// The keys' values must be `Ord` (they are compared only to sort and
    /// merge; the database matches rows to keys), the defaults `Clone` (an
    /// insert that loses a key to a concurrent caller is sent again without
    /// it), and the model `Clone` (for repeated keys).
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")]
    /// # fn main() -> diesel::QueryResult<()> {
    /// # use diesel::prelude::*;
    /// # use diesel::connection::SimpleConnection;
    /// use diesel_get_or_create::prelude::*;
    /// # diesel::table! { tags (id) { id -> Integer, name -> Text } }
    /// # #[derive(Clone, Queryable, Selectable, GetOrCreate)]
    /// # #[diesel(table_name = tags)]
    /// # pub struct Tag { pub id: i32, #[unique] pub name: String }
    /// # let mut conn = SqliteConnection::establish(":memory:").unwrap();
    /// # conn.batch_execute("CREATE TABLE tags (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)")?;
    /// Tag::get_or_create(&mut conn, tags::name.key("rust"), ())?;
    /// let tags = Tag::get_or_create_all(
    ///     &mut conn,
    ///     ["web", "rust", "web"].map(|name| (tags::name.key(name), ())),
    /// )?;
    /// let names: Vec<_> = tags.iter().map(|(tag, created)| (tag.name.as_str(), *created)).collect();
    /// assert_eq!(names, [("web", true), ("rust", false), ("web", false)]);
    /// assert_eq!(tags[0].0.id, tags[2].0.id);
    /// # Ok(())
    /// # }
    /// # #[cfg(not(feature = "sqlite"))]
    /// # fn main() {}
    /// ```
    fn get_or_create_all<C, I, K, D, Mk>(conn: &mut C, items: I) -> QueryResult<Vec<(Self, bool)>>
    where
        C: Connection,
        I: IntoIterator<Item = (K, D)>,
        K: Lookup,
        Self: UniqueKey<K::Columns>,
        C::Backend: GetOrCreateAllBackend<C, Self, K, D, Mk>,
    {
        <C::Backend as GetOrCreateAllBackend<C, Self, K, D, Mk>>::get_or_create_all(conn, items)
    }

    /// Update the row with this key with `values`, or insert the key with
    /// `values` if there is none. Returns `(row, created)`.
    ///
    /// `values` must be both `AsChangeset` and `Insertable` (a tuple of
    /// `column.eq(value)`, or a struct deriving both) and `Clone`, because
    /// it may be used for both statements; a reference to a derived struct
    /// is all three.
    fn update_or_create<C, K, V, Mk>(conn: &mut C, key: K, values: V) -> QueryResult<(Self, bool)>
    where
        C: Connection,
        K: Lookup,
        V: Clone,
        Self: UniqueKey<K::Columns>,
        C::Backend: UpdateOrCreateBackend<C, Self, K, V, V, Mk>,
    {
        let create = values.clone();
        <C::Backend as UpdateOrCreateBackend<C, Self, K, V, V, Mk>>::update_or_create_with(
            conn, key, values, create,
        )
    }

    /// Apply `update` to the row with this key, or insert the key with
    /// `create` if there is none. Returns `(row, created)`.
    ///
    /// `update` is any `AsChangeset` for the table and may refer to the
    /// row's current values (`visits.eq(visits + 1)`): it is applied by the
    /// database to the row as it is when the update runs, so a concurrent
    /// update is never lost. `create` is `()` or anything `Insertable`, as
    /// the defaults of [`get_or_create`](Self::get_or_create).
    fn update_or_create_with<C, K, U, D, Mk>(
        conn: &mut C,
        key: K,
        update: U,
        create: D,
    ) -> QueryResult<(Self, bool)>
    where
        C: Connection,
        K: Lookup,
        Self: UniqueKey<K::Columns>,
        C::Backend: UpdateOrCreateBackend<C, Self, K, U, D, Mk>,
    {
        <C::Backend as UpdateOrCreateBackend<C, Self, K, U, D, Mk>>::update_or_create_with(
            conn, key, update, create,
        )
    }

    /// `update_or_create` for many keys at once, each with its own values:
    /// for each `(key, values)`, in input order, the key's row after its
    /// columns were set to `values`, or the row inserted with the key and
    /// `values` if it had none, and whether this call created it.
    ///
    /// `values` is anything `Insertable` and `Clone` (a tuple of
    /// `column.eq(value)`, a struct deriving `Insertable`, or a reference to
    /// one). On an existing row it sets the columns it inserts, except those
    /// it leaves to their default (an `Option` field's `None`), as
    /// `AsChangeset` leaves them; keys whose values set different columns go
    /// in separate statements. A key given twice is updated or created once,
    /// with the values of its first occurrence.
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")]
    /// # fn main() -> diesel::QueryResult<()> {
    /// # use diesel::prelude::*;
    /// # use diesel::connection::SimpleConnection;
    /// use diesel_get_or_create::prelude::*;
    /// # diesel::table! { tags (id) { id -> Integer, name -> Text, uses -> Integer } }
    /// # #[derive(Clone, Queryable, Selectable, GetOrCreate)]
    /// # #[diesel(table_name = tags)]
    /// # pub struct Tag { pub id: i32, #[unique] pub name: String, pub uses: i32 }
    /// # let mut conn = SqliteConnection::establish(":memory:").unwrap();
    /// # conn.batch_execute("CREATE TABLE tags (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, uses INTEGER NOT NULL)")?;
    /// Tag::get_or_create(&mut conn, tags::name.key("rust"), tags::uses.eq(5))?;
    /// let tags = Tag::update_or_create_all(
    ///     &mut conn,
    ///     [("web", 1), ("rust", 7)].map(|(name, uses)| (tags::name.key(name), tags::uses.eq(uses))),
    /// )?;
    /// let uses: Vec<_> = tags.iter().map(|(tag, created)| (tag.name.as_str(), tag.uses, *created)).collect();
    /// assert_eq!(uses, [("web", 1, true), ("rust", 7, false)]);
    /// # Ok(())
    /// # }
    /// # #[cfg(not(feature = "sqlite"))]
    /// # fn main() {}
    /// ```
    fn update_or_create_all<C, I, K, V, Mk>(
        conn: &mut C,
        items: I,
    ) -> QueryResult<Vec<(Self, bool)>>
    where
        C: Connection,
        I: IntoIterator<Item = (K, V)>,
        K: Lookup,
        Self: UniqueKey<K::Columns>,
        C::Backend: UpdateOrCreateEachBackend<C, Self, K, V, Mk>,
    {
        <C::Backend as UpdateOrCreateEachBackend<C, Self, K, V, Mk>>::update_or_create_all(
            conn, items,
        )
    }

    /// `update_or_create_with` for many keys at once: for each
    /// `(key, create)`, in input order, the key's row after `update` was
    /// applied to it, or the row inserted with `create` if the key had none,
    /// and whether this call created it.
    ///
    /// `update` is one changeset for every existing row, applied by the
    /// database to each row as it is when the update runs
    /// (`uses.eq(uses + 1)` loses no concurrent increment). A row is either
    /// updated or created by one call, never both. Keys are sorted and
    /// merged as in [`get_or_create_all`](Self::get_or_create_all): a key
    /// given twice is updated or created once, with the create values of its
    /// first occurrence. `create` may be [`lazy`](crate::lazy): computed
    /// only for keys that are inserted.
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")]
    /// # fn main() -> diesel::QueryResult<()> {
    /// # use diesel::prelude::*;
    /// # use diesel::connection::SimpleConnection;
    /// use diesel_get_or_create::prelude::*;
    /// # diesel::table! { tags (id) { id -> Integer, name -> Text, uses -> Integer } }
    /// # #[derive(Clone, Queryable, Selectable, GetOrCreate)]
    /// # #[diesel(table_name = tags)]
    /// # pub struct Tag { pub id: i32, #[unique] pub name: String, pub uses: i32 }
    /// # let mut conn = SqliteConnection::establish(":memory:").unwrap();
    /// # conn.batch_execute("CREATE TABLE tags (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, uses INTEGER NOT NULL)")?;
    /// Tag::get_or_create(&mut conn, tags::name.key("rust"), tags::uses.eq(5))?;
    /// let tags = Tag::update_or_create_all_with(
    ///     &mut conn,
    ///     ["web", "rust"].map(|name| (tags::name.key(name), tags::uses.eq(1))),
    ///     tags::uses.eq(tags::uses + 1),
    /// )?;
    /// let uses: Vec<_> = tags.iter().map(|(tag, created)| (tag.name.as_str(), tag.uses, *created)).collect();
    /// assert_eq!(uses, [("web", 1, true), ("rust", 6, false)]);
    /// # Ok(())
    /// # }
    /// # #[cfg(not(feature = "sqlite"))]
    /// # fn main() {}
    /// ```
    fn update_or_create_all_with<C, I, K, U, D, Mk>(
        conn: &mut C,
        items: I,
        update: U,
    ) -> QueryResult<Vec<(Self, bool)>>
    where
        C: Connection,
        I: IntoIterator<Item = (K, D)>,
        K: Lookup,
        Self: UniqueKey<K::Columns>,
        C::Backend: UpdateOrCreateAllBackend<C, Self, K, U, D, Mk>,
    {
        <C::Backend as UpdateOrCreateAllBackend<C, Self, K, U, D, Mk>>::update_or_create_all_with(
            conn, items, update,
        )
    }
}
