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
///
/// `conn` is any `Connection` of the backend (a plain connection, a pooled
/// one, your own wrapper). A call is *standalone* when Diesel has no
/// transaction open on it: the database aborting it (a serialization
/// failure, a deadlock) makes it run again, up to 100 runs, after a random
/// pause of up to `min(2^n, 128)` ms. Inside your transaction a call never
/// commits and never runs again; such an error is returned as
/// `DatabaseError(SerializationFailure, ..)`, which means "run your
/// transaction again" ([`transaction`](crate::transaction) does), and any
/// other error leaves your transaction usable. See
/// [`guide::transactions`](crate::guide::transactions). The statements of
/// every operation, per backend, are in
/// [`guide::statements`](crate::guide::statements); the async twin of this
/// trait is `asynchronous::GetOrCreate` (feature `async`).
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
    /// insert the key alone. Returns `(row, created)`: `created` is `true`
    /// only for the call that inserted the row. Of concurrent callers on a
    /// missing key, one inserts and every other gets that row. Defaults may
    /// be [`lazy`](crate::lazy): computed only when the call inserts.
    ///
    /// # Statements
    ///
    /// | | SQLite, PostgreSQL | MySQL / MariaDB |
    /// |---|---|---|
    /// | row exists | `SELECT .. WHERE key LIMIT 1` | `SELECT` |
    /// | row missing | + `INSERT .. ON CONFLICT (key) DO NOTHING RETURNING ..` | + `INSERT`, `SELECT` |
    /// | another caller inserted the key first | + one more `SELECT` | `SELECT`, `INSERT` (duplicate key), `SELECT .. LOCK IN SHARE MODE` |
    ///
    /// On PostgreSQL inside your transaction, the insert runs in a savepoint
    /// (+2 statements), so that its errors leave your transaction usable.
    /// A hit is always one read, and consumes no sequence value. Details
    /// and counts: [`guide::statements`](crate::guide::statements).
    ///
    /// # Errors
    ///
    /// * A conflict on a unique column *outside* the key (say the defaults
    ///   repeat another row's `username`) is returned as that
    ///   `DatabaseError(UniqueViolation, ..)`: it is never taken for
    ///   "found", and no row is touched.
    /// * `DatabaseError(SerializationFailure, ..)` inside your transaction:
    ///   on PostgreSQL at REPEATABLE READ or SERIALIZABLE, another
    ///   transaction committed the key after your snapshot; on MySQL/MariaDB,
    ///   a deadlock of your transaction. Standalone, these are retried.
    /// * `DatabaseError(SerializationFailure, ..)`, standalone too, when the
    ///   row that beat the insert was deleted before it could be read, 16
    ///   times in a row. Never `NotFound`.
    ///
    /// On MySQL/MariaDB at REPEATABLE READ, inside your transaction, it
    /// returns a row committed after your snapshot, with `created == false`.
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")]
    /// # fn main() -> diesel::QueryResult<()> {
    /// # use diesel::prelude::*;
    /// # use diesel::connection::SimpleConnection;
    /// use diesel_get_or_create::prelude::*;
    /// # diesel::table! { tags (id) { id -> Integer, name -> Text, uses -> Integer } }
    /// # #[derive(Queryable, Selectable, GetOrCreate)]
    /// # #[diesel(table_name = tags)]
    /// # pub struct Tag { pub id: i32, #[unique] pub name: String, pub uses: i32 }
    /// # let mut conn = SqliteConnection::establish(":memory:").unwrap();
    /// # conn.batch_execute("CREATE TABLE tags (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, uses INTEGER NOT NULL)")?;
    /// let (tag, created) = Tag::get_or_create(&mut conn, tags::name.key("rust"), tags::uses.eq(5))?;
    /// assert_eq!((tag.uses, created), (5, true));
    /// // The defaults are not written to an existing row.
    /// let (tag, created) = Tag::get_or_create(&mut conn, tags::name.key("rust"), tags::uses.eq(9))?;
    /// assert_eq!((tag.uses, created), (5, false));
    /// # Ok(())
    /// # }
    /// # #[cfg(not(feature = "sqlite"))]
    /// # fn main() {}
    /// ```
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
    /// rows (the only statement when every key exists), and when keys are
    /// missing, one insert of them and one more read (3 statements per chunk
    /// on SQLite and MySQL/MariaDB, 2 on PostgreSQL, 4 there inside your
    /// transaction; see [`guide::statements`](crate::guide::statements)).
    /// Defaults may be [`lazy`](crate::lazy): computed only for keys that
    /// are inserted. Errors are those of [`get_or_create`](Self::get_or_create);
    /// on MySQL/MariaDB batches that overlap partly can deadlock, which a
    /// standalone call runs again. Repeated keys, ordering, deadlocks and
    /// the race tests: [`guide::batches`](crate::guide::batches).
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
    /// is all three. It is
    /// [`update_or_create_with(conn, key, values.clone(), values)`](Self::update_or_create_with):
    /// the statements, locks and errors are that operation's.
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")]
    /// # fn main() -> diesel::QueryResult<()> {
    /// # use diesel::prelude::*;
    /// # use diesel::connection::SimpleConnection;
    /// use diesel_get_or_create::prelude::*;
    /// # diesel::table! { tags (id) { id -> Integer, name -> Text, uses -> Integer } }
    /// # #[derive(Queryable, Selectable, GetOrCreate)]
    /// # #[diesel(table_name = tags)]
    /// # pub struct Tag { pub id: i32, #[unique] pub name: String, pub uses: i32 }
    /// # let mut conn = SqliteConnection::establish(":memory:").unwrap();
    /// # conn.batch_execute("CREATE TABLE tags (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, uses INTEGER NOT NULL)")?;
    /// let (_, created) = Tag::update_or_create(&mut conn, tags::name.key("rust"), tags::uses.eq(3))?;
    /// assert!(created);
    /// let (tag, created) = Tag::update_or_create(&mut conn, tags::name.key("rust"), tags::uses.eq(4))?;
    /// assert_eq!((tag.uses, created), (4, false));
    /// # Ok(())
    /// # }
    /// # #[cfg(not(feature = "sqlite"))]
    /// # fn main() {}
    /// ```
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
    /// the defaults of [`get_or_create`](Self::get_or_create) (Django 5's
    /// `create_defaults`), and may be [`lazy`](crate::lazy): computed only
    /// when the call creates, except on PostgreSQL and MySQL/MariaDB, whose
    /// upsert carries the create values, so there it runs on every call. An
    /// empty changeset (an all-`None` struct) makes it `get_or_create`.
    ///
    /// The row stays exclusively locked until your transaction ends
    /// (standalone, until the call returns): a concurrent update waits and
    /// then applies on top. Create values that cannot form a row (a NULL in
    /// a `NOT NULL` column, a failed CHECK) never make the call fail when the
    /// row exists.
    ///
    /// # Statements
    ///
    /// | | row exists | row missing | inside your transaction |
    /// |---|---|---|---|
    /// | SQLite | `UPDATE .. WHERE key RETURNING ..` | + `INSERT .. ON CONFLICT (key) DO NOTHING RETURNING ..` | the same (1 or 2) |
    /// | PostgreSQL | `INSERT .. ON CONFLICT (key) DO UPDATE SET .. RETURNING .., (xmax = 0)` | the same one statement | in a savepoint (3) |
    /// | MySQL / MariaDB | `BEGIN`, `INSERT .. ON DUPLICATE KEY UPDATE <check>, <update>`, `SELECT .. FOR UPDATE`, `COMMIT` | the same 4 | without `BEGIN` and `COMMIT` (2) |
    ///
    /// On MySQL/MariaDB the upsert's first assignment checks that the row
    /// it met has the call's key; when it does not (a collision in another
    /// unique column), portable steps decide. Details:
    /// [`guide::statements`](crate::guide::statements).
    ///
    /// # Errors
    ///
    /// * A conflict on a unique column *outside* the key is returned as
    ///   `DatabaseError(UniqueViolation, ..)`; no row is touched.
    /// * `DatabaseError(SerializationFailure, ..)` inside your transaction
    ///   when the database aborted it (retried when standalone); see
    ///   [`guide::transactions`](crate::guide::transactions).
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")]
    /// # fn main() -> diesel::QueryResult<()> {
    /// # use diesel::prelude::*;
    /// # use diesel::connection::SimpleConnection;
    /// use diesel_get_or_create::prelude::*;
    /// # diesel::table! { tags (id) { id -> Integer, name -> Text, uses -> Integer } }
    /// # #[derive(Queryable, Selectable, GetOrCreate)]
    /// # #[diesel(table_name = tags)]
    /// # pub struct Tag { pub id: i32, #[unique] pub name: String, pub uses: i32 }
    /// # let mut conn = SqliteConnection::establish(":memory:").unwrap();
    /// # conn.batch_execute("CREATE TABLE tags (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, uses INTEGER NOT NULL)")?;
    /// for expected in [(1, true), (2, false), (3, false)] {
    ///     let (tag, created) = Tag::update_or_create_with(
    ///         &mut conn,
    ///         tags::name.key("rust"),
    ///         tags::uses.eq(tags::uses + 1), // if the row exists
    ///         tags::uses.eq(1),              // if it does not
    ///     )?;
    ///     assert_eq!((tag.uses, created), expected);
    /// }
    /// # Ok(())
    /// # }
    /// # #[cfg(not(feature = "sqlite"))]
    /// # fn main() {}
    /// ```
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
    /// with the values of its first occurrence. The values are inserted for
    /// a missing key, so they must form a complete row: on PostgreSQL values
    /// that cannot (a `NULL` in a `NOT NULL` column) fail the call even when
    /// every key exists.
    ///
    /// Per chunk of up to 500 keys and per set of columns the values set:
    /// PostgreSQL runs one `INSERT .. ON CONFLICT (key) DO UPDATE SET c =
    /// excluded.c .. RETURNING` (3 statements inside your transaction);
    /// SQLite and MySQL/MariaDB lock and upsert the existing keys, then
    /// insert the missing ones (5 to 8 statements standalone). See
    /// [`guide::statements`](crate::guide::statements) and
    /// [`guide::batches`](crate::guide::batches).
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
    /// only for keys that are inserted, except on PostgreSQL, whose upsert
    /// carries them for every key. The changeset must not change the key's
    /// columns: each returned row is matched to its key by the key's values.
    ///
    /// Per chunk of up to 500 keys: PostgreSQL runs one `INSERT .. ON
    /// CONFLICT (key) DO UPDATE .. RETURNING` (3 statements inside your
    /// transaction); SQLite an `UPDATE .. WHERE key IN (..) RETURNING`, then
    /// the insert of missing keys (1 to 5); MySQL/MariaDB a read, the
    /// `UPDATE` and a locking read, then the insert of missing keys (5
    /// standalone, 3 inside your transaction). See
    /// [`guide::statements`](crate::guide::statements), and for deadlocks
    /// and the race tests [`guide::batches`](crate::guide::batches).
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
