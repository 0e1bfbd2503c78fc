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

use diesel::query_builder::{AsChangeset, QueryFragment, QueryId};
use diesel::sqlite::Sqlite;
use diesel::{Connection, QueryResult};

use crate::backend::{GetOrCreateBackend, UpdateOrCreateBackend, MAX_ATTEMPTS};
use crate::defaults::InsertValues;
use crate::key::{Lookup, LookupFilter, LookupQueryId};
use crate::query::OnConflictDoNothing;
use crate::statements::Statements;

impl<C, M, K, D, Mk> GetOrCreateBackend<C, M, K, D, Mk> for Sqlite
where
    C: Connection<Backend = Sqlite>,
    M: Statements<C>,
    K: LookupFilter<Sqlite> + LookupQueryId + Clone,
    D: InsertValues<M::Table, K, Mk>,
    D::Values: QueryFragment<Sqlite> + QueryId,
{
    fn get_or_create(conn: &mut C, key: K, defaults: D) -> QueryResult<(M, bool)> {
        if let Some(row) = M::select_by_key(conn, &key, ())? {
            return Ok((row, false));
        }
        let values = defaults.with_key(key.clone());
        check_distinct_columns(&values)?;
        for _ in 0..MAX_ATTEMPTS {
            if let Some(row) = M::insert_returning(conn, &values, on_conflict_do_nothing::<K>())? {
                return Ok((row, true));
            }
            if let Some(row) = M::select_by_key(conn, &key, ())? {
                return Ok((row, false));
            }
            // The conflicting row was deleted before we could read it: insert again.
        }
        Err(diesel::result::Error::NotFound)
    }
}

impl<C, M, K, U, D, Mk> UpdateOrCreateBackend<C, M, K, U, D, Mk> for Sqlite
where
    C: Connection<Backend = Sqlite>,
    M: Statements<C>,
    K: LookupFilter<Sqlite> + LookupQueryId + Clone,
    U: AsChangeset<Target = M::Table>,
    U::Changeset: QueryFragment<Sqlite>,
    D: InsertValues<M::Table, K, Mk>,
    D::Values: QueryFragment<Sqlite> + QueryId,
{
    fn update_or_create_with(conn: &mut C, key: K, update: U, create: D) -> QueryResult<(M, bool)> {
        let changeset = update.as_changeset();
        if changeset.is_noop(&Sqlite)? {
            // Nothing to update: the operation is get_or_create.
            return <Sqlite as GetOrCreateBackend<C, M, K, D, Mk>>::get_or_create(
                conn, key, create,
            );
        }
        let values = create.with_key(key.clone());
        check_distinct_columns(&values)?;
        for _ in 0..MAX_ATTEMPTS {
            if let Some(row) = M::update_by_key(conn, &changeset, &key)? {
                return Ok((row, false));
            }
            if let Some(row) = M::insert_returning(conn, &values, on_conflict_do_nothing::<K>())? {
                return Ok((row, true));
            }
            // A concurrent caller inserted the key after our UPDATE: update it.
        }
        Err(diesel::result::Error::NotFound)
    }
}

fn on_conflict_do_nothing<K: Lookup>() -> OnConflictDoNothing<K::Columns> {
    OnConflictDoNothing::new()
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
mod tests {
    use super::insert_column_names;

    #[test]
    fn parses_quoted_column_lists() {
        assert_eq!(
            insert_column_names("(`a`, `b``c`, `d e`) VALUES (?, ?, ?)"),
            ["a", "b`c", "d e"]
        );
        assert!(insert_column_names("DEFAULT VALUES").is_empty());
    }
}
