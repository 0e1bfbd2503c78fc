//! The statements the algorithms run, as Diesel query nodes.
//!
//! Diesel's upsert nodes are crate-private, so the conflict clause cannot be
//! reached through generic bounds on `.on_conflict(..)`. These nodes render
//! the whole statement through Diesel's public `QueryFragment` API instead.
//! Each one has a static [`QueryId`] whenever its parts do, so Diesel keeps
//! the prepared statement in its cache exactly as for hand-written queries.
//!
//! A clause renders only for backends whose dialect has it, as Diesel gates
//! its own clauses: `RETURNING` needs [`SupportsReturning`] and `ON CONFLICT`
//! needs [`SupportsOnConflict`], sealed traits implemented in the backends'
//! modules. A MySQL `RETURNING` does not compile. Clauses of one backend only
//! (MySQL's locking reads, PostgreSQL's `xmax`) live in that backend's module.

use core::marker::PhantomData;

use diesel::backend::Backend;
use diesel::expression::Expression;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::query_source::QuerySource;
use diesel::QueryResult;

use crate::key::{ColumnTuple, LookupFilter, LookupQueryId};

pub(crate) mod sealed {
    /// Only this crate implements the dialect traits.
    pub trait Sealed {}
}

/// Backends with `INSERT .. RETURNING` and `UPDATE .. RETURNING`
/// (PostgreSQL, SQLite >= 3.35).
pub trait SupportsReturning: Backend + sealed::Sealed {}

/// Backends with `INSERT .. ON CONFLICT (columns) DO NOTHING | DO UPDATE`
/// (PostgreSQL, SQLite).
pub trait SupportsOnConflict: Backend + sealed::Sealed {}

/// A table's `FROM` clause, kept with the table type for the query id.
pub(crate) struct From<T: QuerySource>(pub(crate) T::FromClause, PhantomData<T>);

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

/// The `<lock>` of a select by key: the clause after `LIMIT 1` (its
/// `QueryFragment`), and a condition it may add to the `WHERE` clause (MySQL's
/// `FOR UPDATE` read checks there that its transaction is still open). `()`
/// is no lock.
pub trait LockClause<DB: Backend>: QueryFragment<DB> {
    /// ` AND <condition>` after the key's filter, or nothing.
    fn walk_guard<'b>(&'b self, out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        let _ = out;
        Ok(())
    }
}

impl<DB: Backend> LockClause<DB> for () {}

impl<T, K, S, L, DB> QueryFragment<DB> for SelectByKey<'_, T, K, S, L>
where
    DB: Backend,
    T: QuerySource,
    T::FromClause: QueryFragment<DB>,
    K: LookupFilter<DB>,
    S: QueryFragment<DB>,
    L: LockClause<DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql("SELECT ");
        self.select.walk_ast(out.reborrow())?;
        out.push_sql(" FROM ");
        self.from.0.walk_ast(out.reborrow())?;
        out.push_sql(" WHERE ");
        self.key.walk_filter(out.reborrow())?;
        self.lock.walk_guard(out.reborrow())?;
        out.push_sql(" LIMIT 1");
        self.lock.walk_ast(out.reborrow())
    }
}

/// `INSERT INTO <table> <values> <conflict> <returning>`
#[derive(Debug)]
pub(crate) struct Insert<'a, T: QuerySource, V, C, R> {
    pub(crate) from: From<T>,
    pub(crate) values: &'a V,
    pub(crate) conflict: C,
    pub(crate) returning: R,
}

impl<T, V, C, R, DB> QueryFragment<DB> for Insert<'_, T, V, C, R>
where
    DB: Backend,
    T: QuerySource,
    T::FromClause: QueryFragment<DB>,
    V: QueryFragment<DB>,
    C: QueryFragment<DB>,
    R: QueryFragment<DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql("INSERT INTO ");
        self.from.0.walk_ast(out.reborrow())?;
        out.push_sql(" ");
        self.values.walk_ast(out.reborrow())?;
        self.conflict.walk_ast(out.reborrow())?;
        self.returning.walk_ast(out.reborrow())
    }
}

/// ` RETURNING <select>`; a statement without one has `()` in its place.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Returning<S>(pub(crate) S);

impl<S: QueryFragment<DB>, DB: SupportsReturning> QueryFragment<DB> for Returning<S> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql(" RETURNING ");
        self.0.walk_ast(out.reborrow())
    }
}

impl<S: QueryId> QueryId for Returning<S> {
    type QueryId = Returning<S::QueryId>;
    const HAS_STATIC_QUERY_ID: bool = S::HAS_STATIC_QUERY_ID;
}

/// ` ON CONFLICT (<columns>) DO NOTHING`, for the key's column tuple `Cols`
///
/// Only a conflict on exactly the key's constraint is absorbed; a conflict on
/// any other unique index still fails the statement.
#[derive(Debug)]
pub(crate) struct OnConflictDoNothing<Cols>(PhantomData<fn() -> Cols>);

impl<Cols> OnConflictDoNothing<Cols> {
    pub(crate) fn new() -> Self {
        OnConflictDoNothing(PhantomData)
    }
}

impl<Cols: ColumnTuple, DB: SupportsOnConflict> QueryFragment<DB> for OnConflictDoNothing<Cols> {
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

pub(crate) fn push_column_list<Cols: ColumnTuple, DB: Backend>(
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

/// `UPDATE <table> SET <changeset> WHERE <key> <returning>`
#[derive(Debug)]
pub(crate) struct UpdateByKey<'a, T: QuerySource, U, K, R> {
    pub(crate) from: From<T>,
    pub(crate) changeset: &'a U,
    pub(crate) key: &'a K,
    pub(crate) returning: R,
}

impl<T, U, K, R, DB> QueryFragment<DB> for UpdateByKey<'_, T, U, K, R>
where
    DB: Backend,
    T: QuerySource,
    T::FromClause: QueryFragment<DB>,
    U: QueryFragment<DB>,
    K: LookupFilter<DB>,
    R: QueryFragment<DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql("UPDATE ");
        self.from.0.walk_ast(out.reborrow())?;
        out.push_sql(" SET ");
        self.changeset.walk_ast(out.reborrow())?;
        out.push_sql(" WHERE ");
        self.key.walk_filter(out.reborrow())?;
        self.returning.walk_ast(out.reborrow())
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

impl<T: QuerySource, K, S, L> diesel::query_dsl::RunQueryDslSupport
    for SelectByKey<'_, T, K, S, L>
{
}

impl<T, V, C, R> QueryId for Insert<'_, T, V, C, R>
where
    T: QuerySource + QueryId,
    V: QueryId,
    C: QueryId,
    R: QueryId,
{
    type QueryId = (InsertNode, T::QueryId, V::QueryId, C::QueryId, R::QueryId);
    const HAS_STATIC_QUERY_ID: bool = T::HAS_STATIC_QUERY_ID
        && V::HAS_STATIC_QUERY_ID
        && C::HAS_STATIC_QUERY_ID
        && R::HAS_STATIC_QUERY_ID;
}

impl<T: QuerySource, V, C, S: Expression> Query for Insert<'_, T, V, C, Returning<S>> {
    type SqlType = S::SqlType;
}

impl<T: QuerySource, V, C, R> diesel::query_dsl::RunQueryDslSupport for Insert<'_, T, V, C, R> {}

/// Diesel's changesets have no query id (its own `UpdateStatement` has none
/// either), so an update is cached by its SQL text, as Diesel's are.
impl<T: QuerySource, U, K, R> QueryId for UpdateByKey<'_, T, U, K, R> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<T: QuerySource, U, K, S: Expression> Query for UpdateByKey<'_, T, U, K, Returning<S>> {
    type SqlType = S::SqlType;
}

impl<T: QuerySource, U, K, R> diesel::query_dsl::RunQueryDslSupport
    for UpdateByKey<'_, T, U, K, R>
{
}

/// Each clause renders for exactly the backends whose dialect has it. A
/// clause a backend lacks does not compile there; this shows it without a
/// compile-fail test, by asking the compiler whether the impl exists.
#[cfg(all(test, feature = "sqlite", feature = "postgres", feature = "mysql"))]
mod tests {
    use core::marker::PhantomData;

    use diesel::mysql::Mysql;
    use diesel::pg::Pg;
    use diesel::query_builder::QueryFragment;
    use diesel::sqlite::Sqlite;

    use super::{OnConflictDoNothing, Returning};
    use crate::mysql::{ForUpdate, LockInShareMode};
    use crate::postgres::OnConflictDoUpdate;
    use crate::postgres::XmaxIsZero;

    diesel::table! {
        t (id) {
            id -> Integer,
        }
    }

    /// `Probe<T, DB>` has `renders() == true` through `Renders` when
    /// `T: QueryFragment<DB>`; otherwise method lookup falls through to
    /// `DoesNot` on `&Probe` (autoref specialization).
    struct Probe<T, DB>(PhantomData<(T, DB)>);

    trait Renders {
        fn renders(&self) -> bool {
            true
        }
    }

    impl<T: QueryFragment<DB>, DB: diesel::backend::Backend> Renders for Probe<T, DB> {}

    trait DoesNot {
        fn renders(&self) -> bool {
            false
        }
    }

    impl<T, DB> DoesNot for &Probe<T, DB> {}

    macro_rules! renders {
        ($clause:ty: $($db:ty),*) => {
            [$((&Probe::<$clause, $db>(PhantomData)).renders()),*]
        };
    }

    #[test]
    fn clauses_render_only_where_the_dialect_has_them() {
        // [Sqlite, Pg, Mysql]
        assert_eq!(
            renders!(Returning<t::id>: Sqlite, Pg, Mysql),
            [true, true, false]
        );
        assert_eq!(
            renders!(OnConflictDoNothing<(t::id,)>: Sqlite, Pg, Mysql),
            [true, true, false]
        );
        assert_eq!(
            renders!(OnConflictDoUpdate<'static, (t::id,), ()>: Sqlite, Pg, Mysql),
            [true, true, false]
        );
        assert_eq!(
            renders!(LockInShareMode: Sqlite, Pg, Mysql),
            [false, false, true]
        );
        assert_eq!(renders!(ForUpdate: Sqlite, Pg, Mysql), [false, false, true]);
        assert_eq!(
            renders!(XmaxIsZero: Sqlite, Pg, Mysql),
            [false, true, false]
        );
        // The control: a column renders everywhere.
        assert_eq!(renders!(t::id: Sqlite, Pg, Mysql), [true, true, true]);
    }
}
