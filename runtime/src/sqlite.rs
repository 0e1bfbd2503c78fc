//! SQLite: `INSERT .. ON CONFLICT (key) DO NOTHING RETURNING ..`.
//!
//! SQLite runs one writer at a time per database file, and every statement is
//! atomic, so the algorithms need no locking reads:
//!
//! * `get_or_create`: a hit is one `SELECT`. A miss is one
//!   `INSERT .. ON CONFLICT (key) DO NOTHING RETURNING ..`: a returned row was
//!   created by this call; no row means another connection inserted the key
//!   first, and one more `SELECT` returns that row. The insert is not the
//!   first statement because it consumes an `AUTOINCREMENT` value even when
//!   it conflicts.
//! * `update_or_create_with`: `UPDATE .. WHERE key RETURNING ..` (one
//!   statement when the row exists; the database evaluates `visits + 1`
//!   against the current row), else the conflict-absorbing insert. SQLite's
//!   upsert cannot report whether it inserted or updated, so the two paths
//!   are separate statements.
//!
//! A conflict on any other unique index fails the statement with
//! `UniqueViolation`; SQLite aborts only that statement, so the caller's
//! transaction stays usable.

use diesel::query_builder::QueryFragment;
use diesel::sqlite::Sqlite;
use diesel::QueryResult;

use diesel::Connection;

use crate::algorithm::{self, vanished, Algorithms, Errors, ReturningIo, MAX_ATTEMPTS};
use crate::call::Call;
use crate::defaults::InsertValues;
use crate::driver::sync::{SyncIo, SyncStatements};
use crate::key::Lookup;
use crate::model::Model;
use crate::query::{sealed::Sealed, SupportsOnConflict, SupportsReturning};

impl Sealed for Sqlite {}
impl SupportsReturning for Sqlite {}
impl SupportsOnConflict for Sqlite {}

/// SQLite's statements never need running again: one writer at a time.
pub(crate) const ERRORS: Errors = Errors {
    normalize: core::convert::identity,
    retryable: |_| false,
};

/// The step SQLite's algorithms add to [`ReturningIo`].
pub trait SqliteIo: ReturningIo {
    /// Refuse an insert that names a column twice, as PostgreSQL and MySQL
    /// do; SQLite would keep the first value without complaint.
    fn check_insert_columns(&mut self) -> QueryResult<()>;
}

impl<E: SqliteIo> Algorithms<E> for Sqlite {
    async fn get_or_create(io: &mut E) -> QueryResult<(E::Row, bool)> {
        algorithm::get_or_create(io, ERRORS, async |io, _, _| {
            io.check_insert_columns()?;
            if let Some(row) = io.insert_returning().await? {
                return Ok(Some((row, true)));
            }
            // `None`: the conflicting row was deleted before we could read it.
            Ok(io.select().await?.map(|row| (row, false)))
        })
        .await
    }

    async fn update_or_create(io: &mut E) -> QueryResult<(E::Row, bool)> {
        for _ in 0..MAX_ATTEMPTS {
            if let Some(row) = io.update_returning().await? {
                return Ok((row, false));
            }
            // The create values are built (and checked) only to insert.
            io.check_insert_columns()?;
            if let Some(row) = io.insert_returning().await? {
                return Ok((row, true));
            }
            // A concurrent caller inserted the key after our UPDATE: update it.
        }
        Err(vanished())
    }
}

impl<C, M, K, D, Mk, U> SqliteIo for SyncIo<'_, C, Call<M, K, D, Mk, U>>
where
    C: Connection<Backend = Sqlite>,
    Call<M, K, D, Mk, U>: SyncStatements<C, Row = M> + Send,
    M: Model + Send,
    K: Lookup + Clone,
    D: InsertValues<M::Table, K, Mk>,
    D::Values: QueryFragment<Sqlite>,
{
    fn check_insert_columns(&mut self) -> QueryResult<()> {
        check_distinct_columns(self.call.values())
    }
}

#[cfg(feature = "async")]
impl<C, M, K, D, Mk, U> SqliteIo
    for crate::driver::asynchronous::AsyncIo<'_, C, Call<M, K, D, Mk, U>>
where
    C: diesel_async::AsyncConnection<Backend = Sqlite>,
    Call<M, K, D, Mk, U>: crate::driver::asynchronous::AsyncStatements<C, Row = M> + Send,
    M: Model + Send,
    K: Lookup + Clone,
    D: InsertValues<M::Table, K, Mk>,
    D::Values: QueryFragment<Sqlite>,
{
    fn check_insert_columns(&mut self) -> QueryResult<()> {
        check_distinct_columns(self.call.values())
    }
}

/// PostgreSQL and MySQL refuse an `INSERT` that names a column twice; SQLite
/// accepts it and keeps the first value. Refuse it here too, so that
/// defaults repeating a key column (or any column) fail the same way on every
/// backend instead of silently losing a value. Runs on the insert path only.
fn check_distinct_columns<V: QueryFragment<Sqlite>>(values: &V) -> QueryResult<()> {
    let mut builder = diesel::sqlite::SqliteQueryBuilder::new();
    values.to_sql(&mut builder, &Sqlite)?;
    let sql = diesel::query_builder::QueryBuilder::finish(builder);
    let columns = insert_column_names(&sql);
    for (i, column) in columns.iter().enumerate() {
        if columns[..i].contains(column) {
            return Err(diesel::result::Error::QueryBuilderError(
                format!(
                    "column `{column}` is given twice in one insert: \
                     the defaults or create values must not repeat a key column, \
                     nor name a column twice"
                )
                .into(),
            ));
        }
    }
    Ok(())
}

/// The column names of a rendered `(`a`, `b`) VALUES (..)` clause, as
/// Diesel's SQLite query builder quotes them (backticks, doubled inside).
fn insert_column_names(sql: &str) -> Vec<String> {
    let mut names = Vec::new();
    let Some(list) = sql.strip_prefix('(') else {
        return names;
    };
    let mut chars = list.chars().peekable();
    loop {
        match chars.next() {
            Some('`') => {
                let mut name = String::new();
                while let Some(c) = chars.next() {
                    if c == '`' {
                        if chars.peek() == Some(&'`') {
                            chars.next();
                            name.push('`');
                        } else {
                            break;
                        }
                    } else {
                        name.push(c);
                    }
                }
                names.push(name);
            }
            Some(',') | Some(' ') => {}
            _ => return names,
        }
    }
}

#[cfg(test)]
mod tests;
