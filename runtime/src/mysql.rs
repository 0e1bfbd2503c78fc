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

use core::future::Future;

use diesel::connection::Connection;
use diesel::mysql::Mysql;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::result::{DatabaseErrorKind, Error};
use diesel::QueryResult;

use crate::algorithm::{
    self, begin_if, end_if, is_duplicate, vanished, Algorithms, Duplicates, Errors, Io, Runs,
    StaticInfo, MAX_ATTEMPTS,
};
use crate::driver::sync::{SyncIo, SyncStatements};
use crate::query::sealed::Sealed;
use crate::query::LockClause;

impl Sealed for Mysql {}

/// Locking reads, and the statements that check that their transaction is
/// still open: the steps MySQL's algorithms add to [`Io`].
pub trait LockingIo: Io {
    /// `SELECT .. WHERE <key> LIMIT 1 <lock>`; `FOR UPDATE` (always inside a
    /// transaction) carries the [guard](TRANSACTION_GUARD).
    fn select_locked(
        &mut self,
        lock: Lock,
    ) -> impl Future<Output = QueryResult<Option<Self::Row>>> + Send;

    /// `SELECT .. WHERE <key> <guard> LIMIT 1`: a plain read inside the
    /// caller's transaction, failing as [`rolled_back`] if it is gone.
    fn select_in_transaction(
        &mut self,
    ) -> impl Future<Output = QueryResult<Option<Self::Row>>> + Send;

    /// `UPDATE .. WHERE <key> <guard>` (always inside a transaction): the
    /// rows matched, or [`rolled_back`] if the transaction is gone, so that
    /// the update never runs in autocommit.
    fn update_in_transaction(&mut self) -> impl Future<Output = QueryResult<usize>> + Send;
}

/// The lock a locking read takes on the row it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lock {
    /// ` LOCK IN SHARE MODE`: a shared lock (MariaDB 10.11 rejects the newer
    /// `FOR SHARE` spelling).
    Share,
    /// ` FOR UPDATE`: an exclusive lock.
    Update,
}

impl<E: LockingIo> Algorithms<E> for Mysql {
    async fn get_or_create(io: &mut E) -> QueryResult<(E::Row, bool)> {
        algorithm::get_or_create(io, ERRORS, async |io, _, duplicates| {
            match io.insert().await {
                // `None` (standalone only: inside a transaction the insert holds
                // the row): a concurrent caller deleted the row we inserted.
                Ok(_) => Ok(io.select().await?.map(|row| (row, true))),
                Err(error) if is_duplicate(&error) => {
                    if let Some(row) = io.select_locked(Lock::Share).await? {
                        return Ok(Some((row, false)));
                    }
                    duplicates.not_on_key(error)?;
                    Ok(None)
                }
                Err(error) => Err(error),
            }
        })
        .await
    }

    async fn update_or_create(io: &mut E) -> QueryResult<(E::Row, bool)> {
        let mut runs = Runs::start(io, ERRORS)?;
        loop {
            let result = update_or_insert(io, runs.standalone).await;
            if let Some(result) = runs.settle(io, result).await {
                return result;
            }
        }
    }
}

/// One run of `update_or_create`.
async fn update_or_insert<E: LockingIo>(
    io: &mut E,
    standalone: bool,
) -> QueryResult<(E::Row, bool)> {
    let mut duplicates = Duplicates::default();
    // Standalone, the gap lock of an UPDATE that matches nothing ends with
    // its step. Inside the caller's transaction it would last until the
    // caller commits, and the gap locks of concurrent callers block each
    // other's inserts: deadlocks, and an inserter starved by callers that
    // keep taking the gap. There, a plain read decides whether to update.
    let mut exists = standalone;
    for _ in 0..MAX_ATTEMPTS {
        if exists || io.select_in_transaction().await?.is_some() {
            begin_if(io, standalone).await?;
            let updated = update_step(io).await;
            if let Some(row) = end_if(io, standalone, updated).await? {
                return Ok((row, false));
            }
        }
        begin_if(io, standalone).await?;
        let inserted = insert_step(io).await;
        match end_if(io, standalone, inserted).await? {
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
    Err(vanished())
}

/// `UPDATE .. WHERE key`, then, if it matched, the row it locked.
async fn update_step<E: LockingIo>(io: &mut E) -> QueryResult<Option<E::Row>> {
    if io.update_in_transaction().await? == 0 {
        return Ok(None);
    }
    io.select_locked(Lock::Update).await
}

/// `INSERT`, then the row it inserted; a duplicate key as `Some(Err(..))`
/// (the step still commits: it wrote nothing).
async fn insert_step<E: LockingIo>(io: &mut E) -> QueryResult<Option<QueryResult<E::Row>>> {
    match io.insert().await {
        Ok(_) => Ok(io.select_locked(Lock::Update).await?.map(Ok)),
        Err(error) if is_duplicate(&error) => Ok(Some(Err(error))),
        Err(error) => Err(error),
    }
}

/// MySQL's errors, as both drivers report them.
pub(crate) const ERRORS: Errors = Errors {
    normalize,
    retryable: is_retryable,
};

/// A deadlock (1213) as a `SerializationFailure`, which sync Diesel reports
/// it as; diesel-async, and sync Diesel's text protocol (`BEGIN`, `COMMIT`),
/// report it as `Unknown` with the server's message ("Deadlock found when
/// trying to get lock; try restarting transaction", or Galera's "Deadlock:
/// wsrep aborted transaction").
pub(crate) fn normalize(error: Error) -> Error {
    match error {
        Error::DatabaseError(DatabaseErrorKind::Unknown, info) if is_deadlock(info.message()) => {
            Error::DatabaseError(DatabaseErrorKind::SerializationFailure, info)
        }
        error => error,
    }
}

/// A deadlock (1213), normalized or not: InnoDB (or Galera's certification)
/// has rolled the transaction back, and running it again from the start is
/// safe.
pub(crate) fn is_retryable(error: &Error) -> bool {
    match error {
        Error::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => true,
        Error::DatabaseError(DatabaseErrorKind::Unknown, info) => is_deadlock(info.message()),
        _ => false,
    }
}

/// The server's message of a deadlock (1213), as the text protocol and
/// diesel-async report it.
fn is_deadlock(message: &str) -> bool {
    message.starts_with("Deadlock")
}

macro_rules! lock_clause {
    ($(#[$doc:meta])* $name:ident = $sql:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub(crate) struct $name;

        impl QueryFragment<Mysql> for $name {
            fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Mysql>) -> QueryResult<()> {
                out.push_sql($sql);
                Ok(())
            }
        }

        impl QueryId for $name {
            type QueryId = $name;
            const HAS_STATIC_QUERY_ID: bool = true;
        }
    };
}

lock_clause!(
    /// ` FOR UPDATE`: an exclusive locking read of the latest committed row,
    /// always inside a transaction (the step's or the caller's), which its
    /// [guard](TRANSACTION_GUARD) checks is still open.
    ForUpdate = " FOR UPDATE"
);
lock_clause!(
    /// ` LOCK IN SHARE MODE`: a shared locking read of the latest committed
    /// row.
    LockInShareMode = " LOCK IN SHARE MODE"
);

impl LockClause<Mysql> for LockInShareMode {}

/// No lock; the [guard](TRANSACTION_GUARD) in the `WHERE` clause: a plain
/// read inside a transaction.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Guarded;

impl QueryFragment<Mysql> for Guarded {
    fn walk_ast<'b>(&'b self, _out: AstPass<'_, 'b, Mysql>) -> QueryResult<()> {
        Ok(())
    }
}

impl QueryId for Guarded {
    type QueryId = Guarded;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl LockClause<Mysql> for Guarded {
    fn walk_guard<'b>(&'b self, mut out: AstPass<'_, 'b, Mysql>) -> QueryResult<()> {
        out.push_sql(TRANSACTION_GUARD);
        Ok(())
    }
}

/// The [guard](TRANSACTION_GUARD) after an `UPDATE`'s key filter.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UpdateGuard;

impl QueryFragment<Mysql> for UpdateGuard {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Mysql>) -> QueryResult<()> {
        out.push_sql(TRANSACTION_GUARD);
        Ok(())
    }
}

impl QueryId for UpdateGuard {
    type QueryId = UpdateGuard;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl LockClause<Mysql> for ForUpdate {
    fn walk_guard<'b>(&'b self, mut out: AstPass<'_, 'b, Mysql>) -> QueryResult<()> {
        out.push_sql(TRANSACTION_GUARD);
        Ok(())
    }
}

/// The condition of every `FOR UPDATE` read: it fails the read with error
/// 1242 ("Subquery returns more than 1 row") when the session has no
/// transaction open, that is, when the server has rolled the transaction
/// back without reporting it (MariaDB Galera, after a brute-force abort seen
/// by a prepared statement: the statements that follow run in autocommit, and
/// the `COMMIT` that ends them succeeds). The read runs after the step's (or
/// the call's) last write and before its `COMMIT`, so a call never returns a
/// row from a transaction that is gone, and costs no extra round trip.
///
/// `@@in_transaction` is MariaDB's (10.3 and later); the executable comment
/// `/*M!100300 .. */` is read by MariaDB 10.3 and later only, and is a comment
/// to MySQL, which has neither the variable nor Galera's silent rollback.
/// The condition is constant for the statement: the read still looks the key
/// up in its index.
pub(crate) const TRANSACTION_GUARD: &str =
    " /*M!100300 AND IF(@@in_transaction, 1, (SELECT 1 UNION ALL SELECT 2)) */";

/// What the retrying transaction runs before its `COMMIT` on MySQL: the
/// [guard](TRANSACTION_GUARD) as a statement of its own (one round trip;
/// `DO 0` on MySQL, where it is a comment).
pub(crate) const COMMIT_CHECK: &str =
    "DO 0 /*M!100300 + IF(@@in_transaction, 0, (SELECT 1 UNION ALL SELECT 2)) */";

/// A `FOR UPDATE` read (or the [`COMMIT_CHECK`]) failed by its
/// [guard](TRANSACTION_GUARD), as [`rolled_back`]; other errors unchanged.
pub(crate) fn guarded(error: Error) -> Error {
    match &error {
        Error::DatabaseError(DatabaseErrorKind::Unknown, info)
            if info
                .message()
                .starts_with("Subquery returns more than 1 row") =>
        {
            rolled_back()
        }
        _ => error,
    }
}

/// The error of a call whose transaction the server rolled back without
/// reporting it: a `SerializationFailure` (the work is gone; run it again),
/// which a standalone call retries and a call inside the caller's
/// transaction returns.
pub(crate) fn rolled_back() -> Error {
    Error::DatabaseError(
        DatabaseErrorKind::SerializationFailure,
        Box::new(StaticInfo {
            message: ROLLED_BACK,
            hint: Some("run the call (or your transaction) again"),
        }),
    )
}

const ROLLED_BACK: &str = "the server rolled this transaction back without reporting it \
                           (MariaDB Galera: a brute-force abort): the statements after it ran \
                           outside any transaction";

impl<C, P> LockingIo for SyncIo<'_, C, P>
where
    C: Connection<Backend = Mysql>,
    P: SyncStatements<C> + Send,
    P::Row: Send,
{
    async fn select_locked(&mut self, lock: Lock) -> QueryResult<Option<P::Row>> {
        match lock {
            Lock::Share => self.call.select(self.conn, LockInShareMode),
            Lock::Update => self.call.select(self.conn, ForUpdate).map_err(guarded),
        }
    }

    async fn select_in_transaction(&mut self) -> QueryResult<Option<P::Row>> {
        self.call.select(self.conn, Guarded).map_err(guarded)
    }

    async fn update_in_transaction(&mut self) -> QueryResult<usize> {
        self.call
            .update_with(self.conn, UpdateGuard)
            .map_err(guarded)
    }
}

#[cfg(feature = "async")]
impl<C, P> LockingIo for crate::driver::asynchronous::AsyncIo<'_, C, P>
where
    C: diesel_async::AsyncConnection<Backend = Mysql>,
    P: crate::driver::asynchronous::AsyncStatements<C> + Send,
    P::Row: Send,
{
    async fn select_locked(&mut self, lock: Lock) -> QueryResult<Option<P::Row>> {
        match lock {
            Lock::Share => self.call.select(self.conn, LockInShareMode).await,
            Lock::Update => self
                .call
                .select(self.conn, ForUpdate)
                .await
                .map_err(guarded),
        }
    }

    async fn select_in_transaction(&mut self) -> QueryResult<Option<P::Row>> {
        self.call.select(self.conn, Guarded).await.map_err(guarded)
    }

    async fn update_in_transaction(&mut self) -> QueryResult<usize> {
        self.call
            .update_with(self.conn, UpdateGuard)
            .await
            .map_err(guarded)
    }
}

#[cfg(test)]
mod tests;
