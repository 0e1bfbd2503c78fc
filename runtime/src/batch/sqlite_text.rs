//! SQLite statements built on Diesel's own rendering of a multi-row insert.
//!
//! Diesel renders an SQLite multi-row `INSERT` only inside its own
//! `SqliteConnection`: its batch insert node has no `QueryFragment<Sqlite>`,
//! so no clause can follow it in a statement of the crate's. Its
//! `debug_query` text is the statement Diesel sends (or, for rows with a
//! default value, an `Option` field's `None`, its one `INSERT` per row in a
//! transaction); the rows' bind values are collected here in the same order.
//! A statement is that text, a clause of the crate's rendered after it, and
//! both binds, sent as a [`CollectedQuery`].

use core::fmt;
use core::marker::PhantomData;

use diesel::backend::Backend;
use diesel::query_builder::{
    debug_query, AstPass, CollectedQuery, DebugQuery, MoveableBindCollector, Query, QueryFragment,
    QueryId,
};
use diesel::result::Error;
use diesel::sqlite::Sqlite;
use diesel::{Insertable, QueryResult};

use super::{insert_rows, InsertRows};
use crate::model::Model;

/// What Diesel's `debug_query` writes between a statement and its binds.
const BINDS: &str = " -- binds: ";

/// SQLite's bind values, owned.
pub(crate) type Binds =
    <<Sqlite as Backend>::BindCollector<'static> as MoveableBindCollector<Sqlite>>::BindData;

/// The text of `query` up to its binds, as `debug_query` writes it
/// (formatting stops there: the binds are not formatted).
pub(crate) fn text_before_binds(query: &impl fmt::Display) -> Option<String> {
    struct UpToBinds(String);
    impl fmt::Write for UpToBinds {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            self.0.push_str(s);
            if self.0.contains(BINDS) {
                return Err(fmt::Error);
            }
            Ok(())
        }
    }
    let mut out = UpToBinds(String::new());
    let _stopped = fmt::write(&mut out, format_args!("{query}"));
    out.0.split_once(BINDS).map(|(sql, _)| sql.to_owned())
}

/// Diesel's multi-row insert of `rows` followed by `tail`, as one statement
/// of text and binds; `None` when Diesel would insert the rows one by one.
pub(crate) fn insert_then<M, R, X>(
    rows: &[R],
    tail: &X,
) -> QueryResult<Option<CollectedQuery<Binds>>>
where
    M: Model,
    R: Insertable<M::Table> + Clone,
    R::Values: QueryFragment<Sqlite>,
    Vec<R>: Insertable<M::Table>,
    for<'a> DebugQuery<'a, InsertRows<M, R>, Sqlite>: fmt::Display,
    X: QueryFragment<Sqlite>,
{
    let statement = insert_rows::<M, R>(rows.to_vec());
    let mut text = text_before_binds(&debug_query::<Sqlite, _>(&statement)).ok_or_else(|| {
        Error::QueryBuilderError("Diesel could not render the batch's insert".into())
    })?;
    // Diesel's own debug output of a row-by-row insert.
    if text.starts_with("BEGIN;") {
        return Ok(None);
    }
    let tail_text = text_before_binds(&debug_query::<Sqlite, _>(tail)).ok_or_else(|| {
        Error::QueryBuilderError("could not render the clause after the batch's insert".into())
    })?;
    text.push_str(&tail_text);
    // The binds of a multi-row insert are its rows' binds, in order; the
    // clause's follow.
    let values: Vec<R::Values> = rows.iter().cloned().map(Insertable::values).collect();
    let mut binds = <Sqlite as Backend>::BindCollector::default();
    for row in &values {
        row.collect_binds(&mut binds, &mut (), &Sqlite)?;
    }
    tail.collect_binds(&mut binds, &mut (), &Sqlite)?;
    // Not cached, as Diesel's own multi-row insert.
    Ok(Some(CollectedQuery::new(text, false, binds.moveable())))
}

/// A statement of text and binds whose rows have SQL type `ST`.
pub(crate) struct Typed<Q, ST>(pub(crate) Q, PhantomData<fn() -> ST>);

impl<Q, ST> Typed<Q, ST> {
    pub(crate) fn new(query: Q) -> Self {
        Typed(query, PhantomData)
    }
}

impl<Q: QueryFragment<Sqlite>, ST> QueryFragment<Sqlite> for Typed<Q, ST> {
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        self.0.walk_ast(pass)
    }
}

impl<Q, ST> QueryId for Typed<Q, ST> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q, ST> Query for Typed<Q, ST> {
    type SqlType = ST;
}

impl<Q, ST> diesel::query_dsl::RunQueryDslSupport for Typed<Q, ST> {}
