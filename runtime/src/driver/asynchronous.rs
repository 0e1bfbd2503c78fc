//! The async driver: runs the same algorithms on any
//! `diesel_async::AsyncConnection` (a plain connection, a pooled one that
//! derefs to it, or `SyncConnectionWrapper<SqliteConnection>`), and the
//! traits that bound the async user API.
//!
//! Each step awaits the connection; a retry pause awaits tokio's timer, so
//! no executor thread is blocked.

use core::future::Future;
use core::time::Duration;

use diesel::backend::Backend;
use diesel::deserialize::{FromSqlRow, SqlTypeLikeMarker};
use diesel::expression::{QueryMetadata, Selectable, TypedExpressionType};
use diesel::query_builder::{AsChangeset, BoxedSqlQuery, QueryFragment, QueryId, SqlQuery};
use diesel::query_source::QuerySource;
use diesel::sql_types::SqlType;
use diesel::{OptionalExtension, QueryResult, SelectableHelper};
use diesel_async::{AsyncConnection, RunQueryDsl, TransactionManager};

#[cfg(any(feature = "sqlite", feature = "postgres"))]
use crate::algorithm::ReturningIo;
use crate::algorithm::{self, Algorithms, Io};
use crate::call::{Call, RowSqlTypeOf, SelectionOf, SqlTypeOf};
use crate::defaults::InsertValues;
use crate::key::{Lookup, LookupFilter, LookupQueryId};
use crate::model::Model;
use crate::query::{LockClause, Returning, SupportsOnConflict, SupportsReturning};
use crate::verify::{Schema, SchemaBackend, TableName, UniqueIndex};

/// An async connection and one call's statements: what the algorithms'
/// steps run on.
pub struct AsyncIo<'c, C, P> {
    pub(crate) conn: &'c mut C,
    pub(crate) call: P,
}

/// Run the statements of call `Self` on async connection `C`.
///
/// Implemented once, for every [`Call`] whose model, key, values and
/// changeset diesel-async can run on `C`'s backend: the row-loading bounds
/// are stated here and nowhere else. The statements hold the call's values
/// by reference, so those must be `Sync` for the futures to be `Send`.
pub trait AsyncStatements<C: AsyncConnection> {
    /// The row: the model.
    type Row;

    /// `SELECT .. WHERE <key> LIMIT 1 <lock>`
    fn select<L>(
        &self,
        conn: &mut C,
        lock: L,
    ) -> impl Future<Output = QueryResult<Option<Self::Row>>> + Send
    where
        L: LockClause<C::Backend> + QueryId + Send;

    /// `INSERT INTO <table> <key and values>`
    fn insert(&mut self, conn: &mut C) -> impl Future<Output = QueryResult<usize>> + Send;

    /// `UPDATE <table> SET <changeset> WHERE <key>`
    fn update(&self, conn: &mut C) -> impl Future<Output = QueryResult<usize>> + Send;

    /// `UPDATE <table> SET <changeset> WHERE <key><suffix>` (MySQL's
    /// transaction guard)
    fn update_with<R>(
        &self,
        conn: &mut C,
        suffix: R,
    ) -> impl Future<Output = QueryResult<usize>> + Send
    where
        R: QueryFragment<C::Backend> + QueryId + Send;

    /// Whether the changeset is empty.
    fn update_is_noop(&self) -> QueryResult<bool>;

    /// `INSERT .. ON CONFLICT (<key>) DO NOTHING RETURNING <row>`
    fn insert_returning(
        &mut self,
        conn: &mut C,
    ) -> impl Future<Output = QueryResult<Option<Self::Row>>> + Send
    where
        C::Backend: SupportsReturning + SupportsOnConflict;

    /// `UPDATE .. SET <changeset> WHERE <key> RETURNING <row>`
    fn update_returning(
        &self,
        conn: &mut C,
    ) -> impl Future<Output = QueryResult<Option<Self::Row>>> + Send
    where
        C::Backend: SupportsReturning;
}

impl<C, DB, M, K, D, Mk, U> AsyncStatements<C> for Call<M, K, D, Mk, U>
where
    C: AsyncConnection<Backend = DB>,
    DB: Backend + Default + QueryMetadata<SqlTypeOf<M, DB>> + Send + 'static,
    M: Model + Selectable<DB> + FromSqlRow<RowSqlTypeOf<M, DB>, DB> + Send + 'static,
    M::Table: QueryId + Send,
    <M::Table as QuerySource>::FromClause: QueryFragment<DB> + Send,
    M::SelectExpression: QueryId + Send,
    SelectionOf<M, DB>: QueryFragment<DB>,
    SqlTypeOf<M, DB>: SqlType + TypedExpressionType + SqlTypeLikeMarker,
    K: LookupFilter<DB> + LookupQueryId + Clone + Send + Sync,
    D: InsertValues<M::Table, K, Mk> + Send + Sync,
    D::Values: QueryFragment<DB> + QueryId + Send + Sync,
    U: QueryFragment<DB> + Send + Sync,
{
    type Row = M;

    async fn select<L>(&self, conn: &mut C, lock: L) -> QueryResult<Option<M>>
    where
        L: LockClause<DB> + QueryId + Send,
    {
        self.select(lock).get_result(conn).await.optional()
    }

    async fn insert(&mut self, conn: &mut C) -> QueryResult<usize> {
        Call::insert(self, (), ()).execute(conn).await
    }

    async fn update(&self, conn: &mut C) -> QueryResult<usize> {
        Call::update(self, ()).execute(conn).await
    }

    async fn update_with<R>(&self, conn: &mut C, suffix: R) -> QueryResult<usize>
    where
        R: QueryFragment<DB> + QueryId + Send,
    {
        Call::update(self, suffix).execute(conn).await
    }

    fn update_is_noop(&self) -> QueryResult<bool> {
        Call::update_is_noop::<DB>(self)
    }

    async fn insert_returning(&mut self, conn: &mut C) -> QueryResult<Option<M>>
    where
        DB: SupportsReturning + SupportsOnConflict,
    {
        let conflict = self.on_conflict_do_nothing();
        Call::insert(self, conflict, Returning(M::as_select()))
            .get_result(conn)
            .await
            .optional()
    }

    async fn update_returning(&self, conn: &mut C) -> QueryResult<Option<M>>
    where
        DB: SupportsReturning,
    {
        Call::update(self, Returning(M::as_select()))
            .get_result(conn)
            .await
            .optional()
    }
}

impl<C, P> Io for AsyncIo<'_, C, P>
where
    C: AsyncConnection,
    P: AsyncStatements<C> + Send,
    P::Row: Send,
{
    type Row = P::Row;

    fn in_transaction(&mut self) -> QueryResult<bool> {
        let status = C::TransactionManager::transaction_manager_status_mut(self.conn);
        Ok(status.transaction_depth()?.is_some())
    }

    fn update_is_noop(&self) -> QueryResult<bool> {
        self.call.update_is_noop()
    }

    async fn select(&mut self) -> QueryResult<Option<P::Row>> {
        self.call.select(self.conn, ()).await
    }

    async fn insert(&mut self) -> QueryResult<usize> {
        self.call.insert(self.conn).await
    }

    async fn update(&mut self) -> QueryResult<usize> {
        self.call.update(self.conn).await
    }

    async fn begin(&mut self) -> QueryResult<()> {
        C::TransactionManager::begin_transaction(self.conn).await
    }

    async fn commit(&mut self) -> QueryResult<()> {
        C::TransactionManager::commit_transaction(self.conn).await
    }

    async fn rollback(&mut self) -> QueryResult<()> {
        C::TransactionManager::rollback_transaction(self.conn).await
    }

    async fn pause(&mut self, pause: Duration) {
        tokio::time::sleep(pause).await
    }
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl<C, P> ReturningIo for AsyncIo<'_, C, P>
where
    C: AsyncConnection,
    C::Backend: SupportsReturning + SupportsOnConflict,
    P: AsyncStatements<C> + Send,
    P::Row: Send,
{
    async fn insert_returning(&mut self) -> QueryResult<Option<P::Row>> {
        self.call.insert_returning(self.conn).await
    }

    async fn update_returning(&mut self) -> QueryResult<Option<P::Row>> {
        self.call.update_returning(self.conn).await
    }
}

/// Whether backend `Self` can run the async `get_or_create` for model `M`
/// with lookup `K` and defaults `D` over async connection `C`; see
/// [`asynchronous::GetOrCreate::get_or_create`](crate::asynchronous::GetOrCreate::get_or_create).
///
/// It only appears in bounds: never implement it.
#[diagnostic::on_unimplemented(
    message = "`get_or_create` cannot run for `{M}` on backend `{Self}` with these arguments",
    label = "a requirement below is not met",
    note = "check that the features `async` and the backend's (`sqlite`, `postgres` or `mysql`) of \
            diesel-get-or-create are enabled, that the key and the defaults use columns of the \
            model's table and are `Send + Sync`, and that the model derives `Queryable` and \
            `Selectable` and is `Send`",
    note = "on MariaDB, connect with `AsyncMysqlConnection`: \
            diesel-async's `AsyncMariadbConnection` (backend `Mariadb`) is not supported yet"
)]
pub trait AsyncGetOrCreateBackend<C, M, K, D, Mk>: Backend + crate::query::sealed::Sealed {
    /// Run `get_or_create` on `conn`.
    #[doc(hidden)]
    fn get_or_create(
        conn: &mut C,
        key: K,
        defaults: D,
    ) -> impl Future<Output = QueryResult<(M, bool)>> + Send;
}

impl<DB, C, M, K, D, Mk> AsyncGetOrCreateBackend<C, M, K, D, Mk> for DB
where
    DB: Backend + crate::query::sealed::Sealed,
    C: AsyncConnection<Backend = DB>,
    M: Model,
    K: Lookup + Clone,
    D: InsertValues<M::Table, K, Mk>,
    Call<M, K, D, Mk, ()>: AsyncStatements<C, Row = M>,
    Call<M, K, D, Mk, ()>: Send,
    M: Send,
    for<'c> DB: Algorithms<AsyncIo<'c, C, Call<M, K, D, Mk, ()>>>,
{
    fn get_or_create(
        conn: &mut C,
        key: K,
        defaults: D,
    ) -> impl Future<Output = QueryResult<(M, bool)>> + Send {
        let call = Call::new(key, defaults, ());
        async move {
            let mut io = AsyncIo { conn, call };
            DB::get_or_create(&mut io).await
        }
    }
}

/// Whether backend `Self` can run the async `update_or_create_with` for
/// model `M` with lookup `K`, update `U` and create values `D` over async
/// connection `C`; see
/// [`asynchronous::GetOrCreate::update_or_create_with`](crate::asynchronous::GetOrCreate::update_or_create_with).
///
/// It only appears in bounds: never implement it.
#[diagnostic::on_unimplemented(
    message = "`update_or_create` cannot run for `{M}` on backend `{Self}` with these arguments",
    label = "a requirement below is not met",
    note = "check that the features `async` and the backend's (`sqlite`, `postgres` or `mysql`) of \
            diesel-get-or-create are enabled, that the key and the values use columns of the \
            model's table and are `Send + Sync`, that the update values are `AsChangeset` and \
            the create values `Insertable`, and that the model derives `Queryable` and \
            `Selectable` and is `Send`",
    note = "on MariaDB, connect with `AsyncMysqlConnection`: \
            diesel-async's `AsyncMariadbConnection` (backend `Mariadb`) is not supported yet"
)]
pub trait AsyncUpdateOrCreateBackend<C, M, K, U, D, Mk>:
    Backend + crate::query::sealed::Sealed
{
    /// Run `update_or_create_with` on `conn`.
    #[doc(hidden)]
    fn update_or_create_with(
        conn: &mut C,
        key: K,
        update: U,
        create: D,
    ) -> impl Future<Output = QueryResult<(M, bool)>> + Send;
}

impl<DB, C, M, K, U, D, Mk> AsyncUpdateOrCreateBackend<C, M, K, U, D, Mk> for DB
where
    DB: Backend + crate::query::sealed::Sealed,
    C: AsyncConnection<Backend = DB>,
    M: Model,
    K: Lookup + Clone,
    U: AsChangeset<Target = M::Table>,
    D: InsertValues<M::Table, K, Mk>,
    Call<M, K, D, Mk, U::Changeset>: AsyncStatements<C, Row = M>,
    Call<M, K, D, Mk, U::Changeset>: Send,
    M: Send,
    for<'c> DB: Algorithms<AsyncIo<'c, C, Call<M, K, D, Mk, U::Changeset>>>,
{
    fn update_or_create_with(
        conn: &mut C,
        key: K,
        update: U,
        create: D,
    ) -> impl Future<Output = QueryResult<(M, bool)>> + Send {
        // The changeset is built before the future: `update` is not held
        // across an await, so it need not be `Send`.
        let call = Call::new(key, create, update.as_changeset());
        async move {
            let mut io = AsyncIo { conn, call };
            algorithm::update_or_create::<DB, _>(&mut io).await
        }
    }
}

/// How backend `Self` lists a table's unique indexes over async connection
/// `C`: the same two queries as the sync check, awaited.
#[diagnostic::on_unimplemented(
    message = "the constraints of a model cannot be checked over `{C}`",
    note = "check that the features `async` and the backend's (`sqlite`, `postgres` or `mysql`) \
            of diesel-get-or-create are enabled",
    note = "on MariaDB, connect with `AsyncMysqlConnection`: \
            diesel-async's `AsyncMariadbConnection` (backend `Mariadb`) is not supported yet"
)]
pub trait AsyncIntrospect<C>: SchemaBackend {
    /// The table's unique indexes, or `None` if the table does not exist.
    #[doc(hidden)]
    fn unique_indexes(
        conn: &mut C,
        table: &TableName,
    ) -> impl Future<Output = QueryResult<Option<Vec<UniqueIndex>>>>;
}

impl<C, DB> AsyncIntrospect<C> for DB
where
    C: AsyncConnection<Backend = DB>,
    DB: Schema + 'static,
    BoxedSqlQuery<'static, DB, SqlQuery>: diesel_async::methods::LoadQuery<'static, C, DB::TableRow>
        + diesel_async::methods::LoadQuery<'static, C, DB::IndexRow>,
{
    async fn unique_indexes(
        conn: &mut C,
        table: &TableName,
    ) -> QueryResult<Option<Vec<UniqueIndex>>> {
        let table_rows = DB::table_query(table).load(conn).await?;
        if table_rows.is_empty() {
            return Ok(None);
        }
        let index_rows = DB::indexes_query(table).load(conn).await?;
        Ok(DB::unique_indexes(table_rows, index_rows))
    }
}
