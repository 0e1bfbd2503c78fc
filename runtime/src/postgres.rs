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

use diesel::connection::LoadConnection;
use diesel::deserialize::FromSqlRow;
use diesel::expression::{Expression, QueryMetadata, Selectable, ValidGrouping};
use diesel::pg::Pg;
use diesel::query_builder::{AsChangeset, AstPass, QueryFragment, QueryId};
use diesel::result::{DatabaseErrorKind, Error};
use diesel::sql_types::Bool;
use diesel::{Connection, OptionalExtension, QueryResult, RunQueryDsl, SelectableHelper};

use crate::backend::{
    in_transaction, is_duplicate, run, transaction_if, Duplicates, GetOrCreateBackend,
    UpdateOrCreateBackend, MAX_ATTEMPTS,
};
use crate::defaults::InsertValues;
use crate::key::{LookupFilter, LookupQueryId};
use crate::query::{From, Insert, OnConflictDoNothing, OnConflictDoUpdate, Returning};
use crate::statements::Statements;

impl<C, M, K, D, Mk> GetOrCreateBackend<C, M, K, D, Mk> for Pg
where
    C: Connection<Backend = Pg>,
    M: Statements<C>,
    K: LookupFilter<Pg> + LookupQueryId + Clone,
    D: InsertValues<M::Table, K, Mk>,
    D::Values: QueryFragment<Pg> + QueryId,
{
    fn get_or_create(conn: &mut C, key: K, defaults: D) -> QueryResult<(M, bool)> {
        let standalone = !in_transaction(conn)?;
        let mut defaults = Some(defaults);
        let mut values = None;
        run(conn, standalone, |conn| {
            if let Some(row) = M::select_by_key(conn, &key, ())? {
                return Ok((row, false));
            }
            // Built on the first miss only: a hit does nothing but its SELECT.
            let values = &*values.get_or_insert_with(|| {
                defaults
                    .take()
                    .expect("defaults are taken once")
                    .with_key(key.clone())
            });
            let mut duplicates = Duplicates::default();
            for _ in 0..MAX_ATTEMPTS {
                let inserted = transaction_if(conn, !standalone, |conn| {
                    M::insert_returning(conn, values, OnConflictDoNothing::<K::Columns>::new())
                });
                match inserted {
                    Ok(Some(row)) => return Ok((row, true)),
                    Ok(None) => {}
                    Err(error) if is_duplicate(&error) => {
                        // Maybe a concurrent insert of the key, failing on another
                        // unique index: the next attempt sees the key's row.
                        duplicates.not_on_key(error)?;
                        continue;
                    }
                    Err(error) => return Err(error),
                }
                if let Some(row) = M::select_by_key(conn, &key, ())? {
                    return Ok((row, false));
                }
                // The conflicting row was deleted before we could read it: insert again.
            }
            Err(Error::NotFound)
        })
    }
}

impl<C, M, K, U, D, Mk> UpdateOrCreateBackend<C, M, K, U, D, Mk> for Pg
where
    C: Connection<Backend = Pg>,
    M: Statements<C> + PgUpsert<C>,
    K: LookupFilter<Pg> + LookupQueryId + Clone,
    U: AsChangeset<Target = M::Table>,
    U::Changeset: QueryFragment<Pg>,
    D: InsertValues<M::Table, K, Mk>,
    D::Values: QueryFragment<Pg> + QueryId,
{
    fn update_or_create_with(conn: &mut C, key: K, update: U, create: D) -> QueryResult<(M, bool)> {
        let changeset = update.as_changeset();
        if changeset.is_noop(&Pg)? {
            // Nothing to update: the operation is get_or_create.
            return <Pg as GetOrCreateBackend<C, M, K, D, Mk>>::get_or_create(conn, key, create);
        }
        let standalone = !in_transaction(conn)?;
        let values = create.with_key(key.clone());
        run(conn, standalone, |conn| {
            let mut duplicates = Duplicates::default();
            let upserted = loop {
                let upserted = transaction_if(conn, !standalone, |conn| {
                    M::upsert_returning_created(
                        conn,
                        &values,
                        OnConflictDoUpdate::<K::Columns, _>::new(&changeset),
                    )
                });
                match upserted {
                    // Maybe a concurrent insert of the key, failing on another
                    // unique index: the next attempt updates the key's row.
                    Err(error) if is_duplicate(&error) => duplicates.not_on_key(error)?,
                    upserted => break upserted,
                }
            };
            match upserted {
                // PostgreSQL checks NOT NULL and CHECK constraints on the row to
                // insert before it looks for a conflict, so create values that
                // could not make a row fail even when the row exists. Then the
                // call is an update, or the insert's error.
                Err(Error::DatabaseError(
                    DatabaseErrorKind::NotNullViolation | DatabaseErrorKind::CheckViolation,
                    _,
                )) => {
                    let updated = transaction_if(conn, !standalone, |conn| {
                        M::update_by_key(conn, &changeset, &key)
                    })?;
                    match updated {
                        Some(row) => Ok((row, false)),
                        None => upserted,
                    }
                }
                result => result,
            }
        })
    }
}

/// `(xmax = 0)`: true when no transaction has updated or locked the returned
/// version of the row, that is, when `INSERT .. ON CONFLICT DO UPDATE`
/// inserted it.
#[derive(Debug, Clone, Copy, QueryId, ValidGrouping)]
#[doc(hidden)]
pub struct XmaxIsZero;

impl Expression for XmaxIsZero {
    type SqlType = Bool;
}

impl QueryFragment<Pg> for XmaxIsZero {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("(xmax = 0)");
        Ok(())
    }
}

type RowAndCreated<M> = (diesel::dsl::AsSelect<M, Pg>, XmaxIsZero);

/// The PostgreSQL upsert of model `Self` over connection `C`: implemented for
/// every model that implements [`Statements`] for a PostgreSQL connection.
pub trait PgUpsert<C: Connection<Backend = Pg>>: Statements<C> {
    /// `INSERT INTO <table> <values> <conflict> RETURNING <model>, (xmax = 0)`
    fn upsert_returning_created<V, X>(
        conn: &mut C,
        values: &V,
        conflict: X,
    ) -> QueryResult<(Self, bool)>
    where
        V: QueryFragment<Pg> + QueryId,
        X: QueryFragment<Pg> + QueryId;
}

impl<C, M> PgUpsert<C> for M
where
    C: Connection<Backend = Pg> + LoadConnection,
    M: Statements<C> + Selectable<Pg> + 'static,
    M::Table: QueryId,
    <M::Table as diesel::QuerySource>::FromClause: QueryFragment<Pg>,
    RowAndCreated<M>:
        Expression<SqlType = (diesel::dsl::AsSelect<M, Pg>, Bool)> + QueryFragment<Pg> + QueryId,
    Pg: QueryMetadata<(diesel::dsl::AsSelect<M, Pg>, Bool)>,
    (M, bool): FromSqlRow<(diesel::dsl::AsSelect<M, Pg>, Bool), Pg>,
{
    fn upsert_returning_created<V, X>(
        conn: &mut C,
        values: &V,
        conflict: X,
    ) -> QueryResult<(Self, bool)>
    where
        V: QueryFragment<Pg> + QueryId,
        X: QueryFragment<Pg> + QueryId,
    {
        Insert {
            from: From::of(M::table()),
            values,
            conflict,
            returning: Returning((M::as_select(), XmaxIsZero)),
        }
        .get_result::<(M, bool)>(conn)
        .optional()?
        // `DO UPDATE` returns the row whether it inserted or updated it.
        .ok_or(Error::NotFound)
    }
}
