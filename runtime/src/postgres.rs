//! PostgreSQL: `ON CONFLICT (key)` does the work, in one statement where it can.
//!
//! * `get_or_create`: a hit is one `SELECT`. A miss is one
//!   `INSERT .. ON CONFLICT (key) DO NOTHING RETURNING ..`: a returned row was
//!   created by this call; no row means a concurrent transaction committed the
//!   key first, and one more `SELECT` returns it (at READ COMMITTED every
//!   statement sees the latest committed rows). The insert is not the first
//!   statement because it consumes a sequence value even when it conflicts.
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
use diesel::{Connection, QueryResult, RunQueryDsl, SelectableHelper};

use crate::algorithm::{
    self, begin_if, end_if, is_duplicate, Algorithms, Duplicates, Errors, ReturningIo, Runs,
};
use crate::call::{Call, SelectionOf};
use crate::defaults::InsertValues;
use crate::driver::sync::{SyncIo, SyncStatements};
use crate::key::{ColumnTuple, Lookup};
use crate::model::Model;
use crate::query::{
    push_column_list, sealed::Sealed, From, Insert, Returning, SupportsOnConflict,
    SupportsReturning,
};

impl Sealed for Pg {}
impl SupportsReturning for Pg {}
impl SupportsOnConflict for Pg {}

/// PostgreSQL's upsert: the step its `update_or_create` runs.
pub trait UpsertIo: ReturningIo {
    /// `INSERT .. ON CONFLICT (<key>) DO UPDATE SET <changeset>
    /// RETURNING <row>, (xmax = 0)`: the row, and whether it was inserted.
    fn upsert(&mut self) -> impl Future<Output = QueryResult<(Self::Row, bool)>> + Send;
}

impl<E: UpsertIo> Algorithms<E> for Pg {
    async fn get_or_create(io: &mut E) -> QueryResult<(E::Row, bool)> {
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
pub(crate) fn create_values_may_have_failed(error: &Error) -> bool {
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
pub(crate) const ERRORS: Errors = Errors {
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

/// The upsert of call `Self` on PostgreSQL connection `C`, synchronously.
pub trait SyncUpsert<C: Connection<Backend = Pg>>: SyncStatements<C> {
    /// `INSERT .. ON CONFLICT (<key>) DO UPDATE SET <changeset> RETURNING <row>, (xmax = 0)`
    fn upsert(&mut self, conn: &mut C) -> QueryResult<(Self::Row, bool)>;
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
    K: Lookup + Clone,
    D: InsertValues<M::Table, K, Mk>,
    D::Values: QueryFragment<Pg> + QueryId,
    U: QueryFragment<Pg>,
    RowAndCreated<M>:
        Expression<SqlType = (SelectionOf<M, Pg>, Bool)> + QueryFragment<Pg> + QueryId,
    Pg: QueryMetadata<(SelectionOf<M, Pg>, Bool)>,
    (M, bool): FromSqlRow<(SelectionOf<M, Pg>, Bool), Pg>,
{
    fn upsert(&mut self, conn: &mut C) -> QueryResult<(M, bool)> {
        Call::upsert(self, Returning((M::as_select(), XmaxIsZero))).get_result(conn)
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
    use diesel::{QueryResult, SelectableHelper};
    use diesel_async::{AsyncConnection, RunQueryDsl};

    use super::{RowAndCreated, UpsertIo, XmaxIsZero};
    use crate::call::{Call, SelectionOf};
    use crate::defaults::InsertValues;
    use crate::driver::asynchronous::{AsyncIo, AsyncStatements};
    use crate::key::Lookup;
    use crate::model::Model;
    use crate::query::Returning;

    /// The upsert of call `Self` on async PostgreSQL connection `C`.
    pub trait AsyncUpsert<C: AsyncConnection<Backend = Pg>>: AsyncStatements<C> {
        /// `INSERT .. ON CONFLICT (<key>) DO UPDATE SET <changeset> RETURNING <row>, (xmax = 0)`
        fn upsert(
            &mut self,
            conn: &mut C,
        ) -> impl Future<Output = QueryResult<(Self::Row, bool)>> + Send;
    }

    impl<C, M, K, D, Mk, U> AsyncUpsert<C> for Call<M, K, D, Mk, U>
    where
        C: AsyncConnection<Backend = Pg>,
        Self: AsyncStatements<C, Row = M>,
        M: Model + Selectable<Pg> + Send + 'static,
        M::Table: QueryId + Send,
        <M::Table as QuerySource>::FromClause: QueryFragment<Pg> + Send,
        M::SelectExpression: Send,
        K: Lookup + Clone + Send + Sync,
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
    }
}

#[cfg(test)]
mod tests;
