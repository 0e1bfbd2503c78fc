//! The statements the algorithms run, as Diesel query nodes.
//!
//! Diesel's upsert nodes are crate-private, so the conflict clause cannot be
//! reached through generic bounds on `.on_conflict(..)`. These nodes render
//! the whole statement through Diesel's public `QueryFragment` API instead.
//! Each one has a static [`QueryId`] whenever its parts do, so Diesel keeps
//! the prepared statement in its cache exactly as for hand-written queries.

use core::marker::PhantomData;

use diesel::backend::Backend;
use diesel::expression::Expression;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::query_source::QuerySource;
use diesel::{QueryResult, RunQueryDsl};

use crate::key::{ColumnTuple, LookupFilter, LookupQueryId};

/// A table's `FROM` clause, kept with the table type for the query id.
pub(crate) struct From<T: QuerySource>(T::FromClause, PhantomData<T>);

impl<T: QuerySource> From<T> {
    pub(crate) fn of(table: T) -> Self {
        From(table.from_clause(), PhantomData)
    }
}

impl<T: QuerySource> core::fmt::Debug for From<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("From")
    }
}

/// `SELECT <select> FROM <table> WHERE <key> LIMIT 1 <lock>`
#[derive(Debug)]
pub(crate) struct SelectByKey<'a, T: QuerySource, K, S, L> {
    pub(crate) from: From<T>,
    pub(crate) key: &'a K,
    pub(crate) select: S,
    pub(crate) lock: L,
}

impl<T, K, S, L, DB> QueryFragment<DB> for SelectByKey<'_, T, K, S, L>
where
    DB: Backend,
    T: QuerySource,
    T::FromClause: QueryFragment<DB>,
    K: LookupFilter<DB>,
    S: QueryFragment<DB>,
    L: QueryFragment<DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql("SELECT ");
        self.select.walk_ast(out.reborrow())?;
        out.push_sql(" FROM ");
        self.from.0.walk_ast(out.reborrow())?;
        out.push_sql(" WHERE ");
        self.key.walk_filter(out.reborrow())?;
        out.push_sql(" LIMIT 1");
        self.lock.walk_ast(out.reborrow())
    }
}

/// `INSERT INTO <table> <values> <conflict> RETURNING <select>`
#[derive(Debug)]
pub(crate) struct InsertReturning<'a, T: QuerySource, V, C, S> {
    pub(crate) from: From<T>,
    pub(crate) values: &'a V,
    pub(crate) conflict: C,
    pub(crate) select: S,
}

impl<T, V, C, S, DB> QueryFragment<DB> for InsertReturning<'_, T, V, C, S>
where
    DB: Backend,
    T: QuerySource,
    T::FromClause: QueryFragment<DB>,
    V: QueryFragment<DB>,
    C: QueryFragment<DB>,
    S: QueryFragment<DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql("INSERT INTO ");
        self.from.0.walk_ast(out.reborrow())?;
        out.push_sql(" ");
        self.values.walk_ast(out.reborrow())?;
        self.conflict.walk_ast(out.reborrow())?;
        out.push_sql(" RETURNING ");
        self.select.walk_ast(out.reborrow())
    }
}

/// ` ON CONFLICT (<columns>) DO NOTHING`, for the key's column tuple `Cols`
///
/// Only a conflict on exactly the key's constraint is absorbed; a conflict on
/// any other unique index still fails the statement.
#[derive(Debug)]
pub(crate) struct OnConflictDoNothing<Cols>(PhantomData<Cols>);

impl<Cols> OnConflictDoNothing<Cols> {
    pub(crate) fn new() -> Self {
        OnConflictDoNothing(PhantomData)
    }
}

impl<Cols: ColumnTuple, DB: Backend> QueryFragment<DB> for OnConflictDoNothing<Cols> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql(" ON CONFLICT (");
        push_column_list::<Cols, DB>(&mut out)?;
        out.push_sql(") DO NOTHING");
        Ok(())
    }
}

impl<Cols: 'static> QueryId for OnConflictDoNothing<Cols> {
    type QueryId = Self;
    const HAS_STATIC_QUERY_ID: bool = true;
}

fn push_column_list<Cols: ColumnTuple, DB: Backend>(
    out: &mut AstPass<'_, '_, DB>,
) -> QueryResult<()> {
    for (i, name) in Cols::NAMES.iter().enumerate() {
        if i > 0 {
            out.push_sql(", ");
        }
        out.push_identifier(name)?;
    }
    Ok(())
}

/// `UPDATE <table> SET <changeset> WHERE <key> RETURNING <select>`
#[derive(Debug)]
pub(crate) struct UpdateByKey<'a, T: QuerySource, U, K, S> {
    pub(crate) from: From<T>,
    pub(crate) changeset: &'a U,
    pub(crate) key: &'a K,
    pub(crate) select: S,
}

impl<T, U, K, S, DB> QueryFragment<DB> for UpdateByKey<'_, T, U, K, S>
where
    DB: Backend,
    T: QuerySource,
    T::FromClause: QueryFragment<DB>,
    U: QueryFragment<DB>,
    K: LookupFilter<DB>,
    S: QueryFragment<DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql("UPDATE ");
        self.from.0.walk_ast(out.reborrow())?;
        out.push_sql(" SET ");
        self.changeset.walk_ast(out.reborrow())?;
        out.push_sql(" WHERE ");
        self.key.walk_filter(out.reborrow())?;
        out.push_sql(" RETURNING ");
        self.select.walk_ast(out.reborrow())
    }
}

/// Node kind markers for query ids.
#[derive(Debug)]
pub(crate) enum SelectNode {}
#[derive(Debug)]
pub(crate) enum InsertNode {}

impl<T, K, S, L> QueryId for SelectByKey<'_, T, K, S, L>
where
    T: QuerySource + QueryId,
    K: LookupQueryId,
    S: QueryId,
    L: QueryId,
{
    type QueryId = (SelectNode, T::QueryId, K::QueryId, S::QueryId, L::QueryId);
    const HAS_STATIC_QUERY_ID: bool = T::HAS_STATIC_QUERY_ID
        && K::HAS_STATIC_QUERY_ID
        && S::HAS_STATIC_QUERY_ID
        && L::HAS_STATIC_QUERY_ID;
}

impl<T: QuerySource, K, S: Expression, L> Query for SelectByKey<'_, T, K, S, L> {
    type SqlType = S::SqlType;
}

impl<T: QuerySource, K, S, L, Conn> RunQueryDsl<Conn> for SelectByKey<'_, T, K, S, L> {}

impl<T, V, C, S> QueryId for InsertReturning<'_, T, V, C, S>
where
    T: QuerySource + QueryId,
    V: QueryId,
    C: QueryId,
    S: QueryId,
{
    type QueryId = (InsertNode, T::QueryId, V::QueryId, C::QueryId, S::QueryId);
    const HAS_STATIC_QUERY_ID: bool = T::HAS_STATIC_QUERY_ID
        && V::HAS_STATIC_QUERY_ID
        && C::HAS_STATIC_QUERY_ID
        && S::HAS_STATIC_QUERY_ID;
}

impl<T: QuerySource, V, C, S: Expression> Query for InsertReturning<'_, T, V, C, S> {
    type SqlType = S::SqlType;
}

impl<T: QuerySource, V, C, S, Conn> RunQueryDsl<Conn> for InsertReturning<'_, T, V, C, S> {}

/// Diesel's changesets have no query id (its own `UpdateStatement` has none
/// either), so an update is cached by its SQL text, as Diesel's are.
impl<T: QuerySource, U, K, S> QueryId for UpdateByKey<'_, T, U, K, S> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<T: QuerySource, U, K, S: Expression> Query for UpdateByKey<'_, T, U, K, S> {
    type SqlType = S::SqlType;
}

impl<T: QuerySource, U, K, S, Conn> RunQueryDsl<Conn> for UpdateByKey<'_, T, U, K, S> {}
