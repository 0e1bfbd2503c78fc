//! The same operations on diesel-async connections (feature `async`).
//!
//! As with diesel-async's own `RunQueryDsl`, you bring the async trait into
//! scope instead of the sync one: `use diesel_get_or_create::asynchronous::prelude::*;`
//! (the derive, this module's [`GetOrCreate`] and `.key()`) in place of
//! `diesel_get_or_create::prelude::*`. The derive is the same; every model
//! that derives `GetOrCreate` has both traits.
//!
//! ```no_run
//! # #[cfg(feature = "postgres")]
//! # mod example {
//! use diesel::prelude::*;
//! use diesel_async::AsyncPgConnection;
//! use diesel_get_or_create::asynchronous::prelude::*;
//!
//! diesel::table! {
//!     tags (id) {
//!         id -> Integer,
//!         name -> Text,
//!         uses -> Integer,
//!     }
//! }
//!
//! #[derive(Queryable, Selectable, GetOrCreate)]
//! #[diesel(table_name = tags)]
//! pub struct Tag {
//!     pub id: i32,
//!     #[unique]
//!     pub name: String,
//!     pub uses: i32,
//! }
//!
//! pub async fn tag(conn: &mut AsyncPgConnection, name: &str) -> QueryResult<Tag> {
//!     let (tag, _created) = Tag::update_or_create_with(
//!         conn,
//!         tags::name.key(name),
//!         tags::uses.eq(tags::uses + 1),
//!         tags::uses.eq(1),
//!     )
//!     .await?;
//!     Ok(tag)
//! }
//! # }
//! ```
//!
//! The algorithms, the statements and their count per call are those of the
//! sync API: one async driver runs them. The returned futures are `Send`
//! whenever the connection, the model and the key and values are, so a call
//! can run in `tokio::spawn` or a web handler. A retry pause awaits tokio's
//! timer: the calls need a tokio runtime (as diesel-async's PostgreSQL and
//! MySQL connections do).
//!
//! * **Connections.** Any `diesel_async::AsyncConnection`: `AsyncPgConnection`,
//!   `AsyncMysqlConnection`, `SyncConnectionWrapper<SqliteConnection>`, and
//!   pooled deadpool or bb8 connections, which deref to them.
//! * **The same statements.** The async calls run the algorithms of the sync
//!   API through an async driver, so they send the same statements in the
//!   same order ([`guide::statements`](crate::guide::statements) holds for
//!   both; `tests/async_suite.rs` asserts it, statement text included).
//! * **The same tests.** Every shared test (behaviour, the constraint check,
//!   the interleavings, the races at every isolation level, standalone and
//!   inside the callers' transactions) runs on `AsyncPgConnection`,
//!   `AsyncMysqlConnection` and `SyncConnectionWrapper<SqliteConnection>`
//!   (deadpool-pooled too) from the same generic code as the sync tests, and
//!   half the processes of the multi-process race use the async API.
//! * **`Send`.** A call runs in `tokio::spawn`, in an axum handler, and inside
//!   `conn.transaction(async |c| ..)` with borrowed keys. The sync API
//!   requires the same `Send` (every Diesel connection is `Send`).
//! * **Errors.** diesel-async reports a MySQL deadlock (1213) as `Unknown`.
//!   The crate reads it as the `SerializationFailure` that sync Diesel
//!   reports: a standalone call runs again, and a call inside your
//!   transaction returns `SerializationFailure`.
//! * **Constraint check.** `Model::verify_constraints(&mut conn).await` and
//!   [`verify_all`] run the same two queries per table as the sync check.
//! * **Retrying transactions.** [`transaction`] is the async twin of
//!   [`crate::transaction`].
//!
//! `cargo run --example async_web` (in the repository) runs 64 concurrent
//! requests over a deadpool pool on SQLite, doing what crates.io's
//! `Keyword::find_or_create_all` and Lemmy's `Instance::read_or_create` do by
//! hand.
//!
//! **Cancellation.** A future dropped between two statements (a request
//! timeout) leaves what diesel-async's own `transaction` leaves: a standalone
//! call's open transaction stays open on the connection, uncommitted, and
//! diesel-async's transaction manager counts it. A pool (deadpool, bb8)
//! discards such a connection instead of reusing it, and the server rolls the
//! transaction back when the connection closes, so no partial row is ever
//! committed. A connection you hold yourself should be dropped, or its
//! transaction rolled back, before it is used again.

use core::future::Future;

use diesel::query_builder::QueryFragment;
use diesel::QueryResult;
use diesel_async::AsyncConnection;

use crate::driver::asynchronous::{AsyncGetOrCreateBackend, AsyncUpdateOrCreateBackend};
use crate::key::Lookup;
use crate::model::Model;
use crate::unique::UniqueKey;
use crate::verify::{ConstraintError, ConstraintReport, ModelConstraints};

pub use crate::batch::asynchronous::{
    AsyncGetOrCreateAllBackend, AsyncUpdateOrCreateAllBackend, AsyncUpdateOrCreateEachBackend,
};
pub use crate::driver::asynchronous::AsyncIntrospect;

/// `use diesel_get_or_create::asynchronous::prelude::*;` brings the
/// derive, the async [`GetOrCreate`] trait and `.key()` into scope.
pub mod prelude {
    pub use super::GetOrCreate;
    pub use crate::key::KeyExpressionMethods;
    pub use diesel_get_or_create_macros::GetOrCreate;
}

/// Atomic `get_or_create` and `update_or_create` on a diesel-async
/// connection: the async twin of [`crate::GetOrCreate`], with the same
/// arguments, semantics and statements. Every model that derives
/// `GetOrCreate` has it; it cannot be implemented by hand.
pub trait GetOrCreate: Model {
    /// Return the row with this key, or insert the key with `defaults`;
    /// see [`crate::GetOrCreate::get_or_create`].
    fn get_or_create<C, K, D, Mk>(
        conn: &mut C,
        key: K,
        defaults: D,
    ) -> impl Future<Output = QueryResult<(Self, bool)>> + Send
    where
        C: AsyncConnection,
        K: Lookup,
        Self: UniqueKey<K::Columns>,
        C::Backend: AsyncGetOrCreateBackend<C, Self, K, D, Mk>;

    /// `get_or_create` for many keys at once: for each `(key, defaults)`, in
    /// input order, the key's row and whether this call created it; see
    /// [`crate::GetOrCreate::get_or_create_all`]. The key values must also be
    /// `Send + Sync`, and the defaults and the model `Send`; `items` is
    /// consumed by the call itself, before the future runs, so it need not
    /// be `Send`.
    fn get_or_create_all<C, I, K, D, Mk>(
        conn: &mut C,
        items: I,
    ) -> impl Future<Output = QueryResult<Vec<(Self, bool)>>> + Send
    where
        C: AsyncConnection,
        I: IntoIterator<Item = (K, D)>,
        K: Lookup,
        Self: UniqueKey<K::Columns>,
        C::Backend: AsyncGetOrCreateAllBackend<C, Self, K, D, Mk>;

    /// Update the row with this key with `values`, or insert the key with
    /// `values`; see [`crate::GetOrCreate::update_or_create`].
    fn update_or_create<C, K, V, Mk>(
        conn: &mut C,
        key: K,
        values: V,
    ) -> impl Future<Output = QueryResult<(Self, bool)>> + Send
    where
        C: AsyncConnection,
        K: Lookup,
        V: Clone,
        Self: UniqueKey<K::Columns>,
        C::Backend: AsyncUpdateOrCreateBackend<C, Self, K, V, V, Mk>;

    /// Apply `update` to the row with this key, or insert the key with
    /// `create`; see [`crate::GetOrCreate::update_or_create_with`].
    fn update_or_create_with<C, K, U, D, Mk>(
        conn: &mut C,
        key: K,
        update: U,
        create: D,
    ) -> impl Future<Output = QueryResult<(Self, bool)>> + Send
    where
        C: AsyncConnection,
        K: Lookup,
        Self: UniqueKey<K::Columns>,
        C::Backend: AsyncUpdateOrCreateBackend<C, Self, K, U, D, Mk>;

    /// `update_or_create` for many keys at once, each with its own values:
    /// for each `(key, values)`, in input order, the key's row and whether
    /// this call created it; see [`crate::GetOrCreate::update_or_create_all`].
    /// The key values must also be `Send + Sync`, the values and the model
    /// `Send`; `items` is consumed by the call itself, before the future
    /// runs, so it need not be `Send`.
    fn update_or_create_all<C, I, K, V, Mk>(
        conn: &mut C,
        items: I,
    ) -> impl Future<Output = QueryResult<Vec<(Self, bool)>>> + Send
    where
        C: AsyncConnection,
        I: IntoIterator<Item = (K, V)>,
        K: Lookup,
        Self: UniqueKey<K::Columns>,
        C::Backend: AsyncUpdateOrCreateEachBackend<C, Self, K, V, Mk>;

    /// `update_or_create_with` for many keys at once: for each
    /// `(key, create)`, in input order, the key's row after `update`, or the
    /// row created with `create`, and whether this call created it; see
    /// [`crate::GetOrCreate::update_or_create_all_with`]. As for
    /// [`get_or_create_all`](Self::get_or_create_all), the key values must
    /// also be `Send + Sync`, the create values and the model `Send`, and
    /// the changeset built from `update` (its `AsChangeset` output)
    /// `Send + Sync`; `items` and `update` are consumed by the call itself,
    /// before the future runs, so they need not be `Send`.
    fn update_or_create_all_with<C, I, K, U, D, Mk>(
        conn: &mut C,
        items: I,
        update: U,
    ) -> impl Future<Output = QueryResult<Vec<(Self, bool)>>> + Send
    where
        C: AsyncConnection,
        I: IntoIterator<Item = (K, D)>,
        K: Lookup,
        Self: UniqueKey<K::Columns>,
        C::Backend: AsyncUpdateOrCreateAllBackend<C, Self, K, U, D, Mk>;

    /// Check the declared constraints against the live schema; see
    /// [`crate::GetOrCreate::verify_constraints`].
    fn verify_constraints<C>(
        conn: &mut C,
    ) -> impl Future<Output = Result<ConstraintReport, ConstraintError>>
    where
        C: AsyncConnection,
        C::Backend: AsyncIntrospect<C>,
        Self::Table: QueryFragment<C::Backend>;
}

impl<M: Model> GetOrCreate for M {
    fn get_or_create<C, K, D, Mk>(
        conn: &mut C,
        key: K,
        defaults: D,
    ) -> impl Future<Output = QueryResult<(Self, bool)>> + Send
    where
        C: AsyncConnection,
        K: Lookup,
        Self: UniqueKey<K::Columns>,
        C::Backend: AsyncGetOrCreateBackend<C, Self, K, D, Mk>,
    {
        <C::Backend as AsyncGetOrCreateBackend<C, Self, K, D, Mk>>::get_or_create(
            conn, key, defaults,
        )
    }

    fn get_or_create_all<C, I, K, D, Mk>(
        conn: &mut C,
        items: I,
    ) -> impl Future<Output = QueryResult<Vec<(Self, bool)>>> + Send
    where
        C: AsyncConnection,
        I: IntoIterator<Item = (K, D)>,
        K: Lookup,
        Self: UniqueKey<K::Columns>,
        C::Backend: AsyncGetOrCreateAllBackend<C, Self, K, D, Mk>,
    {
        <C::Backend as AsyncGetOrCreateAllBackend<C, Self, K, D, Mk>>::get_or_create_all(
            conn, items,
        )
    }

    fn update_or_create<C, K, V, Mk>(
        conn: &mut C,
        key: K,
        values: V,
    ) -> impl Future<Output = QueryResult<(Self, bool)>> + Send
    where
        C: AsyncConnection,
        K: Lookup,
        V: Clone,
        Self: UniqueKey<K::Columns>,
        C::Backend: AsyncUpdateOrCreateBackend<C, Self, K, V, V, Mk>,
    {
        let create = values.clone();
        <C::Backend as AsyncUpdateOrCreateBackend<C, Self, K, V, V, Mk>>::update_or_create_with(
            conn, key, values, create,
        )
    }

    fn update_or_create_with<C, K, U, D, Mk>(
        conn: &mut C,
        key: K,
        update: U,
        create: D,
    ) -> impl Future<Output = QueryResult<(Self, bool)>> + Send
    where
        C: AsyncConnection,
        K: Lookup,
        Self: UniqueKey<K::Columns>,
        C::Backend: AsyncUpdateOrCreateBackend<C, Self, K, U, D, Mk>,
    {
        <C::Backend as AsyncUpdateOrCreateBackend<C, Self, K, U, D, Mk>>::update_or_create_with(
            conn, key, update, create,
        )
    }

    fn update_or_create_all<C, I, K, V, Mk>(
        conn: &mut C,
        items: I,
    ) -> impl Future<Output = QueryResult<Vec<(Self, bool)>>> + Send
    where
        C: AsyncConnection,
        I: IntoIterator<Item = (K, V)>,
        K: Lookup,
        Self: UniqueKey<K::Columns>,
        C::Backend: AsyncUpdateOrCreateEachBackend<C, Self, K, V, Mk>,
    {
        <C::Backend as AsyncUpdateOrCreateEachBackend<C, Self, K, V, Mk>>::update_or_create_all(
            conn, items,
        )
    }

    fn update_or_create_all_with<C, I, K, U, D, Mk>(
        conn: &mut C,
        items: I,
        update: U,
    ) -> impl Future<Output = QueryResult<Vec<(Self, bool)>>> + Send
    where
        C: AsyncConnection,
        I: IntoIterator<Item = (K, D)>,
        K: Lookup,
        Self: UniqueKey<K::Columns>,
        C::Backend: AsyncUpdateOrCreateAllBackend<C, Self, K, U, D, Mk>,
    {
        <C::Backend as AsyncUpdateOrCreateAllBackend<C, Self, K, U, D, Mk>>::update_or_create_all_with(
            conn, items, update,
        )
    }

    fn verify_constraints<C>(
        conn: &mut C,
    ) -> impl Future<Output = Result<ConstraintReport, ConstraintError>>
    where
        C: AsyncConnection,
        C::Backend: AsyncIntrospect<C>,
        Self::Table: QueryFragment<C::Backend>,
    {
        let models = [<Self as crate::GetOrCreate>::constraints::<C::Backend>()];
        async move { verify_all(conn, &models).await }
    }
}

/// Check the declared constraints of several models against the live
/// schema; see [`crate::verify_all`].
pub async fn verify_all<C>(
    conn: &mut C,
    models: &[ModelConstraints<C::Backend>],
) -> Result<ConstraintReport, ConstraintError>
where
    C: AsyncConnection,
    C::Backend: AsyncIntrospect<C>,
{
    let mut found = Vec::with_capacity(models.len());
    for model in models {
        found.push(<C::Backend as AsyncIntrospect<C>>::unique_indexes(conn, model.table()).await?);
    }
    crate::verify::report(models, found)
}

/// Run `f` in a transaction, and run it again, in a new transaction, when
/// the database aborted it: the async twin of [`crate::transaction`], with
/// the same failures retried, the same runs and pauses (awaited on tokio's
/// timer) and the same errors returned.
///
/// `f` is an async closure called once per run: `async |conn| { .. }`.
/// diesel-async reports a MySQL deadlock as `Unknown`; it is retried, and
/// returned as `DatabaseError(SerializationFailure, ..)` when `E` is
/// Diesel's error.
///
/// The future is `Send`, so it runs in `tokio::spawn` and in a web handler,
/// when the closure owns what it uses: write `async move |conn| { .. }`
/// (`tests/transaction.rs` spawns it). An `async |conn|` closure that
/// borrows a local of the task (`key.as_str()`) makes rustc report
/// "implementation of `Send` is not general enough" at the spawn: Rust cannot
/// yet state that an async closure's future is `Send` for every borrow.
///
/// ```no_run
/// # #[cfg(feature = "postgres")]
/// # mod example {
/// use diesel::prelude::*;
/// use diesel_async::AsyncPgConnection;
/// use diesel_get_or_create::asynchronous::prelude::*;
///
/// diesel::table! {
///     tags (id) {
///         id -> Integer,
///         name -> Text,
///         uses -> Integer,
///     }
/// }
///
/// #[derive(Queryable, Selectable, GetOrCreate)]
/// #[diesel(table_name = tags)]
/// pub struct Tag {
///     pub id: i32,
///     #[unique]
///     pub name: String,
///     pub uses: i32,
/// }
///
/// /// Count a use of both tags, or of neither.
/// pub async fn tag_both(conn: &mut AsyncPgConnection, a: &str, b: &str) -> QueryResult<()> {
///     diesel_get_or_create::asynchronous::transaction(conn, async |conn| {
///         for name in [a, b] {
///             Tag::update_or_create_with(
///                 conn,
///                 tags::name.key(name),
///                 tags::uses.eq(tags::uses + 1),
///                 tags::uses.eq(1),
///             )
///             .await?;
///         }
///         Ok(())
///     })
///     .await
/// }
/// # }
/// ```
pub async fn transaction<C, T, E, F>(conn: &mut C, mut f: F) -> Result<T, E>
where
    C: AsyncConnection,
    C::Backend: crate::transaction::RetryBackend,
    F: AsyncFnMut(&mut C) -> Result<T, E>,
    E: crate::transaction::TransactionError,
{
    use diesel_async::TransactionManager;
    let depth = C::TransactionManager::transaction_manager_status_mut(conn).transaction_depth()?;
    let mut runs = crate::transaction::runs::<C::Backend>(depth.is_some());
    let check = <C::Backend as crate::transaction::RetryBackend>::__commit_check();
    loop {
        // What diesel-async's `transaction` does, with a closure that can be
        // called again.
        C::TransactionManager::begin_transaction(conn).await?;
        let mut result = f(&mut *conn).await;
        if let (Ok(_), Some((sql, read))) = (&result, check) {
            if let Err(error) = conn.batch_execute(sql).await {
                result = Err(E::from(read(error)));
            }
        }
        let result = match result {
            Ok(value) => match C::TransactionManager::commit_transaction(conn).await {
                Ok(()) => Ok(value),
                Err(error) => Err(E::from(error)),
            },
            Err(error) => match C::TransactionManager::rollback_transaction(conn).await {
                Ok(()) | Err(diesel::result::Error::BrokenTransactionManager) => Err(error),
                Err(rollback_error) => Err(E::from(rollback_error)),
            },
        };
        match result {
            Ok(value) => return Ok(value),
            Err(error) => {
                let pause = crate::transaction::again::<C::Backend, E>(&mut runs, error)?;
                tokio::time::sleep(pause).await;
            }
        }
    }
}
