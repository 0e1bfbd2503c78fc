//! MySQL and MariaDB (InnoDB): plain inserts, locking reads, and one guarded
//! upsert.
//!
//! MySQL has no `RETURNING` that Diesel can run, and its upsert, `ON
//! DUPLICATE KEY UPDATE`, fires on a duplicate in *any* unique index, so
//! unguarded it could update the row that owns a colliding value of another
//! unique column. `INSERT IGNORE` turns unrelated errors into warnings and is
//! never used.
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
//! * `update_or_create_with`: `INSERT .. ON DUPLICATE KEY UPDATE <key check>,
//!   <changeset>` ([`OnDuplicateKeyUpdate`]), then `SELECT .. FOR UPDATE` of
//!   the row, which the transaction now holds exclusively; standalone, both in
//!   a transaction of their own, so that the row returned is exactly the row
//!   written. The upsert takes the key's index entry exclusively whether it
//!   inserts or updates, so callers creating the same new key queue instead
//!   of deadlocking. Its key check fails it when the row it met has another
//!   key (or the session is outside any transaction); then, and when the
//!   create values cannot form a row although the key's row exists, the
//!   portable steps of [`update_or_insert`] decide.
//! * The portable steps: `UPDATE .. WHERE key` (InnoDB updates the latest
//!   committed version, locks it, and Diesel's MySQL connection reports rows
//!   matched, not rows changed), then `SELECT .. FOR UPDATE` of that row. If
//!   nothing matched, `INSERT` then `SELECT .. FOR UPDATE`; a duplicate key
//!   means a concurrent caller inserted first, and the update runs again.
//!   Inside the caller's transaction a plain `SELECT` first decides whether to
//!   update, because an `UPDATE` that matches nothing locks the gap until the
//!   caller commits.
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
//! rolled the caller's transaction back). The portable steps can deadlock
//! there (callers whose inserts of the same new key failed hold shared locks
//! on it, and each needs an exclusive one to update it); the upsert cannot.

use core::future::Future;
use core::marker::PhantomData;
use core::sync::atomic::{AtomicU64, Ordering};

use diesel::connection::{Connection, LoadConnection};
use diesel::deserialize::FromSqlRow;
use diesel::expression::{Expression, QueryMetadata, Selectable, ValidGrouping};
use diesel::mysql::Mysql;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::query_source::QuerySource;
use diesel::result::{DatabaseErrorKind, Error};
use diesel::sql_types::{BigInt, Bool, Unsigned};
use diesel::{OptionalExtension, QueryResult, RunQueryDsl, SelectableHelper};

use crate::algorithm::{
    self, begin_if, end_if, is_duplicate, vanished, Algorithms, Duplicates, Errors, Io, Runs,
    StaticInfo, MAX_ATTEMPTS,
};
use crate::call::{Call, SelectionOf};
use crate::defaults::InsertValues;
use crate::driver::sync::{SyncIo, SyncStatements};
use crate::key::{ColumnTuple, Lookup};
use crate::model::Model;
use crate::query::sealed::Sealed;
use crate::query::{From, Insert, LockClause, SelectByKey};

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

/// MySQL's upsert: the steps its `update_or_create` runs first.
pub trait UpsertIo: LockingIo {
    /// `INSERT .. ON DUPLICATE KEY UPDATE <key check>, <changeset>` (always
    /// inside a transaction): the update part records `token` in a session
    /// variable, and fails unless the row it meets has the call's key (see
    /// [`OnDuplicateKeyUpdate`]).
    fn upsert(&mut self, token: u64) -> impl Future<Output = QueryResult<usize>> + Send;

    /// `SELECT <row>, (@var <=> token) .. WHERE <key> <guard> LIMIT 1 FOR
    /// UPDATE`: the row the upsert wrote, and whether it updated it.
    fn select_upserted(
        &mut self,
        token: u64,
    ) -> impl Future<Output = QueryResult<Option<(Self::Row, bool)>>> + Send;
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

impl<E: UpsertIo> Algorithms<E> for Mysql {
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
            let result = upsert(io, runs.standalone).await;
            if let Some(result) = runs.settle(io, result).await {
                return result;
            }
        }
    }
}

/// One run of `update_or_create`: the upsert and the read of its row, in a
/// transaction of their own when standalone. If the upsert fails otherwise
/// than by a deadlock (its key check found another row, or the create values
/// cannot form a row although the key's row exists), the portable steps of
/// [`update_or_insert`] decide, and their result is the call's.
async fn upsert<E: UpsertIo>(io: &mut E, standalone: bool) -> QueryResult<(E::Row, bool)> {
    // A new token for every upsert: the session variable outlives a rolled
    // back run.
    let token = next_token();
    begin_if(io, standalone).await?;
    let upserted = upsert_step(io, token).await;
    match end_if(io, standalone, upserted).await {
        Ok(Some((row, updated))) => Ok((row, !updated)),
        // The transaction holds the row from the upsert on: none means the
        // upsert ran outside any transaction (the caller's was rolled back
        // silently) and the row is gone. The portable steps read that.
        Ok(None) => update_or_insert(io, standalone).await,
        Err(error) if falls_back(&error) => update_or_insert(io, standalone).await,
        Err(error) => Err(error),
    }
}

async fn upsert_step<E: UpsertIo>(io: &mut E, token: u64) -> QueryResult<Option<(E::Row, bool)>> {
    io.upsert(token).await?;
    io.select_upserted(token).await
}

/// Whether the portable steps should decide after the upsert failed with
/// `error`: its key check failed (1242: the row it met has another key, or
/// the session is outside any transaction), or the create values could not
/// form a row, which must not fail the update of an existing row (a NULL or
/// a missing value, a failed CHECK, a foreign key, a duplicate in another
/// unique index, or a data error: a value too long, out of range, of the
/// wrong type, a division by zero; a key column repeated in them, which the
/// portable steps refuse only when they insert). Every other error (a deadlock, a lock
/// wait timeout, a lost connection) is returned, or retried, as it is.
fn falls_back(error: &Error) -> bool {
    /// The data errors (SQLSTATE 22xxx) InnoDB raises while it forms a row in
    /// strict mode, which Diesel reports as `Unknown`, and the key check.
    const FALL_BACK_ON: &[&str] = &[
        "Subquery returns more than 1 row",
        "Data too long",
        "Data truncated",
        "Out of range value",
        "Incorrect ",
        "Truncated incorrect",
        "Division by 0",
        "BIGINT",
    ];
    match error {
        Error::DatabaseError(
            DatabaseErrorKind::UniqueViolation
            | DatabaseErrorKind::ForeignKeyViolation
            | DatabaseErrorKind::NotNullViolation
            | DatabaseErrorKind::CheckViolation,
            _,
        ) => true,
        Error::DatabaseError(DatabaseErrorKind::Unknown, info) => {
            let message = info.message();
            FALL_BACK_ON.iter().any(|start| message.starts_with(start))
                // 1110: "Column 'email' specified twice"
                || message.ends_with("specified twice")
        }
        _ => false,
    }
}

/// A value no other upsert on this connection's session uses: the upsert
/// stores it in a session variable only when it updates, and the read that
/// follows compares it.
fn next_token() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The portable steps of `update_or_create` (one run), which the upsert
/// falls back to.
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
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $name;

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

/// The session variable in which the upsert's update part records its token.
const UPDATED_BY: &str = "@diesel_get_or_create_updated";

/// ` ON DUPLICATE KEY UPDATE <key check>, <changeset>`, for the key's column
/// tuple `Cols` (MySQL)
///
/// MySQL runs the update part on a duplicate in *any* unique index. Its first
/// assignment, `<c1> = IF(<check>, <c1>, (SELECT 1 UNION ALL SELECT 2))`,
/// changes nothing when the check holds and fails the statement (error 1242)
/// before any assignment is applied when it does not. The check: the row met
/// has the call's key (`<c> <=> VALUES(<c>)` for every key column, compared as
/// the key's unique index compares), the session is inside a transaction
/// (`/*M!100300 @@in_transaction */`, as [`TRANSACTION_GUARD`]), and then it
/// stores the call's token in [`UPDATED_BY`]. The stored value depends on the
/// row (`IF(<c1> IS NULL, NULL, ?)`), so the server cannot evaluate it ahead
/// of time (it does for a constant: the variable would be set by an insert).
/// The changeset must not be empty; callers check `is_noop` first.
#[derive(Debug)]
pub(crate) struct OnDuplicateKeyUpdate<'a, Cols, U> {
    changeset: &'a U,
    token: u64,
    columns: PhantomData<fn() -> Cols>,
}

impl<Cols: ColumnTuple, U: QueryFragment<Mysql>> QueryFragment<Mysql>
    for OnDuplicateKeyUpdate<'_, Cols, U>
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Mysql>) -> QueryResult<()> {
        let first = Cols::NAMES[0];
        out.push_sql(" ON DUPLICATE KEY UPDATE ");
        out.push_identifier(first)?;
        out.push_sql(" = IF(/*M!100300 @@in_transaction AND */ ");
        for name in Cols::NAMES {
            out.push_identifier(name)?;
            out.push_sql(" <=> VALUES(");
            out.push_identifier(name)?;
            out.push_sql(") AND ");
        }
        out.push_sql("(");
        out.push_sql(UPDATED_BY);
        out.push_sql(" := IF(");
        out.push_identifier(first)?;
        out.push_sql(" IS NULL, NULL, ");
        out.push_bind_param::<Unsigned<BigInt>, u64>(&self.token)?;
        out.push_sql(")) IS NOT NULL, ");
        out.push_identifier(first)?;
        out.push_sql(", (SELECT 1 UNION ALL SELECT 2)), ");
        self.changeset.walk_ast(out.reborrow())
    }
}

/// Changesets have no query id, so neither has the clause that holds one.
impl<Cols, U> QueryId for OnDuplicateKeyUpdate<'_, Cols, U> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

/// `(@var <=> token)`: true when the upsert that got `token` updated the row.
#[derive(Debug, Clone, Copy, ValidGrouping)]
pub(crate) struct UpdatedBy(u64);

impl Expression for UpdatedBy {
    type SqlType = Bool;
}

impl QueryFragment<Mysql> for UpdatedBy {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Mysql>) -> QueryResult<()> {
        out.push_sql("(");
        out.push_sql(UPDATED_BY);
        out.push_sql(" <=> ");
        out.push_bind_param::<Unsigned<BigInt>, u64>(&self.0)?;
        out.push_sql(")");
        Ok(())
    }
}

impl QueryId for UpdatedBy {
    type QueryId = UpdatedBy;
    const HAS_STATIC_QUERY_ID: bool = true;
}

type RowAndUpdated<M> = (SelectionOf<M, Mysql>, UpdatedBy);

impl<M, K, D, Mk, U> Call<M, K, D, Mk, U>
where
    M: Model,
    K: Lookup + Clone,
    D: InsertValues<M::Table, K, Mk>,
{
    /// `INSERT INTO <table> <key and values> ON DUPLICATE KEY UPDATE <key
    /// check>, <changeset>`
    fn insert_on_duplicate_key_update(
        &mut self,
        token: u64,
    ) -> Insert<'_, M::Table, D::Values, OnDuplicateKeyUpdate<'_, K::Columns, U>, ()> {
        self.values();
        let call = &*self;
        Insert {
            from: From::of(M::table()),
            values: call.values.as_ref().expect("values() built them"),
            conflict: OnDuplicateKeyUpdate {
                changeset: &call.changeset,
                token,
                columns: PhantomData,
            },
            returning: (),
        }
    }

    /// `SELECT <row>, (@var <=> token) FROM <table> WHERE <key> <guard> LIMIT
    /// 1 FOR UPDATE`
    fn select_upserted(
        &self,
        token: u64,
    ) -> SelectByKey<'_, M::Table, K, RowAndUpdated<M>, ForUpdate>
    where
        M: Selectable<Mysql>,
    {
        SelectByKey {
            from: From::of(M::table()),
            key: &self.key,
            select: (M::as_select(), UpdatedBy(token)),
            lock: ForUpdate,
        }
    }
}

/// The upsert of call `Self` on MySQL connection `C`, synchronously.
pub trait SyncUpsert<C: Connection<Backend = Mysql>>: SyncStatements<C> {
    /// See [`UpsertIo::upsert`].
    fn upsert(&mut self, conn: &mut C, token: u64) -> QueryResult<usize>;

    /// See [`UpsertIo::select_upserted`].
    fn select_upserted(&self, conn: &mut C, token: u64) -> QueryResult<Option<(Self::Row, bool)>>;
}

impl<C, M, K, D, Mk, U> SyncUpsert<C> for Call<M, K, D, Mk, U>
where
    C: Connection<Backend = Mysql> + LoadConnection,
    Self: SyncStatements<C, Row = M>,
    M: Model + Selectable<Mysql> + 'static,
    M::Table: QueryId,
    <M::Table as QuerySource>::FromClause: QueryFragment<Mysql>,
    K: Lookup + Clone + crate::key::LookupFilter<Mysql> + crate::key::LookupQueryId,
    D: InsertValues<M::Table, K, Mk>,
    D::Values: QueryFragment<Mysql> + QueryId,
    U: QueryFragment<Mysql>,
    M::SelectExpression: QueryId,
    RowAndUpdated<M>:
        Expression<SqlType = (SelectionOf<M, Mysql>, Bool)> + QueryFragment<Mysql> + QueryId,
    Mysql: QueryMetadata<(SelectionOf<M, Mysql>, Bool)>,
    (M, bool): FromSqlRow<(SelectionOf<M, Mysql>, Bool), Mysql>,
{
    fn upsert(&mut self, conn: &mut C, token: u64) -> QueryResult<usize> {
        Call::insert_on_duplicate_key_update(self, token).execute(conn)
    }

    fn select_upserted(&self, conn: &mut C, token: u64) -> QueryResult<Option<(M, bool)>> {
        Call::select_upserted(self, token)
            .get_result(conn)
            .optional()
            .map_err(guarded)
    }
}

impl<C, P> UpsertIo for SyncIo<'_, C, P>
where
    C: Connection<Backend = Mysql>,
    P: SyncUpsert<C> + Send,
    P::Row: Send,
{
    async fn upsert(&mut self, token: u64) -> QueryResult<usize> {
        self.call.upsert(self.conn, token)
    }

    async fn select_upserted(&mut self, token: u64) -> QueryResult<Option<(P::Row, bool)>> {
        self.call.select_upserted(self.conn, token)
    }
}

#[cfg(feature = "async")]
mod asynchronous {
    //! The MySQL upsert on diesel-async connections.

    use core::future::Future;

    use diesel::deserialize::FromSqlRow;
    use diesel::expression::{Expression, QueryMetadata, Selectable};
    use diesel::mysql::Mysql;
    use diesel::query_builder::{QueryFragment, QueryId};
    use diesel::query_source::QuerySource;
    use diesel::sql_types::Bool;
    use diesel::{OptionalExtension, QueryResult};
    use diesel_async::{AsyncConnection, RunQueryDsl};

    use super::{guarded, RowAndUpdated, UpsertIo};
    use crate::call::{Call, SelectionOf};
    use crate::defaults::InsertValues;
    use crate::driver::asynchronous::{AsyncIo, AsyncStatements};
    use crate::key::{Lookup, LookupFilter, LookupQueryId};
    use crate::model::Model;

    /// The upsert of call `Self` on async MySQL connection `C`.
    pub trait AsyncUpsert<C: AsyncConnection<Backend = Mysql>>: AsyncStatements<C> {
        /// See [`UpsertIo::upsert`].
        fn upsert(
            &mut self,
            conn: &mut C,
            token: u64,
        ) -> impl Future<Output = QueryResult<usize>> + Send;

        /// See [`UpsertIo::select_upserted`].
        fn select_upserted(
            &self,
            conn: &mut C,
            token: u64,
        ) -> impl Future<Output = QueryResult<Option<(Self::Row, bool)>>> + Send;
    }

    impl<C, M, K, D, Mk, U> AsyncUpsert<C> for Call<M, K, D, Mk, U>
    where
        C: AsyncConnection<Backend = Mysql>,
        Self: AsyncStatements<C, Row = M>,
        M: Model + Selectable<Mysql> + Send + 'static,
        M::Table: QueryId + Send,
        <M::Table as QuerySource>::FromClause: QueryFragment<Mysql> + Send,
        M::SelectExpression: QueryId + Send,
        K: Lookup + LookupFilter<Mysql> + LookupQueryId + Clone + Send + Sync,
        D: InsertValues<M::Table, K, Mk> + Send + Sync,
        D::Values: QueryFragment<Mysql> + QueryId + Send + Sync,
        U: QueryFragment<Mysql> + Send + Sync,
        Mk: Send,
        RowAndUpdated<M>:
            Expression<SqlType = (SelectionOf<M, Mysql>, Bool)> + QueryFragment<Mysql> + QueryId,
        Mysql: QueryMetadata<(SelectionOf<M, Mysql>, Bool)>,
        (M, bool): FromSqlRow<(SelectionOf<M, Mysql>, Bool), Mysql>,
    {
        async fn upsert(&mut self, conn: &mut C, token: u64) -> QueryResult<usize> {
            Call::insert_on_duplicate_key_update(self, token)
                .execute(conn)
                .await
        }

        async fn select_upserted(
            &self,
            conn: &mut C,
            token: u64,
        ) -> QueryResult<Option<(M, bool)>> {
            Call::select_upserted(self, token)
                .get_result(conn)
                .await
                .optional()
                .map_err(guarded)
        }
    }

    impl<C, P> UpsertIo for AsyncIo<'_, C, P>
    where
        C: AsyncConnection<Backend = Mysql>,
        P: AsyncUpsert<C> + Send,
        P::Row: Send,
    {
        async fn upsert(&mut self, token: u64) -> QueryResult<usize> {
            self.call.upsert(self.conn, token).await
        }

        async fn select_upserted(&mut self, token: u64) -> QueryResult<Option<(P::Row, bool)>> {
            self.call.select_upserted(self.conn, token).await
        }
    }
}

#[cfg(test)]
mod tests;
