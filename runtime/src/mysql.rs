//! MySQL and MariaDB (InnoDB): plain inserts, locking reads, no upsert.
//!
//! MySQL has no `RETURNING`, and its upsert, `ON DUPLICATE KEY UPDATE`,
//! fires on a duplicate in *any* unique index, so it could update the row
//! that owns a colliding value of another unique column. `INSERT IGNORE`
//! turns unrelated errors into warnings. Neither is used. Instead:
//!
//! * `get_or_create`: a hit is one `SELECT`. A miss is a plain `INSERT` of
//!   the key and defaults followed by a `SELECT` of the row by key (MySQL
//!   cannot return it from the insert). If the insert fails with a duplicate
//!   key, the row is read with `SELECT .. LOCK IN SHARE MODE`: a locking read
//!   sees the latest committed row even at REPEATABLE READ, where a plain
//!   read inside the caller's transaction would see its old snapshot and miss
//!   the row a concurrent caller has just committed. The failed insert holds a
//!   shared lock on that index entry, and a shared locking read is compatible
//!   with the other losers' shared locks; an exclusive `FOR UPDATE` there is
//!   what deadlocked Rails with three callers. If no row has the key, the
//!   duplicate was in another unique index and its error is returned.
//! * `update_or_create_with`: `UPDATE .. WHERE key` (InnoDB updates the latest
//!   committed version, locks it, and Diesel's MySQL connection reports rows
//!   matched, not rows changed), then `SELECT .. FOR UPDATE` of that row, which
//!   this transaction already holds exclusively. If nothing matched, `INSERT`
//!   then `SELECT .. FOR UPDATE`; a duplicate key means a concurrent caller
//!   inserted first, and the update runs again. Inside the caller's
//!   transaction a plain `SELECT` first decides whether to update, because an
//!   `UPDATE` that matches nothing locks the gap until the caller commits.
//!
//! A standalone call runs each step in a transaction of its own, so the row it
//! returns is exactly the row it wrote, and no lock outlives the step: an
//! `UPDATE` that matches nothing at REPEATABLE READ locks the gap where the key
//! would go, and two callers holding such gap locks while they insert
//! deadlock each other; the shared lock a failed insert takes would deadlock
//! the update that follows it in the same way. Committing between the steps
//! releases them. A standalone call also runs again after a deadlock.
//! Inside the caller's transaction the locks last until the caller ends it, as
//! they must, and a deadlock is returned as `SerializationFailure` (InnoDB has
//! rolled the caller's transaction back). One remains possible there: callers
//! whose inserts of the same new key failed hold shared locks on it, and each
//! needs an exclusive one to update it (`get_or_create` needs no more than the
//! shared lock and cannot deadlock this way).

use diesel::mysql::Mysql;
use diesel::query_builder::{AsChangeset, QueryFragment, QueryId};
use diesel::result::Error;
use diesel::{Connection, QueryResult};

use crate::backend::{
    in_transaction, is_duplicate, run, transaction_if, Duplicates, GetOrCreateBackend,
    UpdateOrCreateBackend, MAX_ATTEMPTS,
};
use crate::defaults::InsertValues;
use crate::key::{LookupFilter, LookupQueryId};
use crate::query::{ForUpdate, LockInShareMode};
use crate::statements::Statements;

impl<C, M, K, D, Mk> GetOrCreateBackend<C, M, K, D, Mk> for Mysql
where
    C: Connection<Backend = Mysql>,
    M: Statements<C>,
    K: LookupFilter<Mysql> + LookupQueryId + Clone,
    D: InsertValues<M::Table, K, Mk>,
    D::Values: QueryFragment<Mysql> + QueryId,
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
                match M::insert(conn, values) {
                    Ok(_) => {
                        if let Some(row) = M::select_by_key(conn, &key, ())? {
                            return Ok((row, true));
                        }
                        // Standalone only (inside a transaction the insert holds the
                        // row): a concurrent caller deleted the row we inserted.
                    }
                    Err(error) if is_duplicate(&error) => {
                        if let Some(row) = M::select_by_key(conn, &key, LockInShareMode)? {
                            return Ok((row, false));
                        }
                        duplicates.not_on_key(error)?;
                    }
                    Err(error) => return Err(error),
                }
            }
            Err(Error::NotFound)
        })
    }
}

impl<C, M, K, U, D, Mk> UpdateOrCreateBackend<C, M, K, U, D, Mk> for Mysql
where
    C: Connection<Backend = Mysql>,
    M: Statements<C>,
    K: LookupFilter<Mysql> + LookupQueryId + Clone,
    U: AsChangeset<Target = M::Table>,
    U::Changeset: QueryFragment<Mysql>,
    D: InsertValues<M::Table, K, Mk>,
    D::Values: QueryFragment<Mysql> + QueryId,
{
    fn update_or_create_with(conn: &mut C, key: K, update: U, create: D) -> QueryResult<(M, bool)> {
        let changeset = update.as_changeset();
        if changeset.is_noop(&Mysql)? {
            // Nothing to update: the operation is get_or_create.
            return <Mysql as GetOrCreateBackend<C, M, K, D, Mk>>::get_or_create(conn, key, create);
        }
        let standalone = !in_transaction(conn)?;
        let values = create.with_key(key.clone());
        run(conn, standalone, |conn| {
            let mut duplicates = Duplicates::default();
            // Standalone, the gap lock of an UPDATE that matches nothing ends with
            // its step. Inside the caller's transaction it would last until the
            // caller commits, and the gap locks of concurrent callers block each
            // other's inserts: deadlocks, and an inserter starved by callers that
            // keep taking the gap. There, a plain read decides whether to update.
            let mut exists = standalone;
            for _ in 0..MAX_ATTEMPTS {
                if exists || M::select_by_key(conn, &key, ())?.is_some() {
                    let updated = transaction_if(conn, standalone, |conn| {
                        if M::update(conn, &changeset, &key)? == 0 {
                            return Ok(None);
                        }
                        M::select_by_key(conn, &key, ForUpdate)
                    })?;
                    if let Some(row) = updated {
                        return Ok((row, false));
                    }
                }
                let inserted =
                    transaction_if(conn, standalone, |conn| match M::insert(conn, &values) {
                        Ok(_) => Ok(M::select_by_key(conn, &key, ForUpdate)?.map(Ok)),
                        Err(error) if is_duplicate(&error) => Ok(Some(Err(error))),
                        Err(error) => Err(error),
                    })?;
                match inserted {
                    Some(Ok(row)) => return Ok((row, true)),
                    // A concurrent caller inserted the key first: update it. If the
                    // update finds no row again, the duplicate is in another index.
                    Some(Err(error)) => {
                        duplicates.not_on_key(error)?;
                        exists = true;
                    }
                    None => {}
                }
            }
            Err(Error::NotFound)
        })
    }
}
