//! The sync driver: runs the algorithms on any `diesel::Connection` (plain,
//! pooled or instrumented), and the traits that bound the user API.

use core::future::Future;
use core::pin::pin;
use core::task::{Context, Poll, Waker};
use core::time::Duration;

use diesel::backend::Backend;
use diesel::connection::{LoadConnection, TransactionManager};
use diesel::deserialize::{FromSqlRow, SqlTypeLikeMarker};
use diesel::expression::{QueryMetadata, Selectable, TypedExpressionType};
use diesel::query_builder::{AsChangeset, QueryFragment, QueryId};
use diesel::query_source::QuerySource;
use diesel::sql_types::SqlType;
use diesel::{Connection, OptionalExtension, QueryResult, RunQueryDsl, SelectableHelper};

#[cfg(any(feature = "sqlite", feature = "postgres"))]
use crate::algorithm::ReturningIo;
use crate::algorithm::{self, Algorithms, Io};
use crate::call::{Call, RowSqlTypeOf, SelectionOf, SqlTypeOf};
use crate::defaults::InsertValues;
use crate::key::{Lookup, LookupFilter, LookupQueryId};
use crate::model::Model;
use crate::query::{LockClause, Returning, SupportsOnConflict, SupportsReturning};

/// A connection and one call's statements: what the algorithms' steps run on.
pub struct SyncIo<'c, C, P> {
    pub(crate) conn: &'c mut C,
    pub(crate) call: P,
}

/// Poll a future whose every step completes at once (the sync driver's).
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => unreachable!("the sync driver's steps never suspend"),
    }
}

/// Run the statements of call `Self` on connection `C`, synchronously.
///
/// Implemented once, for every [`Call`] whose model, key, values and
/// changeset Diesel can run on `C`'s backend: Diesel's row-loading bounds are
/// stated here and nowhere else. A statement whose clause the backend's
/// dialect lacks (`RETURNING` on MySQL) is not available.
pub trait SyncStatements<C: Connection> {
    /// The row: the model.
    type Row;

    /// `SELECT .. WHERE <key> LIMIT 1 <lock>`
    fn select<L>(&self, conn: &mut C, lock: L) -> QueryResult<Option<Self::Row>>
    where
        L: LockClause<C::Backend> + QueryId;

    /// `INSERT INTO <table> <key and values>`
    fn insert(&mut self, conn: &mut C) -> QueryResult<usize>;

    /// `UPDATE <table> SET <changeset> WHERE <key>`
    fn update(&self, conn: &mut C) -> QueryResult<usize>;

    /// `UPDATE <table> SET <changeset> WHERE <key><suffix>` (MySQL's
    /// transaction guard)
    fn update_with<R>(&self, conn: &mut C, suffix: R) -> QueryResult<usize>
    where
        R: QueryFragment<C::Backend> + QueryId;

    /// Whether the changeset is empty.
    fn update_is_noop(&self) -> QueryResult<bool>;

    /// `INSERT .. ON CONFLICT (<key>) DO NOTHING RETURNING <row>`
    fn insert_returning(&mut self, conn: &mut C) -> QueryResult<Option<Self::Row>>
    where
        C::Backend: SupportsReturning + SupportsOnConflict;

    /// `UPDATE .. SET <changeset> WHERE <key> RETURNING <row>`
    fn update_returning(&self, conn: &mut C) -> QueryResult<Option<Self::Row>>
    where
        C::Backend: SupportsReturning;
}

impl<C, DB, M, K, D, Mk, U> SyncStatements<C> for Call<M, K, D, Mk, U>
where
    C: Connection<Backend = DB> + LoadConnection,
    DB: Backend + Default + QueryMetadata<SqlTypeOf<M, DB>> + 'static,
    M: Model + Selectable<DB> + FromSqlRow<RowSqlTypeOf<M, DB>, DB> + 'static,
    M::Table: QueryId,
    <M::Table as QuerySource>::FromClause: QueryFragment<DB>,
    M::SelectExpression: QueryId,
    SelectionOf<M, DB>: QueryFragment<DB>,
    SqlTypeOf<M, DB>: SqlType + TypedExpressionType + SqlTypeLikeMarker,
    K: LookupFilter<DB> + LookupQueryId + Clone,
    D: InsertValues<M::Table, K, Mk>,
    D::Values: QueryFragment<DB> + QueryId,
    U: QueryFragment<DB>,
{
    type Row = M;

    fn select<L>(&self, conn: &mut C, lock: L) -> QueryResult<Option<M>>
    where
        L: LockClause<DB> + QueryId,
    {
        self.select(lock).get_result(conn).optional()
    }

    fn insert(&mut self, conn: &mut C) -> QueryResult<usize> {
        Call::insert(self, (), ()).execute(conn)
    }

    fn update(&self, conn: &mut C) -> QueryResult<usize> {
        Call::update(self, ()).execute(conn)
    }

    fn update_with<R>(&self, conn: &mut C, suffix: R) -> QueryResult<usize>
    where
        R: QueryFragment<DB> + QueryId,
    {
        Call::update(self, suffix).execute(conn)
    }

    fn update_is_noop(&self) -> QueryResult<bool> {
        Call::update_is_noop::<DB>(self)
    }

    fn insert_returning(&mut self, conn: &mut C) -> QueryResult<Option<M>>
    where
        DB: SupportsReturning + SupportsOnConflict,
    {
        let conflict = self.on_conflict_do_nothing();
        Call::insert(self, conflict, Returning(M::as_select()))
            .get_result(conn)
            .optional()
    }

    fn update_returning(&self, conn: &mut C) -> QueryResult<Option<M>>
    where
        DB: SupportsReturning,
    {
        Call::update(self, Returning(M::as_select()))
            .get_result(conn)
            .optional()
    }
}

impl<C, P> Io for SyncIo<'_, C, P>
where
    C: Connection,
    P: SyncStatements<C> + Send,
    P::Row: Send,
{
    type Row = P::Row;

    fn in_transaction(&mut self) -> QueryResult<bool> {
        let status =
            <C::TransactionManager as TransactionManager<C>>::transaction_manager_status_mut(
                self.conn,
            );
        Ok(status.transaction_depth()?.is_some())
    }

    fn update_is_noop(&self) -> QueryResult<bool> {
        self.call.update_is_noop()
    }

    async fn select(&mut self) -> QueryResult<Option<P::Row>> {
        self.call.select(self.conn, ())
    }

    async fn insert(&mut self) -> QueryResult<usize> {
        self.call.insert(self.conn)
    }

    async fn update(&mut self) -> QueryResult<usize> {
        self.call.update(self.conn)
    }

    async fn begin(&mut self) -> QueryResult<()> {
        C::TransactionManager::begin_transaction(self.conn)
    }

    async fn commit(&mut self) -> QueryResult<()> {
        C::TransactionManager::commit_transaction(self.conn)
    }

    async fn rollback(&mut self) -> QueryResult<()> {
        C::TransactionManager::rollback_transaction(self.conn)
    }

    async fn pause(&mut self, pause: Duration) {
        std::thread::sleep(pause)
    }
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl<C, P> ReturningIo for SyncIo<'_, C, P>
where
    C: Connection,
    C::Backend: SupportsReturning + SupportsOnConflict,
    P: SyncStatements<C> + Send,
    P::Row: Send,
{
    async fn insert_returning(&mut self) -> QueryResult<Option<P::Row>> {
        self.call.insert_returning(self.conn)
    }

    async fn update_returning(&mut self) -> QueryResult<Option<P::Row>> {
        self.call.update_returning(self.conn)
    }
}

/// Whether backend `Self` can run `get_or_create` for model `M` with lookup
/// `K` and defaults `D` over connection `C`; see
/// [`GetOrCreate::get_or_create`](crate::GetOrCreate::get_or_create).
///
/// Implemented for every backend whose feature is enabled, when the model,
/// key and defaults fit its table; `Mk` is inferred. It only appears in
/// bounds: never implement it.
#[diagnostic::on_unimplemented(
    message = "`get_or_create` cannot run for `{M}` on backend `{Self}` with these arguments",
    label = "a requirement below is not met",
    note = "check that the backend's feature of diesel-get-or-create is enabled (`sqlite`, `postgres` or `mysql`), \
            that the key and the defaults use columns of the model's table, \
            and that the model derives `Queryable` and `Selectable`",
    note = "on MariaDB, connect with `diesel::MysqlConnection`: \
            Diesel 2.4's `MariadbConnection` (backend `Mariadb`) is not supported yet"
)]
pub trait GetOrCreateBackend<C, M, K, D, Mk>: Backend + crate::query::sealed::Sealed {
    /// Run `get_or_create` on `conn`.
    #[doc(hidden)]
    fn get_or_create(conn: &mut C, key: K, defaults: D) -> QueryResult<(M, bool)>;
}

impl<DB, C, M, K, D, Mk> GetOrCreateBackend<C, M, K, D, Mk> for DB
where
    DB: Backend + crate::query::sealed::Sealed,
    C: Connection<Backend = DB>,
    M: Model,
    K: Lookup + Clone,
    D: InsertValues<M::Table, K, Mk>,
    Call<M, K, D, Mk, ()>: SyncStatements<C, Row = M>,
    Call<M, K, D, Mk, ()>: Send,
    M: Send,
    for<'c> DB: Algorithms<SyncIo<'c, C, Call<M, K, D, Mk, ()>>>,
{
    fn get_or_create(conn: &mut C, key: K, defaults: D) -> QueryResult<(M, bool)> {
        let mut io = SyncIo {
            conn,
            call: Call::new(key, defaults, ()),
        };
        block_on(DB::get_or_create(&mut io))
    }
}

/// Whether backend `Self` can run `update_or_create_with` for model `M` with
/// lookup `K`, update `U` and create values `D` over connection `C`; see
/// [`GetOrCreate::update_or_create_with`](crate::GetOrCreate::update_or_create_with).
///
/// Implemented for every backend whose feature is enabled, when the model,
/// key and values fit its table; `Mk` is inferred. It only appears in
/// bounds: never implement it.
#[diagnostic::on_unimplemented(
    message = "`update_or_create` cannot run for `{M}` on backend `{Self}` with these arguments",
    label = "a requirement below is not met",
    note = "check that the backend's feature of diesel-get-or-create is enabled (`sqlite`, `postgres` or `mysql`), \
            that the key and the values use columns of the model's table, that the update \
            values are `AsChangeset` and the create values `Insertable`, \
            and that the model derives `Queryable` and `Selectable`",
    note = "on MariaDB, connect with `diesel::MysqlConnection`: \
            Diesel 2.4's `MariadbConnection` (backend `Mariadb`) is not supported yet"
)]
pub trait UpdateOrCreateBackend<C, M, K, U, D, Mk>: Backend + crate::query::sealed::Sealed {
    /// Run `update_or_create_with` on `conn`.
    #[doc(hidden)]
    fn update_or_create_with(conn: &mut C, key: K, update: U, create: D) -> QueryResult<(M, bool)>;
}

impl<DB, C, M, K, U, D, Mk> UpdateOrCreateBackend<C, M, K, U, D, Mk> for DB
where
    DB: Backend + crate::query::sealed::Sealed,
    C: Connection<Backend = DB>,
    M: Model,
    K: Lookup + Clone,
    U: AsChangeset<Target = M::Table>,
    D: InsertValues<M::Table, K, Mk>,
    Call<M, K, D, Mk, U::Changeset>: SyncStatements<C, Row = M>,
    Call<M, K, D, Mk, U::Changeset>: Send,
    M: Send,
    for<'c> DB: Algorithms<SyncIo<'c, C, Call<M, K, D, Mk, U::Changeset>>>,
{
    fn update_or_create_with(conn: &mut C, key: K, update: U, create: D) -> QueryResult<(M, bool)> {
        let mut io = SyncIo {
            conn,
            call: Call::new(key, create, update.as_changeset()),
        };
        block_on(algorithm::update_or_create::<DB, _>(&mut io))
    }
}
