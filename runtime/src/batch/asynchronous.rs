//! The batch statements on any `diesel_async::AsyncConnection` (a plain
//! connection, a pooled one that derefs to it, or
//! `SyncConnectionWrapper<SqliteConnection>`): the algorithms of
//! [`super`], each step awaited, with the statements of the sync API.

use core::future::Future;
use core::time::Duration;

use diesel::backend::Backend;
use diesel::deserialize::FromSqlRow;
use diesel::expression::{QueryMetadata, Selectable};
use diesel::query_builder::{AsChangeset, QueryFragment, QueryId};
use diesel::query_source::QuerySource;
use diesel::sql_types::Integer;
use diesel::{QueryResult, SelectableHelper};
use diesel_async::{AsyncConnection, RunQueryDsl, TransactionManager};

use super::each::{columns_of, Each, SetToValues};
#[cfg(any(feature = "postgres", feature = "sqlite"))]
use super::UpdateReturningBatchIo;
use super::{
    positions, update_or_create_all_with, update_or_create_each, Batch, BatchAlgorithms, BatchIo,
    BatchLock, BatchUpdateAlgorithms, UpdateBatchIo, UpsertRowsBatchIo,
};
use crate::call::SelectionOf;
use crate::defaults::InsertRow;
use crate::key::{Lookup, LookupFilter};
use crate::model::Model;
use crate::query::SupportsReturning;

/// An async connection and one batch: what the batch algorithm's steps run
/// on.
pub struct AsyncBatchIo<'c, C, M, K, D, Mk, U = ()>
where
    M: Model,
    D: InsertRow<M::Table, K, Mk>,
{
    pub(crate) conn: &'c mut C,
    pub(crate) batch: Batch<M, K, D, Mk, U>,
}

/// The batch statements of `Self` on async connection `C`: diesel-async's
/// loading bounds, stated once. A statement borrows the batch's keys (and
/// changeset) while it runs, so those must be `Sync`.
pub trait AsyncBatchStatements<C: AsyncConnection> {
    /// The row: the model.
    type Row;
    /// See [`BatchIo::read`].
    fn read(
        &self,
        conn: &mut C,
        which: &[usize],
        lock: bool,
    ) -> impl Future<Output = QueryResult<Vec<(usize, Self::Row)>>> + Send;
    /// See [`BatchIo::insert`].
    fn insert(
        &mut self,
        conn: &mut C,
        which: &[usize],
    ) -> impl Future<Output = QueryResult<usize>> + Send;
    /// See [`UpdateBatchIo::update_is_noop`].
    fn update_is_noop(&self) -> QueryResult<bool>;
    /// See [`UpdateBatchIo::update`].
    fn update(
        &self,
        conn: &mut C,
        which: &[usize],
    ) -> impl Future<Output = QueryResult<usize>> + Send;
    /// See [`UpdateReturningBatchIo::update_returning`].
    fn update_returning(
        &self,
        conn: &mut C,
        which: &[usize],
    ) -> impl Future<Output = QueryResult<Vec<(usize, Self::Row)>>> + Send
    where
        C::Backend: SupportsReturning;
}

impl<C, DB, M, K, D, Mk, U> AsyncBatchStatements<C> for Batch<M, K, D, Mk, U>
where
    C: AsyncConnection<Backend = DB>,
    DB: Backend + Default + BatchLock + QueryMetadata<(Integer, SelectionOf<M, DB>)>,
    DB: Send + 'static,
    DB: AsyncInsertRows<C, M, D::Row>,
    M: Model + Selectable<DB> + Send + 'static,
    M::Table: Send,
    M::SelectExpression: QueryId + Send,
    (i32, M): FromSqlRow<(Integer, SelectionOf<M, DB>), DB>,
    <M::Table as QuerySource>::FromClause: QueryFragment<DB> + Send,
    SelectionOf<M, DB>: QueryFragment<DB>,
    K: Lookup + LookupFilter<DB> + Ord + Clone + Sync,
    D: InsertRow<M::Table, K, Mk>,
    D::Row: Clone,
    DB::Lock: Send,
    U: QueryFragment<DB> + Sync,
{
    type Row = M;

    fn read(
        &self,
        conn: &mut C,
        which: &[usize],
        lock: bool,
    ) -> impl Future<Output = QueryResult<Vec<(usize, M)>>> + Send {
        // The statement borrows the keys only: the batch need not be `Sync`.
        let query = self.select_keys::<DB>(which, lock);
        async move { positions(which, query.load::<(i32, M)>(conn).await?) }
    }

    fn insert(
        &mut self,
        conn: &mut C,
        which: &[usize],
    ) -> impl Future<Output = QueryResult<usize>> + Send {
        DB::insert_rows(conn, self.rows(which))
    }

    fn update_is_noop(&self) -> QueryResult<bool> {
        self.changeset.is_noop(&DB::default())
    }

    fn update(
        &self,
        conn: &mut C,
        which: &[usize],
    ) -> impl Future<Output = QueryResult<usize>> + Send {
        let query = self.update_keys::<()>(which, None);
        async move { query.execute(conn).await }
    }

    fn update_returning(
        &self,
        conn: &mut C,
        which: &[usize],
    ) -> impl Future<Output = QueryResult<Vec<(usize, M)>>> + Send
    where
        DB: SupportsReturning,
    {
        let query = self.update_keys(which, Some(M::as_select()));
        async move { positions(which, query.load::<(i32, M)>(conn).await?) }
    }
}

impl<C, M, K, D, Mk, U> BatchIo for AsyncBatchIo<'_, C, M, K, D, Mk, U>
where
    C: AsyncConnection,
    M: Model + Send,
    K: Send,
    D: InsertRow<M::Table, K, Mk> + Send,
    D::Row: Send,
    Mk: Send,
    U: Send,
    Batch<M, K, D, Mk, U>: AsyncBatchStatements<C, Row = M>,
{
    type Row = M;

    fn in_transaction(&mut self) -> QueryResult<bool> {
        let status = C::TransactionManager::transaction_manager_status_mut(self.conn);
        Ok(status.transaction_depth()?.is_some())
    }

    fn len(&self) -> usize {
        self.batch.keys.len()
    }

    async fn read(&mut self, which: &[usize], lock: bool) -> QueryResult<Vec<(usize, M)>> {
        self.batch.read(self.conn, which, lock).await
    }

    async fn insert(&mut self, which: &[usize]) -> QueryResult<usize> {
        self.batch.insert(self.conn, which).await
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

impl<C, M, K, D, Mk, U> UpdateBatchIo for AsyncBatchIo<'_, C, M, K, D, Mk, U>
where
    Self: BatchIo<Row = M>,
    C: AsyncConnection,
    M: Model,
    D: InsertRow<M::Table, K, Mk>,
    Batch<M, K, D, Mk, U>: AsyncBatchStatements<C, Row = M>,
{
    fn update_is_noop(&self) -> QueryResult<bool> {
        self.batch.update_is_noop()
    }

    async fn update(&mut self, which: &[usize]) -> QueryResult<usize> {
        self.batch.update(self.conn, which).await
    }
}

#[cfg(any(feature = "postgres", feature = "sqlite"))]
impl<C, M, K, D, Mk, U> UpdateReturningBatchIo for AsyncBatchIo<'_, C, M, K, D, Mk, U>
where
    Self: UpdateBatchIo<Row = M>,
    C: AsyncConnection,
    C::Backend: SupportsReturning,
    M: Model,
    D: InsertRow<M::Table, K, Mk>,
    Batch<M, K, D, Mk, U>: AsyncBatchStatements<C, Row = M>,
{
    async fn update_returning(&mut self, which: &[usize]) -> QueryResult<Vec<(usize, M)>> {
        self.batch.update_returning(self.conn, which).await
    }
}

#[cfg(feature = "sqlite")]
use crate::call::{RowSqlTypeOf, SqlTypeOf};

/// The statements of [`UpsertRowsBatchIo`] on backend `Self` (MySQL,
/// SQLite), on async connection `C`.
pub trait AsyncUpsertRows<C, M, K, D, Mk, U>: Backend
where
    M: Model,
    D: InsertRow<M::Table, K, Mk>,
{
    /// See [`UpsertRowsBatchIo::lock_rows`].
    fn lock_rows(
        conn: &mut C,
        batch: &mut Batch<M, K, D, Mk, U>,
        which: &[usize],
    ) -> impl Future<Output = QueryResult<Vec<(usize, M)>>> + Send;
    /// See [`UpsertRowsBatchIo::upsert_rows`].
    fn upsert_rows(
        conn: &mut C,
        batch: &mut Batch<M, K, D, Mk, U>,
        which: &[usize],
    ) -> impl Future<Output = QueryResult<Option<Vec<(usize, M)>>>> + Send;
}

impl<C, M, K, D, Mk, U> UpsertRowsBatchIo for AsyncBatchIo<'_, C, M, K, D, Mk, U>
where
    Self: UpdateBatchIo<Row = M>,
    C: AsyncConnection,
    C::Backend: AsyncUpsertRows<C, M, K, D, Mk, U>,
    M: Model,
    D: InsertRow<M::Table, K, Mk>,
{
    async fn lock_rows(&mut self, which: &[usize]) -> QueryResult<Vec<(usize, M)>> {
        C::Backend::lock_rows(self.conn, &mut self.batch, which).await
    }

    async fn upsert_rows(&mut self, which: &[usize]) -> QueryResult<Option<Vec<(usize, M)>>> {
        C::Backend::upsert_rows(self.conn, &mut self.batch, which).await
    }
}

#[cfg(feature = "mysql")]
impl<C, M, K, D, Mk, U> AsyncUpsertRows<C, M, K, D, Mk, U> for diesel::mysql::Mysql
where
    C: AsyncConnection<Backend = diesel::mysql::Mysql>,
    M: Model + Selectable<diesel::mysql::Mysql> + Send + 'static,
    M::Table: Send,
    M::SelectExpression: QueryId + Send,
    diesel::mysql::Mysql: QueryMetadata<(Integer, SelectionOf<M, diesel::mysql::Mysql>)>,
    (i32, M): FromSqlRow<(Integer, SelectionOf<M, diesel::mysql::Mysql>), diesel::mysql::Mysql>,
    <M::Table as QuerySource>::FromClause: QueryFragment<diesel::mysql::Mysql> + Send,
    SelectionOf<M, diesel::mysql::Mysql>: QueryFragment<diesel::mysql::Mysql>,
    K: Lookup + LookupFilter<diesel::mysql::Mysql> + Ord + Clone + Sync,
    D: InsertRow<M::Table, K, Mk>,
    D::Row: Clone,
    Vec<D::Row>: diesel::Insertable<M::Table>,
    super::InsertRows<M, D::Row>: QueryFragment<diesel::mysql::Mysql> + Send,
    U: QueryFragment<diesel::mysql::Mysql> + Sync,
{
    fn lock_rows(
        conn: &mut C,
        batch: &mut Batch<M, K, D, Mk, U>,
        which: &[usize],
    ) -> impl Future<Output = QueryResult<Vec<(usize, M)>>> + Send {
        let query = batch.select_for_update(which);
        async move { positions(which, query.load::<(i32, M)>(conn).await?) }
    }

    fn upsert_rows(
        conn: &mut C,
        batch: &mut Batch<M, K, D, Mk, U>,
        which: &[usize],
    ) -> impl Future<Output = QueryResult<Option<Vec<(usize, M)>>>> + Send {
        let upsert = batch.upsert_rows(which);
        async move {
            upsert
                .execute(conn)
                .await
                .map_err(super::each::other_unique)?;
            Ok(None)
        }
    }
}

#[cfg(feature = "sqlite")]
impl<C, M, K, D, Mk, U> AsyncUpsertRows<C, M, K, D, Mk, U> for diesel::sqlite::Sqlite
where
    C: AsyncConnection<Backend = diesel::sqlite::Sqlite>,
    M: Model + Selectable<diesel::sqlite::Sqlite> + Send + 'static,
    M: FromSqlRow<RowSqlTypeOf<M, diesel::sqlite::Sqlite>, diesel::sqlite::Sqlite>,
    diesel::sqlite::Sqlite: QueryMetadata<SqlTypeOf<M, diesel::sqlite::Sqlite>>,
    SqlTypeOf<M, diesel::sqlite::Sqlite>: diesel::sql_types::SqlType
        + diesel::expression::TypedExpressionType
        + diesel::deserialize::SqlTypeLikeMarker,
    M::Table: QueryId + Send,
    M::SelectExpression: QueryId + Send,
    diesel::sqlite::Sqlite: QueryMetadata<(Integer, SelectionOf<M, diesel::sqlite::Sqlite>)>,
    (i32, M): FromSqlRow<(Integer, SelectionOf<M, diesel::sqlite::Sqlite>), diesel::sqlite::Sqlite>,
    <M::Table as QuerySource>::FromClause: QueryFragment<diesel::sqlite::Sqlite> + Send + Sync,
    SelectionOf<M, diesel::sqlite::Sqlite>: QueryFragment<diesel::sqlite::Sqlite>,
    K: Lookup + LookupFilter<diesel::sqlite::Sqlite> + Ord + Clone + Sync,
    D: InsertRow<M::Table, K, Mk>,
    D::Row: Clone + diesel::Insertable<M::Table>,
    <D::Row as diesel::Insertable<M::Table>>::Values:
        QueryFragment<diesel::sqlite::Sqlite> + QueryId + Send + Sync,
    Vec<D::Row>: diesel::Insertable<M::Table>,
    for<'a> diesel::query_builder::DebugQuery<'a, super::InsertRows<M, D::Row>, diesel::sqlite::Sqlite>:
        core::fmt::Display,
    U: QueryFragment<diesel::sqlite::Sqlite> + Sync,
{
    fn lock_rows(
        conn: &mut C,
        batch: &mut Batch<M, K, D, Mk, U>,
        which: &[usize],
    ) -> impl Future<Output = QueryResult<Vec<(usize, M)>>> + Send {
        let lock = batch.write_lock();
        let read = batch.select_keys::<diesel::sqlite::Sqlite>(which, false);
        async move {
            lock.execute(&mut *conn).await?;
            positions(which, read.load::<(i32, M)>(conn).await?)
        }
    }

    fn upsert_rows(
        conn: &mut C,
        batch: &mut Batch<M, K, D, Mk, U>,
        which: &[usize],
    ) -> impl Future<Output = QueryResult<Option<Vec<(usize, M)>>>> + Send {
        let upsert = batch.sqlite_upsert(which);
        let values: Vec<_> = match &upsert {
            Ok(None) => which.iter().map(|&i| (i, batch.row_values(i))).collect(),
            _ => Vec::new(),
        };
        let changeset = &batch.changeset;
        async move {
            if let Some(upsert) = upsert? {
                return positions(which, upsert.load::<(i32, M)>(conn).await?).map(Some);
            }
            let mut rows = Vec::with_capacity(values.len());
            for (i, values) in &values {
                let upsert = super::each::upsert_row::<_, _, K::Columns, _, _>(
                    M::table(),
                    values,
                    changeset,
                    M::as_select(),
                );
                rows.push((*i, upsert.get_result::<M>(&mut *conn).await?));
            }
            Ok(Some(rows))
        }
    }
}

/// How backend `Self` sends a batch's plain multi-row `INSERT` of rows `R`
/// into `M`'s table over async connection `C`: as Diesel's
/// `insert_into(table).values(rows)` (PostgreSQL, MySQL), or as Diesel's
/// SQLite connection sends it ([`sqlite`]).
pub trait AsyncInsertRows<C, M, R>: Backend {
    /// Insert `rows`: all or none.
    #[doc(hidden)]
    fn insert_rows(conn: &mut C, rows: Vec<R>) -> impl Future<Output = QueryResult<usize>> + Send;
}

/// `AsyncInsertRows` for the backends whose async connections run Diesel's
/// multi-row insert as it is.
macro_rules! plain_insert_rows {
    ($($feature:literal: $backend:ty;)*) => {$(
        #[cfg(feature = $feature)]
        impl<C, M, R> AsyncInsertRows<C, M, R> for $backend
        where
            C: AsyncConnection<Backend = $backend>,
            M: Model,
            R: Send,
            Vec<R>: diesel::Insertable<M::Table>,
            super::InsertRows<M, R>: QueryFragment<$backend> + QueryId + Send,
        {
            fn insert_rows(
                conn: &mut C,
                rows: Vec<R>,
            ) -> impl Future<Output = QueryResult<usize>> + Send {
                async move { super::insert_rows::<M, R>(rows).execute(conn).await }
            }
        }
    )*};
}

plain_insert_rows! {
    "postgres": diesel::pg::Pg;
    "mysql": diesel::mysql::Mysql;
}

#[cfg(feature = "sqlite")]
mod sqlite {
    //! SQLite's multi-row insert through diesel-async's
    //! `SyncConnectionWrapper`.
    //!
    //! Diesel renders an SQLite multi-row `INSERT` only inside its own
    //! `SqliteConnection` (its batch insert node has no `QueryFragment<Sqlite>`,
    //! and one with a default value, an `Option` field's `None`, is sent as
    //! one `INSERT` per row in a transaction), so the wrapper, which renders
    //! any other statement, cannot run it. Two ways around were possible:
    //!
    //! * running the sync `get_or_create_all` on the inner connection with
    //!   the wrapper's `spawn_blocking`, which takes a `'static` closure: the
    //!   keys and defaults would have to be `'static`, unlike on every other
    //!   backend (keys borrowing a `&str`, `lazy` closures borrowing locals
    //!   would not compile);
    //! * sending Diesel's own statement: its text as Diesel renders it (its
    //!   `debug_query`, which also says whether Diesel inserts the rows one by
    //!   one), with the rows' bind values collected here, as the wrapper does
    //!   for every statement. This is what is done: the statements are the
    //!   sync API's, text and count, and the bounds are those of the other
    //!   backends. (`collect_binds` is public while diesel-async enables
    //!   Diesel's `i-implement-a-third-party-backend..` feature, which it
    //!   needs for its own connections.)

    use core::fmt;
    use core::future::Future;

    use diesel::backend::Backend;
    use diesel::query_builder::{
        debug_query, CollectedQuery, DebugQuery, InsertStatement, MoveableBindCollector,
        QueryFragment, QueryId,
    };
    use diesel::result::Error;
    use diesel::sqlite::Sqlite;
    use diesel::{Insertable, QueryResult};
    use diesel_async::{AsyncConnection, RunQueryDsl, TransactionManager};

    use super::super::sqlite_text::{text_before_binds, Binds};
    use super::super::{insert_rows, InsertRows};
    use super::AsyncInsertRows;
    use crate::model::Model;

    /// How Diesel sends an SQLite multi-row insert.
    enum Plan<R> {
        /// One statement: its text and its binds.
        One(CollectedQuery<Binds>),
        /// One `INSERT` per row, in a transaction.
        RowByRow(Vec<R>),
    }

    /// How Diesel would send `rows`, with the text it would send. (Its
    /// statement is built from a copy of the rows: it is rendered, not sent.)
    fn plan<M, R>(rows: Vec<R>) -> QueryResult<Plan<R>>
    where
        M: Model,
        R: Insertable<M::Table> + Clone,
        R::Values: QueryFragment<Sqlite>,
        Vec<R>: Insertable<M::Table>,
        for<'a> DebugQuery<'a, InsertRows<M, R>, Sqlite>: fmt::Display,
    {
        let statement = insert_rows::<M, R>(rows.clone());
        let text = text_before_binds(&debug_query::<Sqlite, _>(&statement)).ok_or_else(|| {
            Error::QueryBuilderError("Diesel could not render the batch's insert".into())
        })?;
        // Diesel's own debug output of a row-by-row insert.
        if text.starts_with("BEGIN;") {
            return Ok(Plan::RowByRow(rows));
        }
        // The binds of a multi-row insert are its rows' binds, in order.
        let values: Vec<R::Values> = rows.into_iter().map(Insertable::values).collect();
        let mut binds = <Sqlite as Backend>::BindCollector::default();
        for row in &values {
            row.collect_binds(&mut binds, &mut (), &Sqlite)?;
        }
        // Not cached, as Diesel's own multi-row insert.
        Ok(Plan::One(CollectedQuery::new(
            text,
            false,
            binds.moveable(),
        )))
    }

    impl<C, M, R> AsyncInsertRows<C, M, R> for Sqlite
    where
        C: AsyncConnection<Backend = Sqlite>,
        M: Model,
        R: Insertable<M::Table> + Clone + Send,
        R::Values: QueryFragment<Sqlite>,
        Vec<R>: Insertable<M::Table>,
        for<'a> DebugQuery<'a, InsertRows<M, R>, Sqlite>: fmt::Display,
        InsertStatement<M::Table, R::Values>: QueryFragment<Sqlite> + QueryId + Send,
    {
        fn insert_rows(
            conn: &mut C,
            rows: Vec<R>,
        ) -> impl Future<Output = QueryResult<usize>> + Send {
            let plan = plan::<M, R>(rows);
            async move {
                let rows = match plan? {
                    Plan::One(statement) => return conn.execute_returning_count(statement).await,
                    Plan::RowByRow(rows) => rows,
                };
                // What Diesel's `Connection::transaction` does.
                C::TransactionManager::begin_transaction(conn).await?;
                let inserted: QueryResult<usize> = async {
                    let mut total = 0;
                    for row in rows {
                        let insert = diesel::insert_into(M::table()).values(row);
                        total += insert.execute(&mut *conn).await?;
                    }
                    Ok(total)
                }
                .await;
                match inserted {
                    Ok(n) => C::TransactionManager::commit_transaction(conn)
                        .await
                        .map(|()| n),
                    Err(error) => match C::TransactionManager::rollback_transaction(conn).await {
                        Ok(()) | Err(Error::BrokenTransactionManager) => Err(error),
                        Err(rollback_error) => Err(rollback_error),
                    },
                }
            }
        }
    }
}

#[cfg(feature = "postgres")]
mod pg {
    use diesel::deserialize::FromSqlRow;
    use diesel::expression::{QueryMetadata, Selectable};
    use diesel::pg::Pg;
    use diesel::query_builder::{QueryFragment, QueryId};
    use diesel::sql_types::{Bool, Integer};
    use diesel::{Insertable, QueryResult};
    use diesel_async::{AsyncConnection, RunQueryDsl};

    use super::super::{
        positions, BatchIo, InsertRows, ReturningBatchIo, UpdateReturningBatchIo, UpsertBatchIo,
    };
    use super::AsyncBatchIo;
    use crate::call::SelectionOf;
    use crate::defaults::InsertRow;
    use crate::key::{Lookup, LookupFilter};
    use crate::model::Model;

    impl<C, M, K, D, Mk, U> ReturningBatchIo for AsyncBatchIo<'_, C, M, K, D, Mk, U>
    where
        C: AsyncConnection<Backend = Pg>,
        Self: BatchIo<Row = M>,
        M: Model + Selectable<Pg> + Send + 'static,
        M::SelectExpression: QueryId + Send,
        Pg: QueryMetadata<(Integer, SelectionOf<M, Pg>)>,
        (i32, M): FromSqlRow<(Integer, SelectionOf<M, Pg>), Pg>,
        SelectionOf<M, Pg>: QueryFragment<Pg>,
        K: Lookup + LookupFilter<Pg> + Ord + Clone + Sync,
        D: InsertRow<M::Table, K, Mk>,
        D::Row: Clone,
        Vec<D::Row>: Insertable<M::Table>,
        InsertRows<M, D::Row>: QueryFragment<Pg> + Send,
    {
        async fn insert_returning(&mut self, which: &[usize]) -> QueryResult<Vec<(usize, M)>> {
            let query = self.batch.insert_returning_keys(which);
            positions(which, query.load::<(i32, M)>(self.conn).await?)
        }
    }

    impl<C, M, K, D, Mk, U> UpsertBatchIo for AsyncBatchIo<'_, C, M, K, D, Mk, U>
    where
        C: AsyncConnection<Backend = Pg>,
        Self: ReturningBatchIo<Row = M> + UpdateReturningBatchIo<Row = M>,
        M: Model + Selectable<Pg> + Send + 'static,
        M::SelectExpression: QueryId + Send,
        Pg: QueryMetadata<(Integer, (SelectionOf<M, Pg>, Bool))>,
        (i32, (M, bool)): FromSqlRow<(Integer, (SelectionOf<M, Pg>, Bool)), Pg>,
        SelectionOf<M, Pg>: QueryFragment<Pg>,
        K: Lookup + LookupFilter<Pg> + Ord + Clone + Sync,
        D: InsertRow<M::Table, K, Mk>,
        D::Row: Clone,
        Vec<D::Row>: Insertable<M::Table>,
        InsertRows<M, D::Row>: QueryFragment<Pg> + Send,
        U: QueryFragment<Pg> + Sync,
    {
        async fn upsert(&mut self, which: &[usize]) -> QueryResult<Vec<(usize, (M, bool))>> {
            let query = self.batch.upsert_keys(which);
            positions(which, query.load::<(i32, (M, bool))>(self.conn).await?)
        }
    }
}

/// Whether backend `Self` can run the async `get_or_create_all` for model
/// `M` with lookups `K` and defaults `D` over async connection `C`; see
/// [`asynchronous::GetOrCreate::get_or_create_all`](crate::asynchronous::GetOrCreate::get_or_create_all).
///
/// It only appears in bounds: never implement it.
#[diagnostic::on_unimplemented(
    message = "`get_or_create_all` cannot run for `{M}` on backend `{Self}` with these arguments",
    label = "a requirement below is not met",
    note = "check that the features `async` and the backend's (`sqlite`, `postgres` or `mysql`) of \
            diesel-get-or-create are enabled, that the keys and the defaults use columns of the \
            model's table, that the model is `Clone + Send` and derives `Queryable` and \
            `Selectable`, that the key values are `Ord + Send + Sync` and the defaults \
            `Clone + Send`",
    note = "on MariaDB, connect with `AsyncMysqlConnection`: \
            diesel-async's `AsyncMariadbConnection` (backend `Mariadb`) is not supported yet"
)]
pub trait AsyncGetOrCreateAllBackend<C, M, K, D, Mk>:
    Backend + crate::query::sealed::Sealed
{
    /// Run `get_or_create_all` on `conn`.
    #[doc(hidden)]
    fn get_or_create_all(
        conn: &mut C,
        items: impl IntoIterator<Item = (K, D)>,
    ) -> impl Future<Output = QueryResult<Vec<(M, bool)>>> + Send;
}

impl<DB, C, M, K, D, Mk> AsyncGetOrCreateAllBackend<C, M, K, D, Mk> for DB
where
    DB: Backend + crate::query::sealed::Sealed,
    C: AsyncConnection<Backend = DB>,
    M: Model + Clone,
    K: Ord + Clone + Send,
    D: InsertRow<M::Table, K, Mk> + Send,
    D::Row: Clone + Send,
    for<'c> AsyncBatchIo<'c, C, M, K, D, Mk>: BatchIo<Row = M>,
    for<'c> DB: BatchAlgorithms<AsyncBatchIo<'c, C, M, K, D, Mk>>,
{
    fn get_or_create_all(
        conn: &mut C,
        items: impl IntoIterator<Item = (K, D)>,
    ) -> impl Future<Output = QueryResult<Vec<(M, bool)>>> + Send {
        // The items are sorted before the future: they need not be `Send`.
        let batch = Batch::new(items);
        async move {
            let mut io = AsyncBatchIo { conn, batch };
            let found = DB::get_or_create_all(&mut io).await?;
            Ok(io.batch.finish(found))
        }
    }
}

/// Whether backend `Self` can run the async `update_or_create_all_with` for
/// model `M` with lookups `K`, changeset `U` and create values `D` over
/// async connection `C`; see
/// [`asynchronous::GetOrCreate::update_or_create_all_with`](crate::asynchronous::GetOrCreate::update_or_create_all_with).
///
/// It only appears in bounds: never implement it.
#[diagnostic::on_unimplemented(
    message = "`update_or_create_all_with` cannot run for `{M}` on backend `{Self}` with these arguments",
    label = "a requirement below is not met",
    note = "check that the features `async` and the backend's (`sqlite`, `postgres` or `mysql`) of \
            diesel-get-or-create are enabled, that the keys, the update and the create values use \
            columns of the model's table, that the update is `AsChangeset`, that the model is \
            `Clone + Send` and derives `Queryable` and `Selectable`, that the key values and the \
            update's values are `Send + Sync`, the key values `Ord` and the create values \
            `Clone + Send`",
    note = "on MariaDB, connect with `AsyncMysqlConnection`: \
            diesel-async's `AsyncMariadbConnection` (backend `Mariadb`) is not supported yet"
)]
pub trait AsyncUpdateOrCreateAllBackend<C, M, K, U, D, Mk>:
    Backend + crate::query::sealed::Sealed
{
    /// Run `update_or_create_all_with` on `conn`.
    #[doc(hidden)]
    fn update_or_create_all_with(
        conn: &mut C,
        items: impl IntoIterator<Item = (K, D)>,
        update: U,
    ) -> impl Future<Output = QueryResult<Vec<(M, bool)>>> + Send;
}

impl<DB, C, M, K, U, D, Mk> AsyncUpdateOrCreateAllBackend<C, M, K, U, D, Mk> for DB
where
    DB: Backend + crate::query::sealed::Sealed,
    C: AsyncConnection<Backend = DB>,
    M: Model + Clone,
    K: Ord + Clone + Send,
    U: AsChangeset<Target = M::Table>,
    U::Changeset: Send,
    D: InsertRow<M::Table, K, Mk> + Send,
    D::Row: Clone + Send,
    for<'c> AsyncBatchIo<'c, C, M, K, D, Mk, U::Changeset>: UpdateBatchIo<Row = M>,
    for<'c> DB: BatchUpdateAlgorithms<AsyncBatchIo<'c, C, M, K, D, Mk, U::Changeset>>,
{
    fn update_or_create_all_with(
        conn: &mut C,
        items: impl IntoIterator<Item = (K, D)>,
        update: U,
    ) -> impl Future<Output = QueryResult<Vec<(M, bool)>>> + Send {
        // The items are sorted and the changeset built before the future:
        // neither `items` nor `update` is held across an await, so they need
        // not be `Send` (the changeset must be).
        let batch = Batch::updating(items, update.as_changeset());
        async move {
            let mut io = AsyncBatchIo { conn, batch };
            let found = update_or_create_all_with::<DB, _>(&mut io).await?;
            Ok(io.batch.finish(found))
        }
    }
}

/// Whether backend `Self` can run the async `update_or_create_all` for
/// model `M` with lookups `K` and values `V` over async connection `C`; see
/// [`asynchronous::GetOrCreate::update_or_create_all`](crate::asynchronous::GetOrCreate::update_or_create_all).
///
/// It only appears in bounds: never implement it.
#[diagnostic::on_unimplemented(
    message = "`update_or_create_all` cannot run for `{M}` on backend `{Self}` with these arguments",
    label = "a requirement below is not met",
    note = "check that the features `async` and the backend's (`sqlite`, `postgres` or `mysql`) of \
            diesel-get-or-create are enabled, that the keys and the values use columns of the \
            model's table, that the values are `Insertable + Clone + Send`, that the model is \
            `Clone + Send` and derives `Queryable` and `Selectable`, and that the key values are \
            `Ord + Send + Sync`",
    note = "on MariaDB, connect with `AsyncMysqlConnection`: \
            diesel-async's `AsyncMariadbConnection` (backend `Mariadb`) is not supported yet"
)]
pub trait AsyncUpdateOrCreateEachBackend<C, M, K, V, Mk>:
    Backend + crate::query::sealed::Sealed
{
    /// Run `update_or_create_all` on `conn`.
    #[doc(hidden)]
    fn update_or_create_all(
        conn: &mut C,
        items: impl IntoIterator<Item = (K, V)>,
    ) -> impl Future<Output = QueryResult<Vec<(M, bool)>>> + Send;
}

impl<DB, C, M, K, V, Mk> AsyncUpdateOrCreateEachBackend<C, M, K, V, Mk> for DB
where
    DB: Backend + Default + crate::query::sealed::Sealed,
    DB::QueryBuilder: Default,
    C: AsyncConnection<Backend = DB>,
    M: Model + Clone + Send,
    K: Lookup + Ord + Clone + Send,
    V: InsertRow<M::Table, K, Mk> + Clone + Send,
    V::Row: Clone + Send + diesel::Insertable<M::Table>,
    <V::Row as diesel::Insertable<M::Table>>::Values: QueryFragment<DB>,
    for<'c> AsyncBatchIo<'c, C, M, K, V, Mk, SetToValues<M::Table>>: UpdateBatchIo<Row = M>,
    for<'c> DB: BatchUpdateAlgorithms<AsyncBatchIo<'c, C, M, K, V, Mk, SetToValues<M::Table>>>,
{
    fn update_or_create_all(
        conn: &mut C,
        items: impl IntoIterator<Item = (K, V)>,
    ) -> impl Future<Output = QueryResult<Vec<(M, bool)>>> + Send {
        // Grouped before the future: `items` need not be `Send`.
        let each = Each::new(items, columns_of::<DB, M, K, V, Mk>);
        async move {
            let mut each = each?;
            let mut results = Vec::with_capacity(each.groups.len());
            for (columns, group) in core::mem::take(&mut each.groups) {
                let batch = Batch::updating(group, SetToValues::new(columns));
                let mut io = AsyncBatchIo {
                    conn: &mut *conn,
                    batch,
                };
                let found = update_or_create_each::<DB, _>(&mut io).await?;
                results.push(io.batch.finish(found));
            }
            Ok(each.finish(&results))
        }
    }
}
