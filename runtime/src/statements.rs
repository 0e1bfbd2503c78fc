//! Running the query nodes for a model, written once for every backend.

use diesel::backend::Backend;
use diesel::connection::LoadConnection;
use diesel::deserialize::FromSqlRow;
use diesel::expression::{Expression, QueryMetadata, Selectable, TypedExpressionType};
use diesel::query_builder::{QueryFragment, QueryId};
use diesel::query_source::QuerySource;
use diesel::sql_types::SqlType;
use diesel::{Connection, OptionalExtension, QueryResult, RunQueryDsl, SelectableHelper};

use crate::key::{LookupFilter, LookupQueryId};
use crate::model::GetOrCreate;
use crate::query::{From, Insert, Returning, SelectByKey, UpdateByKey};

/// The statements the algorithms run for model `Self` over connection `C`,
/// each returning the model's row if the statement produced one.
///
/// Implemented for every model that derives `GetOrCreate`, `Queryable` and
/// `Selectable` (for the connection's backend); the backend strategies
/// require only this, so Diesel's many row-loading bounds are stated once.
pub trait Statements<C: Connection>: GetOrCreate {
    /// `SELECT <model> FROM <table> WHERE <key> LIMIT 1 <lock>`
    fn select_by_key<K, L>(conn: &mut C, key: &K, lock: L) -> QueryResult<Option<Self>>
    where
        K: LookupFilter<C::Backend> + LookupQueryId,
        L: QueryFragment<C::Backend> + QueryId;

    /// `INSERT INTO <table> <values> <conflict> RETURNING <model>`
    fn insert_returning<V, X>(conn: &mut C, values: &V, conflict: X) -> QueryResult<Option<Self>>
    where
        V: QueryFragment<C::Backend> + QueryId,
        X: QueryFragment<C::Backend> + QueryId;

    /// `UPDATE <table> SET <changeset> WHERE <key> RETURNING <model>`
    fn update_by_key<U, K>(conn: &mut C, changeset: &U, key: &K) -> QueryResult<Option<Self>>
    where
        U: QueryFragment<C::Backend>,
        K: LookupFilter<C::Backend> + LookupQueryId;

    /// `INSERT INTO <table> <values>`, for backends without `RETURNING`.
    fn insert<V>(conn: &mut C, values: &V) -> QueryResult<usize>
    where
        V: QueryFragment<C::Backend> + QueryId;

    /// `UPDATE <table> SET <changeset> WHERE <key>`, returning the number of
    /// rows it matched, for backends without `RETURNING`.
    fn update<U, K>(conn: &mut C, changeset: &U, key: &K) -> QueryResult<usize>
    where
        U: QueryFragment<C::Backend>,
        K: LookupFilter<C::Backend> + LookupQueryId;
}

type SqlTypeOfSelection<M, DB> = <<M as Selectable<DB>>::SelectExpression as Expression>::SqlType;

impl<C, DB, M> Statements<C> for M
where
    C: Connection<Backend = DB> + LoadConnection,
    DB: Backend + QueryMetadata<SqlTypeOfSelection<M, DB>> + 'static,
    M: GetOrCreate + Selectable<DB> + FromSqlRow<SqlTypeOfSelection<M, DB>, DB> + 'static,
    M::Table: QueryId,
    <M::Table as QuerySource>::FromClause: QueryFragment<DB>,
    M::SelectExpression: QueryId,
    diesel::dsl::AsSelect<M, DB>: QueryFragment<DB>,
    SqlTypeOfSelection<M, DB>: SqlType + TypedExpressionType,
{
    fn select_by_key<K, L>(conn: &mut C, key: &K, lock: L) -> QueryResult<Option<Self>>
    where
        K: LookupFilter<DB> + LookupQueryId,
        L: QueryFragment<DB> + QueryId,
    {
        SelectByKey {
            from: From::of(M::table()),
            key,
            select: M::as_select(),
            lock,
        }
        .get_result::<M>(conn)
        .optional()
    }

    fn insert_returning<V, X>(conn: &mut C, values: &V, conflict: X) -> QueryResult<Option<Self>>
    where
        V: QueryFragment<DB> + QueryId,
        X: QueryFragment<DB> + QueryId,
    {
        Insert {
            from: From::of(M::table()),
            values,
            conflict,
            returning: Returning(M::as_select()),
        }
        .get_result::<M>(conn)
        .optional()
    }

    fn update_by_key<U, K>(conn: &mut C, changeset: &U, key: &K) -> QueryResult<Option<Self>>
    where
        U: QueryFragment<DB>,
        K: LookupFilter<DB> + LookupQueryId,
    {
        UpdateByKey {
            from: From::of(M::table()),
            changeset,
            key,
            returning: Returning(M::as_select()),
        }
        .get_result::<M>(conn)
        .optional()
    }

    fn insert<V>(conn: &mut C, values: &V) -> QueryResult<usize>
    where
        V: QueryFragment<DB> + QueryId,
    {
        Insert {
            from: From::of(M::table()),
            values,
            conflict: (),
            returning: (),
        }
        .execute(conn)
    }

    fn update<U, K>(conn: &mut C, changeset: &U, key: &K) -> QueryResult<usize>
    where
        U: QueryFragment<DB>,
        K: LookupFilter<DB> + LookupQueryId,
    {
        UpdateByKey {
            from: From::of(M::table()),
            changeset,
            key,
            returning: (),
        }
        .execute(conn)
    }
}
