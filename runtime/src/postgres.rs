//! PostgreSQL: `ON CONFLICT (key)` does the work, in one statement where it can.
//!
//! * `get_or_create`, standalone: one statement for a hit and for a miss,
//!
//!   ```sql
//!   WITH found AS (SELECT <row> FROM <table> WHERE <key> LIMIT 1),
//!   inserted AS (INSERT INTO <table> (<columns>) VALUES (<key and values>)
//!       LIMIT (SELECT 1 - count(*) FROM found)
//!       ON CONFLICT (<key>) DO NOTHING RETURNING <row>)
//!   SELECT found.*, false FROM found UNION ALL SELECT inserted.*, true FROM inserted
//!   ```
//!
//!   `LIMIT 0` when the row was found: nothing is inserted, no create value
//!   is evaluated and no sequence value is consumed. A row from `inserted` was
//!   created by this call. No row at all means a concurrent transaction
//!   committed the key after the statement's snapshot was taken, and one more
//!   `SELECT` returns it (at READ COMMITTED every statement sees the latest
//!   committed rows). Create values that render `DEFAULT` (an `Option` field
//!   that is `None`) cannot be inserted from a `VALUES` list with a `LIMIT`:
//!   such a call takes the path below.
//! * `get_or_create` inside the caller's transaction (or with `DEFAULT` in
//!   its values): a hit is one `SELECT`; a miss then runs
//!   `INSERT .. ON CONFLICT (key) DO NOTHING RETURNING ..` in a savepoint
//!   (see Errors), with the same meaning of "no row". The insert alone is not
//!   the first statement because it consumes a sequence value even when it
//!   conflicts.
//! * `update_or_create_with`: one
//!   `INSERT .. ON CONFLICT (key) DO UPDATE SET .. RETURNING .., (xmax = 0)`.
//!   The row is locked from the moment the statement finds or inserts it until
//!   the transaction ends, the update is evaluated against the latest version
//!   of the row, and `xmax = 0` (no transaction has locked or updated the
//!   returned version) says the row was inserted rather than updated.
//!
//! Errors. A conflict on a unique index other than the key's fails the
//! statement with `UniqueViolation`. PostgreSQL resolves `ON CONFLICT` only on
//! the key's index, so two callers inserting the same key *and* the same
//! value of another unique column can see that column's violation instead of
//! the conflict; the statement then runs once more, and now conflicts on the
//! key (a second violation is returned: it is a real conflict). At
//! REPEATABLE READ and SERIALIZABLE a conflict with a row the transaction's
//! snapshot cannot see fails with a serialization failure (it cannot be
//! resolved without a new snapshot). Inside the caller's transaction every
//! insert runs in a savepoint, because an error would otherwise abort the
//! caller's whole transaction; the error is
//! returned and the transaction stays usable (for a serialization failure the
//! caller should still retry the transaction). A standalone call is its own
//! transaction and runs again after a serialization failure or a deadlock.

use core::future::Future;
use core::marker::PhantomData;

use diesel::connection::LoadConnection;
use diesel::deserialize::FromSqlRow;
use diesel::expression::{Expression, QueryMetadata, Selectable, ValidGrouping};
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::query_source::QuerySource;
use diesel::result::{DatabaseErrorKind, Error};
use diesel::sql_types::Bool;
use diesel::{Connection, OptionalExtension, QueryResult, RunQueryDsl, SelectableHelper};

use crate::algorithm::{
    self, begin_if, end_if, is_duplicate, Algorithms, Duplicates, Errors, ReturningIo, Runs,
    MAX_ATTEMPTS,
};
use crate::call::{Call, SelectionOf};
use crate::defaults::InsertValues;
use crate::driver::sync::{SyncIo, SyncStatements};
use crate::key::{ColumnTuple, Lookup, LookupFilter};
use crate::model::Model;
use crate::query::{
    push_column_list, sealed::Sealed, From, Insert, OnConflictDoNothing, Returning, SelectByKey,
    SupportsOnConflict, SupportsReturning,
};

impl Sealed for Pg {}
impl SupportsReturning for Pg {}
impl SupportsOnConflict for Pg {}

/// PostgreSQL's own steps: the upsert of `update_or_create`, and the one
/// statement of a standalone `get_or_create`.
pub trait UpsertIo: ReturningIo {
    /// `INSERT .. ON CONFLICT (<key>) DO UPDATE SET <changeset>
    /// RETURNING <row>, (xmax = 0)`: the row, and whether it was inserted.
    fn upsert(&mut self) -> impl Future<Output = QueryResult<(Self::Row, bool)>> + Send;

    /// Whether [`select_or_insert`](Self::select_or_insert) can insert the
    /// call's key and values: not when a value renders `DEFAULT`.
    fn can_select_or_insert(&mut self) -> QueryResult<bool>;

    /// `WITH found AS (SELECT ..), inserted AS (INSERT .. LIMIT (SELECT 1 -
    /// count(*) FROM found) ON CONFLICT (<key>) DO NOTHING RETURNING ..)
    /// SELECT found.*, false .. UNION ALL SELECT inserted.*, true ..`: the
    /// row and whether this statement inserted it, or no row when a
    /// concurrent transaction committed the key after the snapshot.
    fn select_or_insert(
        &mut self,
    ) -> impl Future<Output = QueryResult<Option<(Self::Row, bool)>>> + Send;
}

impl<E: UpsertIo> Algorithms<E> for Pg {
    async fn get_or_create(io: &mut E) -> QueryResult<(E::Row, bool)> {
        if !io.in_transaction()? && io.can_select_or_insert()? {
            let mut runs = Runs::start(io, ERRORS)?;
            loop {
                let result = select_or_insert(io).await;
                if let Some(result) = runs.settle(io, result).await {
                    return result;
                }
            }
        }
        algorithm::get_or_create(io, ERRORS, async |io, standalone, duplicates| {
            // Inside the caller's transaction, in a savepoint: an error would
            // otherwise abort the caller's whole transaction.
            begin_if(io, !standalone).await?;
            let inserted = io.insert_returning().await;
            match end_if(io, !standalone, inserted).await {
                Ok(Some(row)) => return Ok(Some((row, true))),
                // A concurrent transaction committed the key first.
                Ok(None) => {}
                Err(error) if is_duplicate(&error) => {
                    // Maybe a concurrent insert of the key, failing on another
                    // unique index: the next attempt sees the key's row.
                    duplicates.not_on_key(error)?;
                    return Ok(None);
                }
                Err(error) => return Err(error),
            }
            // `None`: the conflicting row was deleted before we could read it.
            Ok(io.select().await?.map(|row| (row, false)))
        })
        .await
    }

    async fn update_or_create(io: &mut E) -> QueryResult<(E::Row, bool)> {
        let mut runs = Runs::start(io, ERRORS)?;
        loop {
            let result = upsert(io, runs.standalone).await;
            if let Some(result) = runs.settle(io, result).await {
                return result;
            }
        }
    }
}

/// One run of a standalone `get_or_create` in one statement.
async fn select_or_insert<E: UpsertIo>(io: &mut E) -> QueryResult<(E::Row, bool)> {
    let mut duplicates = Duplicates::default();
    for _ in 0..MAX_ATTEMPTS {
        match io.select_or_insert().await {
            Ok(Some(found)) => return Ok(found),
            // A concurrent transaction committed the key after this
            // statement's snapshot; `None`: that row was deleted since.
            Ok(None) => {
                if let Some(row) = io.select().await? {
                    return Ok((row, false));
                }
            }
            // Maybe a concurrent insert of the key, failing on another
            // unique index: the next attempt sees the key's row.
            Err(error) if is_duplicate(&error) => duplicates.not_on_key(error)?,
            // PostgreSQL folds constant create values when it plans the
            // statement, so one that fails (`1 / 0`) fails a hit too: a
            // hit must not fail on values it never writes.
            Err(error) if create_values_may_have_failed(&error) => {
                return match io.select().await? {
                    Some(row) => Ok((row, false)),
                    None => Err(error),
                };
            }
            Err(error) => return Err(error),
        }
    }
    Err(algorithm::vanished())
}

/// One run of `update_or_create`.
async fn upsert<E: UpsertIo>(io: &mut E, standalone: bool) -> QueryResult<(E::Row, bool)> {
    let mut duplicates = Duplicates::default();
    let upserted = loop {
        begin_if(io, !standalone).await?;
        let upserted = io.upsert().await;
        match end_if(io, !standalone, upserted).await {
            // Maybe a concurrent insert of the key, failing on another
            // unique index: the next attempt updates the key's row.
            Err(error) if is_duplicate(&error) => duplicates.not_on_key(error)?,
            upserted => break upserted,
        }
    };
    match upserted {
        // PostgreSQL evaluates the row to insert, and checks its NOT NULL and
        // CHECK constraints, before it looks for a conflict: create values
        // that cannot form a row (a NULL, a failed CHECK, a value too long,
        // a bad cast, a division by zero) fail the upsert even when the row
        // exists. Then the call is an update, or the insert's error.
        Err(ref error) if create_values_may_have_failed(error) => {
            begin_if(io, !standalone).await?;
            let updated = io.update_returning().await;
            match end_if(io, !standalone, updated).await? {
                Some(row) => Ok((row, false)),
                None => upserted,
            }
        }
        result => result,
    }
}

/// Whether an upsert's error may come from its create values alone: a
/// NOT NULL or CHECK violation, or an error Diesel does not classify (data
/// exceptions such as 22001 value too long, 22P02 invalid input, 22012
/// division by zero arrive as `Unknown`), except a deadlock, which is
/// retried instead.
fn create_values_may_have_failed(error: &Error) -> bool {
    match error {
        Error::DatabaseError(
            DatabaseErrorKind::NotNullViolation | DatabaseErrorKind::CheckViolation,
            _,
        ) => true,
        Error::DatabaseError(DatabaseErrorKind::Unknown, _) => !is_retryable(error),
        _ => false,
    }
}

/// PostgreSQL's errors: both drivers report them alike.
const ERRORS: Errors = Errors {
    normalize: core::convert::identity,
    retryable: is_retryable,
};

/// A serialization failure (40001) or a deadlock (40P01, which Diesel reports
/// as `Unknown` with the server's message): PostgreSQL has aborted the work,
/// and running it again from the start is safe.
pub(crate) fn is_retryable(error: &Error) -> bool {
    match error {
        Error::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => true,
        Error::DatabaseError(DatabaseErrorKind::Unknown, info) => {
            info.message().starts_with("deadlock detected")
        }
        _ => false,
    }
}

/// `(xmax = 0)`: true when no transaction has updated or locked the returned
/// version of the row, that is, when `INSERT .. ON CONFLICT DO UPDATE`
/// inserted it.
#[derive(Debug, Clone, Copy, QueryId, ValidGrouping)]
pub(crate) struct XmaxIsZero;

impl Expression for XmaxIsZero {
    type SqlType = Bool;
}

impl QueryFragment<Pg> for XmaxIsZero {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("(xmax = 0)");
        Ok(())
    }
}

type RowAndCreated<M> = (SelectionOf<M, Pg>, XmaxIsZero);

/// ` ON CONFLICT (<columns>) DO UPDATE SET <changeset>`, for the key's
/// column tuple `Cols` (PostgreSQL)
///
/// As with [`OnConflictDoNothing`], a conflict on any other unique index
/// still fails the statement. The changeset must not be empty (PostgreSQL
/// would reject `SET` with nothing after it); callers check `is_noop` first.
#[derive(Debug)]
pub(crate) struct OnConflictDoUpdate<'a, Cols, U>(pub(crate) &'a U, PhantomData<fn() -> Cols>);

impl<'a, Cols, U> OnConflictDoUpdate<'a, Cols, U> {
    pub(crate) fn new(changeset: &'a U) -> Self {
        OnConflictDoUpdate(changeset, PhantomData)
    }
}

impl<Cols: ColumnTuple, U: QueryFragment<DB>, DB: SupportsOnConflict> QueryFragment<DB>
    for OnConflictDoUpdate<'_, Cols, U>
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql(" ON CONFLICT (");
        push_column_list::<Cols, DB>(&mut out)?;
        out.push_sql(") DO UPDATE SET ");
        self.0.walk_ast(out.reborrow())
    }
}

/// Changesets have no query id, so neither has the clause that holds one.
impl<Cols, U> QueryId for OnConflictDoUpdate<'_, Cols, U> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

/// ` LIMIT (SELECT 1 - count(*) FROM found)` before the insert's
/// conflict clause `C`: the `VALUES` row is inserted only when the `found`
/// query of [`SelectOrInsert`] returned no row.
#[derive(Debug)]
pub(crate) struct UnlessFound<C>(C);

impl<C: QueryFragment<Pg>> QueryFragment<Pg> for UnlessFound<C> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(" LIMIT (SELECT 1 - count(*) FROM found)");
        self.0.walk_ast(out)
    }
}

/// The one statement of a standalone `get_or_create` (see the module's
/// documentation): the row and whether it was inserted.
#[derive(Debug)]
pub(crate) struct SelectOrInsert<'a, T: QuerySource, K, V, Cols, S> {
    select: SelectByKey<'a, T, K, S, ()>,
    insert: Insert<'a, T, V, UnlessFound<OnConflictDoNothing<Cols>>, Returning<S>>,
}

impl<T, K, V, Cols, S> QueryFragment<Pg> for SelectOrInsert<'_, T, K, V, Cols, S>
where
    T: QuerySource,
    T::FromClause: QueryFragment<Pg>,
    K: LookupFilter<Pg>,
    V: QueryFragment<Pg>,
    Cols: ColumnTuple,
    S: QueryFragment<Pg>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("WITH found AS (");
        self.select.walk_ast(out.reborrow())?;
        out.push_sql("), inserted AS (");
        self.insert.walk_ast(out.reborrow())?;
        out.push_sql(
            ") SELECT found.*, false FROM found UNION ALL SELECT inserted.*, true FROM inserted",
        );
        Ok(())
    }
}

/// Insert values have no query id, so neither has the statement.
impl<T: QuerySource, K, V, Cols, S> QueryId for SelectOrInsert<'_, T, K, V, Cols, S> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<T: QuerySource, K, V, Cols, S: Expression> diesel::query_builder::Query
    for SelectOrInsert<'_, T, K, V, Cols, S>
{
    type SqlType = (S::SqlType, Bool);
}

impl<T: QuerySource, K, V, Cols, S, Conn> RunQueryDsl<Conn>
    for SelectOrInsert<'_, T, K, V, Cols, S>
{
}

/// Whether `values` (`(<columns>) VALUES (<values>)`) can be the source of
/// [`SelectOrInsert`]'s insert: not when a value renders `DEFAULT`, which
/// PostgreSQL refuses in a `VALUES` list with a `LIMIT`. (A `DEFAULT` inside
/// SQL of the caller's own is taken for one, which only costs the faster
/// path.)
fn values_can_be_limited<V: QueryFragment<Pg>>(values: &V) -> QueryResult<bool> {
    use diesel::query_builder::QueryBuilder;
    let mut sql = diesel::pg::PgQueryBuilder::default();
    values.to_sql(&mut sql, &Pg)?;
    let sql = sql.finish();
    Ok(sql
        .split_once(") VALUES (")
        .is_some_and(|(_, values)| !values.contains("DEFAULT")))
}

impl<M, K, D, Mk, U> Call<M, K, D, Mk, U>
where
    M: Model + Selectable<Pg>,
    K: Lookup + Clone,
    D: InsertValues<M::Table, K, Mk>,
{
    /// See [`SelectOrInsert`].
    fn select_or_insert(
        &mut self,
    ) -> SelectOrInsert<'_, M::Table, K, D::Values, K::Columns, SelectionOf<M, Pg>> {
        self.values();
        let call = &*self;
        SelectOrInsert {
            select: call.select(()),
            insert: Insert {
                from: From::of(M::table()),
                values: call.values.as_ref().expect("values() built them"),
                conflict: UnlessFound(call.on_conflict_do_nothing()),
                returning: Returning(M::as_select()),
            },
        }
    }

    /// See [`values_can_be_limited`].
    fn can_select_or_insert(&mut self) -> QueryResult<bool>
    where
        D::Values: QueryFragment<Pg>,
    {
        values_can_be_limited(self.values())
    }
}

/// PostgreSQL's own statements of call `Self` on connection `C`,
/// synchronously.
pub trait SyncUpsert<C: Connection<Backend = Pg>>: SyncStatements<C> {
    /// `INSERT .. ON CONFLICT (<key>) DO UPDATE SET <changeset> RETURNING <row>, (xmax = 0)`
    fn upsert(&mut self, conn: &mut C) -> QueryResult<(Self::Row, bool)>;

    /// See [`UpsertIo::can_select_or_insert`].
    fn can_select_or_insert(&mut self) -> QueryResult<bool>;

    /// See [`SelectOrInsert`].
    fn select_or_insert(&mut self, conn: &mut C) -> QueryResult<Option<(Self::Row, bool)>>;
}

impl<M, K, D, Mk, U> Call<M, K, D, Mk, U>
where
    M: Model,
    K: Lookup + Clone,
    D: InsertValues<M::Table, K, Mk>,
{
    /// `INSERT INTO <table> <key and values> ON CONFLICT (<key>) DO UPDATE
    /// SET <changeset> <returning>`
    fn upsert<R>(
        &mut self,
        returning: R,
    ) -> Insert<'_, M::Table, D::Values, OnConflictDoUpdate<'_, K::Columns, U>, R> {
        self.values();
        let call = &*self;
        Insert {
            from: From::of(M::table()),
            values: call.values.as_ref().expect("values() built them"),
            conflict: OnConflictDoUpdate::new(&call.changeset),
            returning,
        }
    }
}

impl<C, M, K, D, Mk, U> SyncUpsert<C> for Call<M, K, D, Mk, U>
where
    C: Connection<Backend = Pg> + LoadConnection,
    Self: SyncStatements<C, Row = M>,
    M: Model + Selectable<Pg> + 'static,
    M::Table: QueryId,
    <M::Table as QuerySource>::FromClause: QueryFragment<Pg>,
    K: LookupFilter<Pg> + Clone,
    D: InsertValues<M::Table, K, Mk>,
    D::Values: QueryFragment<Pg> + QueryId,
    U: QueryFragment<Pg>,
    M::SelectExpression: QueryFragment<Pg> + QueryId,
    RowAndCreated<M>:
        Expression<SqlType = (SelectionOf<M, Pg>, Bool)> + QueryFragment<Pg> + QueryId,
    Pg: QueryMetadata<(SelectionOf<M, Pg>, Bool)>,
    (M, bool): FromSqlRow<(SelectionOf<M, Pg>, Bool), Pg>,
{
    fn upsert(&mut self, conn: &mut C) -> QueryResult<(M, bool)> {
        Call::upsert(self, Returning((M::as_select(), XmaxIsZero))).get_result(conn)
    }

    fn can_select_or_insert(&mut self) -> QueryResult<bool> {
        Call::can_select_or_insert(self)
    }

    fn select_or_insert(&mut self, conn: &mut C) -> QueryResult<Option<(M, bool)>> {
        Call::select_or_insert(self).get_result(conn).optional()
    }
}

impl<C, P> UpsertIo for SyncIo<'_, C, P>
where
    C: Connection<Backend = Pg>,
    P: SyncUpsert<C> + Send,
    P::Row: Send,
{
    async fn upsert(&mut self) -> QueryResult<(P::Row, bool)> {
        self.call.upsert(self.conn)
    }

    fn can_select_or_insert(&mut self) -> QueryResult<bool> {
        self.call.can_select_or_insert()
    }

    async fn select_or_insert(&mut self) -> QueryResult<Option<(P::Row, bool)>> {
        self.call.select_or_insert(self.conn)
    }
}

#[cfg(feature = "async")]
mod asynchronous {
    //! The PostgreSQL upsert on diesel-async connections.

    use core::future::Future;

    use diesel::deserialize::FromSqlRow;
    use diesel::expression::{Expression, QueryMetadata, Selectable};
    use diesel::pg::Pg;
    use diesel::query_builder::{QueryFragment, QueryId};
    use diesel::query_source::QuerySource;
    use diesel::sql_types::Bool;
    use diesel::{OptionalExtension, QueryResult, SelectableHelper};
    use diesel_async::{AsyncConnection, RunQueryDsl};

    use super::{RowAndCreated, UpsertIo, XmaxIsZero};
    use crate::call::{Call, SelectionOf};
    use crate::defaults::InsertValues;
    use crate::driver::asynchronous::{AsyncIo, AsyncStatements};
    use crate::key::LookupFilter;
    use crate::model::Model;
    use crate::query::Returning;

    /// PostgreSQL's own statements of call `Self` on async connection `C`.
    pub trait AsyncUpsert<C: AsyncConnection<Backend = Pg>>: AsyncStatements<C> {
        /// `INSERT .. ON CONFLICT (<key>) DO UPDATE SET <changeset> RETURNING <row>, (xmax = 0)`
        fn upsert(
            &mut self,
            conn: &mut C,
        ) -> impl Future<Output = QueryResult<(Self::Row, bool)>> + Send;

        /// See [`UpsertIo::can_select_or_insert`].
        fn can_select_or_insert(&mut self) -> QueryResult<bool>;

        /// See [`super::SelectOrInsert`].
        fn select_or_insert(
            &mut self,
            conn: &mut C,
        ) -> impl Future<Output = QueryResult<Option<(Self::Row, bool)>>> + Send;
    }

    impl<C, M, K, D, Mk, U> AsyncUpsert<C> for Call<M, K, D, Mk, U>
    where
        C: AsyncConnection<Backend = Pg>,
        Self: AsyncStatements<C, Row = M>,
        M: Model + Selectable<Pg> + Send + 'static,
        M::Table: QueryId + Send,
        <M::Table as QuerySource>::FromClause: QueryFragment<Pg> + Send,
        M::SelectExpression: QueryFragment<Pg> + QueryId + Send,
        K: LookupFilter<Pg> + Clone + Send + Sync,
        D: InsertValues<M::Table, K, Mk> + Send + Sync,
        D::Values: QueryFragment<Pg> + QueryId + Send + Sync,
        U: QueryFragment<Pg> + Send + Sync,
        Mk: Send,
        RowAndCreated<M>:
            Expression<SqlType = (SelectionOf<M, Pg>, Bool)> + QueryFragment<Pg> + QueryId,
        Pg: QueryMetadata<(SelectionOf<M, Pg>, Bool)>,
        (M, bool): FromSqlRow<(SelectionOf<M, Pg>, Bool), Pg>,
    {
        async fn upsert(&mut self, conn: &mut C) -> QueryResult<(M, bool)> {
            Call::upsert(self, Returning((M::as_select(), XmaxIsZero)))
                .get_result(conn)
                .await
        }

        fn can_select_or_insert(&mut self) -> QueryResult<bool> {
            Call::can_select_or_insert(self)
        }

        async fn select_or_insert(&mut self, conn: &mut C) -> QueryResult<Option<(M, bool)>> {
            Call::select_or_insert(self)
                .get_result(conn)
                .await
                .optional()
        }
    }

    impl<C, P> UpsertIo for AsyncIo<'_, C, P>
    where
        C: AsyncConnection<Backend = Pg>,
        P: AsyncUpsert<C> + Send,
        P::Row: Send,
    {
        async fn upsert(&mut self) -> QueryResult<(P::Row, bool)> {
            self.call.upsert(self.conn).await
        }

        fn can_select_or_insert(&mut self) -> QueryResult<bool> {
            self.call.can_select_or_insert()
        }

        async fn select_or_insert(&mut self) -> QueryResult<Option<(P::Row, bool)>> {
            self.call.select_or_insert(self.conn).await
        }
    }
}

#[cfg(test)]
mod tests;
