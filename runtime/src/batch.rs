//! Many keys at once: `get_or_create_all`.
//!
//! A batch is sorted by key and its repeated keys merged before any
//! statement runs ([`Batch::new`]): every caller then reads and inserts keys
//! in one order, so two batches over the same keys wait for each other
//! instead of deadlocking, and a key given twice is looked up and created
//! once (with the defaults of its first occurrence).
//!
//! The statements work on chunks of at most [`CHUNK`] keys, and match rows
//! to keys in SQL: each returned row carries the position of its key in the
//! chunk (`SELECT CASE WHEN <key 0> THEN 0 .. END, <row> .. WHERE <key 0> OR
//! <key 1> ..`; on SQLite `SELECT 0, <row> .. WHERE <key 0> UNION ALL SELECT
//! 1, ..`), so keys need no comparison with rows on the client, and the
//! database's own equality decides, collations included.
//!
//! * Every backend first reads the keys' existing rows, one statement per
//!   chunk.
//! * PostgreSQL inserts the missing keys of a chunk with one
//!   `INSERT .. ON CONFLICT (key) DO NOTHING RETURNING CASE <key 0> THEN 0 ..
//!   END, <row>`: the rows it returns are the call's; a key it skipped was
//!   committed by a concurrent caller, and one more read returns those keys'
//!   rows. At REPEATABLE READ and SERIALIZABLE a key committed after the
//!   snapshot fails the insert with a serialization failure, as for one key.
//! * MySQL and SQLite insert the missing keys of a chunk with one plain
//!   multi-row `INSERT`, which inserts every row or none: after it succeeds,
//!   one read returns the rows, all created by the call. A duplicate key
//!   means a concurrent caller committed one of the keys first: a read
//!   (a locking `LOCK IN SHARE MODE` read on MySQL, which sees the latest
//!   committed rows) returns those keys' rows and the rest are inserted
//!   again. A duplicate that no read explains (a unique index other than the
//!   key's, or two keys that the column's collation holds equal) makes the
//!   chunk's remaining keys go one at a time, as single calls would.

use core::future::Future;
use core::time::Duration;

use diesel::backend::Backend;
use diesel::expression::{Expression, Selectable};
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::query_source::QuerySource;
use diesel::result::Error;
use diesel::{Insertable, QueryResult, SelectableHelper};

use crate::algorithm::{is_duplicate, vanished, Errors, Runs, MAX_ATTEMPTS};
use crate::call::SelectionOf;
use crate::defaults::InsertRow;
use crate::key::{ColumnTuple, LookupFilter};
use crate::model::Model;
use crate::query::{push_column_list, From, LockClause};

/// The most keys one statement of a batch carries. 500 keeps every
/// statement under each backend's limits: SQLite's 500 terms of a compound
/// `SELECT` and its 32,766 bind parameters (for rows of up to 65 values),
/// PostgreSQL's and MySQL's 65,535.
pub const CHUNK: usize = 500;

/// The keys of one batch, in canonical order, where each input went, and
/// the changeset of `update_or_create_all_with` (`()` for
/// `get_or_create_all`).
pub struct Batch<M, K, D, Mk, U = ()>
where
    M: Model,
    D: InsertRow<M::Table, K, Mk>,
{
    /// The distinct keys, sorted.
    pub(crate) keys: Vec<K>,
    /// Each distinct key's defaults (its first occurrence's), until its row
    /// is built.
    defaults: Vec<Option<D>>,
    /// Each distinct key's row to insert, built on its first insert.
    rows: Vec<Option<D::Row>>,
    /// For each input, in input order, the index of its key in `keys`.
    input: Vec<usize>,
    /// The changeset applied to every key's existing row.
    pub(crate) changeset: U,
}

impl<M, K, D, Mk> Batch<M, K, D, Mk>
where
    M: Model,
    K: Ord + Clone,
    D: InsertRow<M::Table, K, Mk>,
    D::Row: Clone,
{
    /// The batch of `get_or_create_all`: see [`Batch::updating`].
    pub(crate) fn new(items: impl IntoIterator<Item = (K, D)>) -> Self {
        Batch::updating(items, ())
    }
}

impl<M, K, D, Mk, U> Batch<M, K, D, Mk, U>
where
    M: Model,
    K: Ord + Clone,
    D: InsertRow<M::Table, K, Mk>,
    D::Row: Clone,
{
    /// Sort the inputs by key (stable: equal keys keep input order) and keep
    /// the first occurrence of each key.
    pub(crate) fn updating(items: impl IntoIterator<Item = (K, D)>, changeset: U) -> Self {
        let mut items: Vec<(usize, K, D)> = items
            .into_iter()
            .enumerate()
            .map(|(i, (k, d))| (i, k, d))
            .collect();
        items.sort_by(|a, b| a.1.cmp(&b.1));
        let mut input = vec![0; items.len()];
        let mut keys: Vec<K> = Vec::with_capacity(items.len());
        let mut defaults = Vec::with_capacity(items.len());
        for (position, key, d) in items {
            if keys.last() != Some(&key) {
                keys.push(key);
                defaults.push(Some(d));
            }
            input[position] = keys.len() - 1;
        }
        let rows = (0..keys.len()).map(|_| None).collect();
        Batch {
            keys,
            defaults,
            rows,
            input,
            changeset,
        }
    }

    /// The rows to insert for keys `which`, in that order, each built (and
    /// its lazy defaults computed) on first use.
    pub(crate) fn rows(&mut self, which: &[usize]) -> Vec<D::Row> {
        which
            .iter()
            .map(|&i| {
                let (defaults, key) = (&mut self.defaults[i], &self.keys[i]);
                self.rows[i]
                    .get_or_insert_with(|| {
                        defaults
                            .take()
                            .expect("a key's defaults are taken once, by its first insert")
                            .row(key.clone())
                    })
                    .clone()
            })
            .collect()
    }

    /// `SELECT <position>, <row> FROM <table> WHERE <keys which> <lock>`
    /// (see [`SelectKeys`]), with `lock` the backend's [`BatchLock`].
    pub(crate) fn select_keys<DB>(
        &self,
        which: &[usize],
        lock: bool,
    ) -> SelectKeys<'_, M::Table, K, SelectionOf<M, DB>, DB::Lock>
    where
        DB: BatchLock,
        M: Selectable<DB>,
    {
        SelectKeys {
            from: From::of(M::table()),
            keys: self.keys(which),
            select: M::as_select(),
            lock: lock.then(DB::Lock::default),
        }
    }

    /// `UPDATE <table> SET <changeset> WHERE <keys which> <returning>`
    pub(crate) fn update_keys<S>(
        &self,
        which: &[usize],
        returning: Option<S>,
    ) -> UpdateKeys<'_, M::Table, U, K, S> {
        UpdateKeys {
            from: From::of(M::table()),
            changeset: &self.changeset,
            keys: self.keys(which),
            returning,
        }
    }

    /// The keys `which`, borrowed in that order.
    pub(crate) fn keys(&self, which: &[usize]) -> Vec<&K> {
        which.iter().map(|&i| &self.keys[i]).collect()
    }

    /// The result in input order: a repeated key's row, cloned, and not
    /// created after its first occurrence.
    pub(crate) fn finish<R: Clone>(&self, found: Vec<Option<(R, bool)>>) -> Vec<(R, bool)> {
        let mut first = vec![true; found.len()];
        self.input
            .iter()
            .map(|&i| {
                let (row, created) = found[i]
                    .as_ref()
                    .expect("a finished batch has a row for every key");
                let created = *created && core::mem::replace(&mut first[i], false);
                (row.clone(), created)
            })
            .collect()
    }
}

#[cfg(feature = "postgres")]
impl<M, K, D, Mk, U> Batch<M, K, D, Mk, U>
where
    M: Model + Selectable<diesel::pg::Pg>,
    K: crate::key::Lookup + Ord + Clone,
    D: InsertRow<M::Table, K, Mk>,
    D::Row: Clone,
    Vec<D::Row>: Insertable<M::Table>,
{
    /// `INSERT <rows which> ON CONFLICT (<key>) DO NOTHING RETURNING
    /// <position>, <row>`: the rows it inserted.
    pub(crate) fn insert_returning_keys(
        &mut self,
        which: &[usize],
    ) -> InsertDoNothingKeys<'_, M, K, D::Row> {
        let rows = self.rows(which);
        InsertReturningKeys {
            insert: insert_rows::<M, D::Row>(rows),
            conflict: crate::query::OnConflictDoNothing::new(),
            keys: self.keys(which),
            select: M::as_select(),
        }
    }

    /// `INSERT <rows which> ON CONFLICT (<key>) DO UPDATE SET <changeset>
    /// RETURNING <position>, <row>, (xmax = 0)`: every key's row, and
    /// whether the statement inserted it.
    pub(crate) fn upsert_keys(&mut self, which: &[usize]) -> UpsertKeys<'_, M, K, D::Row, U> {
        let rows = self.rows(which);
        InsertReturningKeys {
            insert: insert_rows::<M, D::Row>(rows),
            conflict: crate::postgres::OnConflictDoUpdate::new(&self.changeset),
            keys: self.keys(which),
            select: (M::as_select(), crate::postgres::XmaxIsZero),
        }
    }
}

/// The statements of one batch, as the algorithm asks for them. Keys are
/// indices into the batch's sorted distinct keys; every call passes at most
/// [`CHUNK`] of them, ascending.
pub trait BatchIo: Send {
    /// The row type: the model.
    type Row: Send;

    /// Whether the caller has a transaction open.
    fn in_transaction(&mut self) -> QueryResult<bool>;

    /// How many distinct keys the batch has.
    fn len(&self) -> usize;

    /// `SELECT 0, <row> FROM <table> WHERE <key> UNION ALL ..`: the rows
    /// of keys `which`, with `lock` (MySQL's `LOCK IN SHARE MODE`) on each.
    fn read(
        &mut self,
        which: &[usize],
        lock: bool,
    ) -> impl Future<Output = QueryResult<Vec<(usize, Self::Row)>>> + Send;

    /// One plain `INSERT` of the rows of keys `which`: all or none.
    fn insert(&mut self, which: &[usize]) -> impl Future<Output = QueryResult<usize>> + Send;

    /// Open a transaction, or a savepoint inside an open one.
    fn begin(&mut self) -> impl Future<Output = QueryResult<()>> + Send;

    /// Commit what [`begin`](BatchIo::begin) opened.
    fn commit(&mut self) -> impl Future<Output = QueryResult<()>> + Send;

    /// Roll back what [`begin`](BatchIo::begin) opened.
    fn rollback(&mut self) -> impl Future<Output = QueryResult<()>> + Send;

    /// Wait before running again.
    fn pause(&mut self, pause: Duration) -> impl Future<Output = ()> + Send;
}

/// `INSERT .. ON CONFLICT (<key>) DO NOTHING RETURNING <position>, <row>`
/// (PostgreSQL).
#[cfg(feature = "postgres")]
pub trait ReturningBatchIo: BatchIo {
    /// The rows this statement inserted, with their keys.
    fn insert_returning(
        &mut self,
        which: &[usize],
    ) -> impl Future<Output = QueryResult<Vec<(usize, Self::Row)>>> + Send;
}

/// The rows found so far, by distinct key: the row, and whether this call
/// created it.
type Found<R> = Vec<Option<(R, bool)>>;

/// How backend `Self` runs `get_or_create_all` on the steps of driver `E`.
pub trait BatchAlgorithms<E: BatchIo> {
    /// A row for every distinct key, and whether this call created it.
    #[doc(hidden)]
    fn get_or_create_all(io: &mut E) -> impl Future<Output = QueryResult<Found<E::Row>>> + Send;
}

/// `get_or_create_all` on every backend: a row for every distinct key, and
/// whether this call created it; `insert_missing` inserts (or finds, if a
/// concurrent caller committed them first) the keys of one chunk.
pub(crate) async fn get_or_create_all<E: BatchIo>(
    io: &mut E,
    errors: Errors,
    mut insert_missing: impl AsyncFnMut(&mut E, &[usize], bool, &mut Found<E::Row>) -> QueryResult<()>,
) -> QueryResult<Found<E::Row>> {
    let mut found: Found<E::Row> = (0..io.len()).map(|_| None).collect();
    let mut runs = Runs::new(!io.in_transaction()?, errors);
    loop {
        let result = run(io, &mut found, runs.standalone, &mut insert_missing).await;
        if let Some(result) = settle(io, errors, &mut runs, result).await {
            return result.map(|()| found);
        }
    }
}

/// After a run: its result, or `None` after a pause when a standalone call
/// runs again (after a serialization failure or a deadlock). A run again
/// keeps the rows the call already has: the rows it created or updated are
/// committed, and are neither created nor updated twice.
async fn settle<E: BatchIo>(
    io: &mut E,
    errors: Errors,
    runs: &mut Runs,
    result: QueryResult<()>,
) -> Option<QueryResult<()>> {
    let error = match result {
        Ok(()) => return Some(Ok(())),
        Err(error) => (errors.normalize)(error),
    };
    match runs.again(&error) {
        Some(pause) => {
            io.pause(pause).await;
            None
        }
        None => Some(Err(error)),
    }
}

fn missing<R>(found: &Found<R>) -> Vec<usize> {
    (0..found.len()).filter(|&i| found[i].is_none()).collect()
}

async fn run<E: BatchIo>(
    io: &mut E,
    found: &mut Found<E::Row>,
    standalone: bool,
    insert_missing: &mut impl AsyncFnMut(&mut E, &[usize], bool, &mut Found<E::Row>) -> QueryResult<()>,
) -> QueryResult<()> {
    for chunk in missing(found).chunks(CHUNK) {
        record(found, io.read(chunk, false).await?, false);
    }
    for _ in 0..MAX_ATTEMPTS {
        let missing = missing(found);
        if missing.is_empty() {
            return Ok(());
        }
        for chunk in missing.chunks(CHUNK) {
            insert_missing(io, chunk, standalone, found).await?;
        }
    }
    // Each attempt left keys without a row: concurrent deletes.
    Err(vanished())
}

fn record<R>(found: &mut Found<R>, rows: Vec<(usize, R)>, created: bool) {
    for (i, row) in rows {
        found[i] = Some((row, created));
    }
}

/// MySQL and SQLite: one plain multi-row insert of the chunk; on a
/// duplicate key, read what concurrent callers committed and insert the
/// rest; on a duplicate no read explains, one key at a time.
#[cfg(any(feature = "mysql", feature = "sqlite"))]
pub(crate) async fn insert_all_or_none<E: BatchIo>(
    io: &mut E,
    chunk: &[usize],
    lock: bool,
    found: &mut Found<E::Row>,
) -> QueryResult<()> {
    match io.insert(chunk).await {
        // Keys without a row now were deleted since: the next attempt.
        Ok(_) => {
            let rows = io.read(chunk, false).await?;
            record(found, rows, true);
            Ok(())
        }
        Err(error) if is_duplicate(&error) => {
            let rows = io.read(chunk, lock).await?;
            if !rows.is_empty() {
                record(found, rows, false);
                return Ok(());
            }
            for &key in chunk {
                insert_one(io, key, lock, found).await?;
            }
            Ok(())
        }
        Err(error) => Err(error),
    }
}

/// One key of a chunk whose duplicate no read explained: what a single
/// `get_or_create` does after its `SELECT` missed.
#[cfg(any(feature = "mysql", feature = "sqlite"))]
async fn insert_one<E: BatchIo>(
    io: &mut E,
    key: usize,
    lock: bool,
    found: &mut Found<E::Row>,
) -> QueryResult<()> {
    match io.insert(&[key]).await {
        Ok(_) => record(found, io.read(&[key], false).await?, true),
        Err(error) if is_duplicate(&error) => {
            let rows = io.read(&[key], lock).await?;
            if rows.is_empty() {
                // Not the key's index: another unique column's conflict.
                return Err(error);
            }
            record(found, rows, false);
        }
        Err(error) => return Err(error),
    }
    Ok(())
}

/// PostgreSQL: one `INSERT .. ON CONFLICT (key) DO NOTHING RETURNING` of
/// the chunk (in a savepoint inside the caller's transaction), then one read
/// of the keys it skipped.
///
/// A unique violation (on another index: `ON CONFLICT` absorbs only the
/// key's) may come from a concurrent insert of one of the keys with the same
/// value of another unique column. A read that finds rows for some of the
/// keys explains it, and the next attempt inserts the rest. Otherwise the
/// next attempt runs the insert once more (`unexplained` counts): at READ
/// COMMITTED it now conflicts on the key, and at REPEATABLE READ a key
/// committed after the snapshot fails it with a serialization failure, as
/// for one key; a second unexplained violation is a real conflict, and
/// returned.
#[cfg(feature = "postgres")]
pub(crate) async fn insert_returning<E: ReturningBatchIo>(
    io: &mut E,
    chunk: &[usize],
    standalone: bool,
    found: &mut Found<E::Row>,
    unexplained: &mut u32,
) -> QueryResult<()> {
    let inserted = wrapped(io, !standalone, async |io| io.insert_returning(chunk).await).await;
    match inserted {
        Ok(rows) => record(found, rows, true),
        Err(error) if is_duplicate(&error) => {
            let rows = io.read(chunk, false).await?;
            if rows.is_empty() {
                *unexplained += 1;
                if *unexplained >= 2 {
                    return Err(error);
                }
            }
            record(found, rows, false);
            return Ok(());
        }
        Err(error) => return Err(error),
    }
    let lost: Vec<usize> = chunk
        .iter()
        .copied()
        .filter(|&i| found[i].is_none())
        .collect();
    if !lost.is_empty() {
        record(found, io.read(&lost, false).await?, false);
    }
    Ok(())
}

/// `step` in a transaction (a savepoint inside the caller's) when `wrap`:
/// committed after a success, rolled back after an error, which is
/// returned (or the rollback's own, if it failed otherwise than by a broken
/// transaction manager), as Diesel's `transaction` does.
async fn wrapped<E: BatchIo, R>(
    io: &mut E,
    wrap: bool,
    step: impl AsyncFnOnce(&mut E) -> QueryResult<R>,
) -> QueryResult<R> {
    if !wrap {
        return step(io).await;
    }
    io.begin().await?;
    match step(io).await {
        Ok(value) => io.commit().await.map(|()| value),
        Err(error) => match io.rollback().await {
            Ok(()) | Err(Error::BrokenTransactionManager) => Err(error),
            Err(rollback_error) => Err(rollback_error),
        },
    }
}

/// The update steps of `update_or_create_all_with`.
pub trait UpdateBatchIo: BatchIo {
    /// Whether the changeset renders nothing (an all-`None` struct): the
    /// operation is then `get_or_create_all`.
    fn update_is_noop(&self) -> QueryResult<bool>;

    /// `UPDATE <table> SET <changeset> WHERE <key 0> OR <key 1> ..`: the
    /// number of rows matched.
    fn update(&mut self, which: &[usize]) -> impl Future<Output = QueryResult<usize>> + Send;
}

/// `UPDATE .. RETURNING <position>, <row>` (SQLite, PostgreSQL).
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub trait UpdateReturningBatchIo: UpdateBatchIo {
    /// The rows this statement updated, with their keys.
    fn update_returning(
        &mut self,
        which: &[usize],
    ) -> impl Future<Output = QueryResult<Vec<(usize, Self::Row)>>> + Send;
}

/// How backend `Self` runs `update_or_create_all_with` on the steps of
/// driver `E`.
pub trait BatchUpdateAlgorithms<E: UpdateBatchIo>: BatchAlgorithms<E> {
    /// A row for every distinct key, and whether this call created it
    /// (else it updated it), for a changeset that is not empty.
    #[doc(hidden)]
    fn update_or_create_all(io: &mut E) -> impl Future<Output = QueryResult<Found<E::Row>>> + Send;

    /// The same for `update_or_create_all`, whose changeset is
    /// [`SetToValues`]: each key's own values.
    #[doc(hidden)]
    fn update_or_create_each(io: &mut E)
        -> impl Future<Output = QueryResult<Found<E::Row>>> + Send;
}

/// `update_or_create_all` on any backend: with no column to set, the
/// operation is `get_or_create_all`.
pub(crate) async fn update_or_create_each<DB, E>(io: &mut E) -> QueryResult<Found<E::Row>>
where
    DB: BatchUpdateAlgorithms<E>,
    E: UpdateBatchIo,
{
    if io.update_is_noop()? {
        DB::get_or_create_all(io).await
    } else {
        DB::update_or_create_each(io).await
    }
}

/// `update_or_create_all_with` on any backend: with nothing to update, the
/// operation is `get_or_create_all`.
pub(crate) async fn update_or_create_all_with<DB, E>(io: &mut E) -> QueryResult<Found<E::Row>>
where
    DB: BatchUpdateAlgorithms<E>,
    E: UpdateBatchIo,
{
    if io.update_is_noop()? {
        DB::get_or_create_all(io).await
    } else {
        DB::update_or_create_all(io).await
    }
}

/// `update_or_create_all_with` on every backend. Each attempt updates the
/// keys' existing rows (`update` on a chunk: the rows it updated), then
/// inserts the rest with `insert_missing`, which finds the keys that a
/// concurrent caller committed first: those are updated by the next
/// attempt. A row is created or updated once, never both.
///
/// With `read_first` (MySQL) a plain read decides which keys to update: an
/// `UPDATE` that matches nothing at REPEATABLE READ would lock the gap where
/// the key goes until the transaction ends, and deadlock concurrent
/// inserters. Keys known to exist (found by an insert's duplicate) are not
/// read again: a plain read inside the caller's transaction would not see
/// them.
///
/// MySQL and SQLite insert a chunk and read it back in separate statements:
/// standalone, both run in a transaction of their own, so that a row is
/// returned as this call created it, before any concurrent update.
pub(crate) async fn update_or_create_all<E: BatchIo>(
    io: &mut E,
    errors: Errors,
    read_first: bool,
    mut update: impl AsyncFnMut(&mut E, &[usize], bool, &mut Found<E::Row>) -> QueryResult<()>,
    mut insert_missing: impl AsyncFnMut(&mut E, &[usize], bool, &mut Found<E::Row>) -> QueryResult<()>,
) -> QueryResult<Found<E::Row>> {
    let mut found: Found<E::Row> = (0..io.len()).map(|_| None).collect();
    let mut exists = vec![false; io.len()];
    let mut runs = Runs::new(!io.in_transaction()?, errors);
    loop {
        let steps = (&mut update, &mut insert_missing);
        let result = run_update(
            io,
            &mut found,
            &mut exists,
            read_first,
            runs.standalone,
            steps,
        )
        .await;
        if let Some(result) = settle(io, errors, &mut runs, result).await {
            return result.map(|()| found);
        }
    }
}

/// One run of `update_or_create_all`.
async fn run_update<E: BatchIo>(
    io: &mut E,
    found: &mut Found<E::Row>,
    exists: &mut [bool],
    read_first: bool,
    standalone: bool,
    (update, insert_missing): (
        &mut impl AsyncFnMut(&mut E, &[usize], bool, &mut Found<E::Row>) -> QueryResult<()>,
        &mut impl AsyncFnMut(&mut E, &[usize], bool, &mut Found<E::Row>) -> QueryResult<()>,
    ),
) -> QueryResult<()> {
    for _ in 0..MAX_ATTEMPTS {
        let todo = missing(found);
        if todo.is_empty() {
            return Ok(());
        }
        if read_first {
            let unknown: Vec<usize> = todo.iter().copied().filter(|&i| !exists[i]).collect();
            for chunk in unknown.chunks(CHUNK) {
                for (i, _) in io.read(chunk, false).await? {
                    exists[i] = true;
                }
            }
        }
        let targets: Vec<usize> = todo
            .iter()
            .copied()
            .filter(|&i| !read_first || exists[i])
            .collect();
        for chunk in targets.chunks(CHUNK) {
            update(io, chunk, standalone, found).await?;
        }
        for &i in &todo {
            exists[i] = false;
        }
        let absent: Vec<usize> = todo.into_iter().filter(|&i| found[i].is_none()).collect();
        for chunk in absent.chunks(CHUNK) {
            insert_missing(io, chunk, standalone, found).await?;
            // Found, not created: a concurrent caller's row, to update.
            for &i in chunk {
                if matches!(found[i], Some((_, false))) {
                    found[i] = None;
                    exists[i] = true;
                }
            }
        }
    }
    // Each attempt left keys without a row: concurrent deletes.
    Err(vanished())
}

/// MySQL's update of a chunk: the `UPDATE`, then a locking read of the rows
/// (which sees this transaction's writes), in a transaction of their own
/// when standalone, so that the rows returned are exactly the rows written.
///
/// A read that returns more rows than the update matched met a key whose row
/// a concurrent caller deleted and created again in between. Standalone,
/// the step is rolled back and returns no row: the keys go to the insert,
/// which finds them, and the next attempt updates them. Inside the caller's
/// transaction the update cannot be undone alone, and the error is
/// [`replaced`](crate::algorithm::replaced), a serialization failure.
#[cfg(feature = "mysql")]
async fn update_then_read<E: UpdateBatchIo>(
    io: &mut E,
    chunk: &[usize],
    standalone: bool,
) -> QueryResult<Vec<(usize, E::Row)>> {
    let updated = wrapped(io, standalone, async |io| {
        let matched = io.update(chunk).await?;
        let rows = io.read(chunk, true).await?;
        if rows.len() == matched {
            Ok(rows)
        } else {
            Err(crate::algorithm::replaced())
        }
    })
    .await;
    match updated {
        Err(error) if standalone && crate::algorithm::is_replaced(&error) => Ok(Vec::new()),
        updated => updated,
    }
}

/// A row an upsert returned, and whether it inserted it.
#[cfg(feature = "postgres")]
pub type Upserted<R> = (R, bool);

/// PostgreSQL's batch upsert.
#[cfg(feature = "postgres")]
pub trait UpsertBatchIo: ReturningBatchIo + UpdateReturningBatchIo {
    /// `INSERT .. ON CONFLICT (<key>) DO UPDATE SET <changeset> RETURNING
    /// <position>, <row>, (xmax = 0)`: every key's row, and whether this
    /// statement inserted it.
    fn upsert(
        &mut self,
        which: &[usize],
    ) -> impl Future<Output = QueryResult<Vec<(usize, Upserted<Self::Row>)>>> + Send;
}

/// PostgreSQL's update of a chunk: one upsert, which updates or creates
/// every key's row, taking the rows' locks in key order (in a savepoint
/// inside the caller's transaction).
///
/// A unique violation on another index may come from a concurrent insert of
/// one of the keys, committed since (PostgreSQL checks the other unique
/// indexes after the key's): the upsert runs once more, and now updates
/// that row. PostgreSQL also evaluates each row to insert before it looks
/// for a conflict: create values that cannot form a row (a NULL, a failed
/// CHECK, a value too long) fail the upsert even for keys whose row exists.
/// After either (the violation a second time), the chunk's existing rows
/// are updated with `UPDATE .. RETURNING`, and the missing keys go to the
/// insert, which returns the create values' own error.
///
/// Without `fallback` (`update_or_create_all`, whose changeset exists only
/// in an upsert) the error is returned instead.
#[cfg(feature = "postgres")]
async fn upsert<E: UpsertBatchIo>(
    io: &mut E,
    chunk: &[usize],
    standalone: bool,
    found: &mut Found<E::Row>,
    fallback: bool,
) -> QueryResult<()> {
    let mut again = true;
    loop {
        match wrapped(io, !standalone, async |io| io.upsert(chunk).await).await {
            Ok(rows) => {
                for (i, row) in rows {
                    found[i] = Some(row);
                }
                return Ok(());
            }
            Err(error) if is_duplicate(&error) && core::mem::replace(&mut again, false) => {}
            Err(error)
                if fallback
                    && (is_duplicate(&error)
                        || crate::postgres::create_values_may_have_failed(&error)) =>
            {
                record(found, io.update_returning(chunk).await?, false);
                return Ok(());
            }
            Err(error) => return Err(error),
        }
    }
}

/// `SELECT CASE WHEN <key 0> THEN 0 .. END, <select> FROM <table> WHERE
/// <key 0> OR <key 1> .. <lock>`, or on SQLite `SELECT 0, <select> FROM
/// <table> WHERE <key 0> UNION ALL SELECT 1, ..` (one branch per key, each
/// using the key's unique index).
pub(crate) struct SelectKeys<'a, T: QuerySource, K, S, L> {
    pub(crate) from: From<T>,
    pub(crate) keys: Vec<&'a K>,
    pub(crate) select: S,
    pub(crate) lock: Option<L>,
}

impl<T, K, S, L, DB> QueryFragment<DB> for SelectKeys<'_, T, K, S, L>
where
    DB: BatchLock,
    T: QuerySource,
    T::FromClause: QueryFragment<DB>,
    K: LookupFilter<DB>,
    S: QueryFragment<DB>,
    L: LockClause<DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        if self.lock.is_some() {
            // A prepared locking read that fails with a deadlock after
            // sending some of its rows is left waiting for rows by
            // libmariadb, and its next run on the connection never returns
            // (seen in the overlapping batch race; reproduced with plain
            // Diesel): prepare it afresh each time.
            out.unsafe_to_cache_prepared();
        }
        if !DB::UNION {
            out.push_sql("SELECT ");
            push_positions(&self.keys, &mut out)?;
            out.push_sql(", ");
            self.select.walk_ast(out.reborrow())?;
            out.push_sql(" FROM ");
            self.from.0.walk_ast(out.reborrow())?;
            out.push_sql(" WHERE ");
            push_any_key(&self.keys, &mut out)?;
            if let Some(lock) = &self.lock {
                lock.walk_ast(out.reborrow())?;
            }
            return Ok(());
        }
        for (n, key) in self.keys.iter().enumerate() {
            if n > 0 {
                out.push_sql(" UNION ALL ");
            }
            out.push_sql("SELECT ");
            out.push_sql(&n.to_string());
            out.push_sql(", ");
            self.select.walk_ast(out.reborrow())?;
            out.push_sql(" FROM ");
            self.from.0.walk_ast(out.reborrow())?;
            out.push_sql(" WHERE ");
            key.walk_filter(out.reborrow())?;
        }
        Ok(())
    }
}

/// `<key 0> OR <key 1> ..`
fn push_any_key<'b, K: LookupFilter<DB>, DB: Backend>(
    keys: &'b [&'b K],
    out: &mut AstPass<'_, 'b, DB>,
) -> QueryResult<()> {
    for (n, key) in keys.iter().enumerate() {
        if n > 0 {
            out.push_sql(" OR ");
        }
        key.walk_filter(out.reborrow())?;
    }
    Ok(())
}

/// `<column> IN ($1, $2 ..)`, or for a key of several columns `(<columns>)
/// IN (VALUES ($1, $2), ($3, $4) ..)`: SQLite's `UPDATE` takes about six
/// times as long with `<key 0> OR <key 1> ..` (2.0 ms against 0.33 ms for
/// 100 keys of 20,000 rows).
fn push_keys_in<'b, K: LookupFilter<DB>, DB: Backend>(
    keys: &'b [&'b K],
    out: &mut AstPass<'_, 'b, DB>,
) -> QueryResult<()> {
    let composite = <K::Columns as ColumnTuple>::NAMES.len() > 1;
    out.push_sql("(");
    push_column_list::<K::Columns, DB>(out)?;
    out.push_sql(if composite { ") IN (VALUES " } else { ") IN (" });
    for (n, key) in keys.iter().enumerate() {
        if n > 0 {
            out.push_sql(", ");
        }
        if composite {
            out.push_sql("(");
        }
        key.walk_values(out.reborrow())?;
        if composite {
            out.push_sql(")");
        }
    }
    out.push_sql(")");
    Ok(())
}

/// `UPDATE <table> SET <changeset> WHERE <key 0> OR <key 1> ..` (on SQLite
/// `WHERE <key columns> IN (..)`: [`push_keys_in`]), and with a
/// selection ` RETURNING CASE WHEN <key 0> THEN 0 .. END, <select>`.
pub(crate) struct UpdateKeys<'a, T: QuerySource, U, K, S> {
    pub(crate) from: From<T>,
    pub(crate) changeset: &'a U,
    pub(crate) keys: Vec<&'a K>,
    pub(crate) returning: Option<S>,
}

impl<T, U, K, S, DB> QueryFragment<DB> for UpdateKeys<'_, T, U, K, S>
where
    DB: BatchLock,
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
        if DB::UNION {
            push_keys_in(&self.keys, &mut out)?;
        } else {
            push_any_key(&self.keys, &mut out)?;
        }
        if let Some(select) = &self.returning {
            out.push_sql(" RETURNING ");
            push_positions(&self.keys, &mut out)?;
            out.push_sql(", ");
            select.walk_ast(out.reborrow())?;
        }
        Ok(())
    }
}

/// The SQL depends on the number of keys: cached by its text.
impl<T: QuerySource, U, K, S> QueryId for UpdateKeys<'_, T, U, K, S> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<T: QuerySource, U, K, S: Expression> Query for UpdateKeys<'_, T, U, K, S> {
    type SqlType = (diesel::sql_types::Integer, S::SqlType);
}

impl<T: QuerySource, U, K, S> diesel::query_dsl::RunQueryDslSupport for UpdateKeys<'_, T, U, K, S> {}

/// `CASE WHEN <key 0> THEN 0 WHEN <key 1> THEN 1 .. END`: the position of
/// the key a row has.
fn push_positions<'b, K: LookupFilter<DB>, DB: Backend>(
    keys: &'b [&'b K],
    out: &mut AstPass<'_, 'b, DB>,
) -> QueryResult<()> {
    out.push_sql("CASE");
    for (n, key) in keys.iter().enumerate() {
        out.push_sql(" WHEN ");
        key.walk_filter(out.reborrow())?;
        out.push_sql(" THEN ");
        out.push_sql(&n.to_string());
    }
    out.push_sql(" END");
    Ok(())
}

/// The SQL depends on the number of keys: cached by its text.
impl<T: QuerySource, K, S, L> QueryId for SelectKeys<'_, T, K, S, L> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<T: QuerySource, K, S: Expression, L> Query for SelectKeys<'_, T, K, S, L> {
    type SqlType = (diesel::sql_types::Integer, S::SqlType);
}

impl<T: QuerySource, K, S, L> diesel::query_dsl::RunQueryDslSupport for SelectKeys<'_, T, K, S, L> {}

/// The plain multi-row insert of `rows` into `M`'s table, as Diesel builds
/// it (`insert_into(table).values(rows)`).
pub(crate) type InsertRows<M, R> = diesel::query_builder::InsertStatement<
    <M as Model>::Table,
    <Vec<R> as Insertable<<M as Model>::Table>>::Values,
>;

/// Diesel's `insert_into(table).values(rows)`.
pub(crate) fn insert_rows<M, R>(rows: Vec<R>) -> InsertRows<M, R>
where
    M: Model,
    Vec<R>: Insertable<M::Table>,
{
    diesel::insert_into(M::table()).values(rows)
}

/// `<insert> ON CONFLICT (<key>) DO NOTHING RETURNING CASE WHEN <key 0>
/// THEN 0 .. END, <select>` (PostgreSQL): the rows the insert wrote, each
/// with the position of its key; or with `DO UPDATE SET <changeset>`, every
/// key's row.
#[cfg(feature = "postgres")]
pub(crate) struct InsertReturningKeys<'a, I, X, K, S> {
    pub(crate) insert: I,
    pub(crate) conflict: X,
    pub(crate) keys: Vec<&'a K>,
    pub(crate) select: S,
}

#[cfg(feature = "postgres")]
impl<I, X, K, S> QueryFragment<diesel::pg::Pg> for InsertReturningKeys<'_, I, X, K, S>
where
    I: QueryFragment<diesel::pg::Pg>,
    X: QueryFragment<diesel::pg::Pg>,
    K: LookupFilter<diesel::pg::Pg>,
    S: QueryFragment<diesel::pg::Pg>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, diesel::pg::Pg>) -> QueryResult<()> {
        self.insert.walk_ast(out.reborrow())?;
        self.conflict.walk_ast(out.reborrow())?;
        out.push_sql(" RETURNING ");
        push_positions(&self.keys, &mut out)?;
        out.push_sql(", ");
        self.select.walk_ast(out.reborrow())
    }
}

/// [`Batch::insert_returning_keys`]: the insert of rows `R` into `M`'s
/// table, `ON CONFLICT DO NOTHING`, returning the model.
#[cfg(feature = "postgres")]
pub(crate) type InsertDoNothingKeys<'a, M, K, R> = InsertReturningKeys<
    'a,
    InsertRows<M, R>,
    crate::query::OnConflictDoNothing<<K as crate::key::Lookup>::Columns>,
    K,
    SelectionOf<M, diesel::pg::Pg>,
>;

/// [`Batch::upsert_keys`]: the insert of rows `R` into `M`'s table, `ON
/// CONFLICT DO UPDATE SET <changeset U>`, returning the model and whether
/// it inserted it.
#[cfg(feature = "postgres")]
pub(crate) type UpsertKeys<'a, M, K, R, U> = InsertReturningKeys<
    'a,
    InsertRows<M, R>,
    crate::postgres::OnConflictDoUpdate<'a, <K as crate::key::Lookup>::Columns, U>,
    K,
    (SelectionOf<M, diesel::pg::Pg>, crate::postgres::XmaxIsZero),
>;

#[cfg(feature = "postgres")]
impl<I, X, K, S> QueryId for InsertReturningKeys<'_, I, X, K, S> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

#[cfg(feature = "postgres")]
impl<I, X, K, S: Expression> Query for InsertReturningKeys<'_, I, X, K, S> {
    type SqlType = (diesel::sql_types::Integer, S::SqlType);
}

#[cfg(feature = "postgres")]
impl<I, X, K, S> diesel::query_dsl::RunQueryDslSupport for InsertReturningKeys<'_, I, X, K, S> {}

/// The keys a statement returned a position for, as batch indices.
pub(crate) fn positions<R>(which: &[usize], rows: Vec<(i32, R)>) -> QueryResult<Vec<(usize, R)>> {
    rows.into_iter()
        .map(|(n, row)| {
            usize::try_from(n)
                .ok()
                .and_then(|n| which.get(n))
                .map(|&i| (i, row))
                .ok_or_else(|| {
                    Error::DeserializationError(
                        format!(
                            "a batch statement returned key position {n} of {}",
                            which.len()
                        )
                        .into(),
                    )
                })
        })
        .collect()
}

/// The lock of a batch's locking read: MySQL's `LOCK IN SHARE MODE`; no
/// other backend asks for one.
pub trait BatchLock: Backend {
    /// The clause.
    #[doc(hidden)]
    type Lock: LockClause<Self> + QueryId + Default;
    /// Whether the batch read is a `UNION ALL` of one `SELECT` per key
    /// and the batch update's condition `<key columns> IN (..)` (SQLite,
    /// whose planner handles a long `OR` of keys poorly) rather than
    /// `<key 0> OR <key 1> ..` (half the time of the union on MariaDB).
    #[doc(hidden)]
    const UNION: bool;
}

#[cfg(feature = "postgres")]
impl BatchLock for diesel::pg::Pg {
    type Lock = ();
    const UNION: bool = false;
}

#[cfg(feature = "sqlite")]
impl BatchLock for diesel::sqlite::Sqlite {
    type Lock = ();
    const UNION: bool = true;
}

#[cfg(feature = "mysql")]
impl BatchLock for diesel::mysql::Mysql {
    type Lock = crate::mysql::LockInShareMode;
    const UNION: bool = false;
}

#[cfg(feature = "postgres")]
impl<E: ReturningBatchIo> BatchAlgorithms<E> for diesel::pg::Pg {
    async fn get_or_create_all(io: &mut E) -> QueryResult<Found<E::Row>> {
        let mut unexplained = 0;
        get_or_create_all(
            io,
            crate::postgres::ERRORS,
            async move |io, missing, standalone, found| {
                insert_returning(io, missing, standalone, found, &mut unexplained).await
            },
        )
        .await
    }
}

#[cfg(feature = "mysql")]
impl<E: BatchIo> BatchAlgorithms<E> for diesel::mysql::Mysql {
    async fn get_or_create_all(io: &mut E) -> QueryResult<Found<E::Row>> {
        get_or_create_all(io, crate::mysql::ERRORS, async |io, missing, _, found| {
            insert_all_or_none(io, missing, true, found).await
        })
        .await
    }
}

#[cfg(feature = "sqlite")]
impl<E: BatchIo> BatchAlgorithms<E> for diesel::sqlite::Sqlite {
    async fn get_or_create_all(io: &mut E) -> QueryResult<Found<E::Row>> {
        get_or_create_all(io, crate::sqlite::ERRORS, async |io, missing, _, found| {
            insert_all_or_none(io, missing, false, found).await
        })
        .await
    }
}

#[cfg(feature = "postgres")]
impl<E: UpsertBatchIo> BatchUpdateAlgorithms<E> for diesel::pg::Pg {
    async fn update_or_create_all(io: &mut E) -> QueryResult<Found<E::Row>> {
        let mut unexplained = 0;
        update_or_create_all(
            io,
            crate::postgres::ERRORS,
            false,
            async |io, chunk, standalone, found| upsert(io, chunk, standalone, found, true).await,
            async move |io, missing, standalone, found| {
                insert_returning(io, missing, standalone, found, &mut unexplained).await
            },
        )
        .await
    }

    async fn update_or_create_each(io: &mut E) -> QueryResult<Found<E::Row>> {
        let mut unexplained = 0;
        update_or_create_all(
            io,
            crate::postgres::ERRORS,
            false,
            async |io, chunk, standalone, found| upsert(io, chunk, standalone, found, false).await,
            async move |io, missing, standalone, found| {
                insert_returning(io, missing, standalone, found, &mut unexplained).await
            },
        )
        .await
    }
}

#[cfg(feature = "mysql")]
impl<E: UpsertRowsBatchIo> BatchUpdateAlgorithms<E> for diesel::mysql::Mysql {
    async fn update_or_create_all(io: &mut E) -> QueryResult<Found<E::Row>> {
        update_or_create_all(
            io,
            crate::mysql::ERRORS,
            true,
            async |io, chunk, standalone, found| {
                record(found, update_then_read(io, chunk, standalone).await?, false);
                Ok(())
            },
            async |io, missing, standalone, found| {
                let insert = async |io: &mut E| insert_all_or_none(io, missing, true, found).await;
                wrapped(io, standalone, insert).await
            },
        )
        .await
    }

    async fn update_or_create_each(io: &mut E) -> QueryResult<Found<E::Row>> {
        update_or_create_all(
            io,
            crate::mysql::ERRORS,
            true,
            async |io, chunk, standalone, found| {
                record(
                    found,
                    each::lock_then_upsert(io, chunk, standalone).await?,
                    false,
                );
                Ok(())
            },
            async |io, missing, standalone, found| {
                let insert = async |io: &mut E| insert_all_or_none(io, missing, true, found).await;
                wrapped(io, standalone, insert).await
            },
        )
        .await
    }
}

#[cfg(feature = "sqlite")]
impl<E: UpdateReturningBatchIo + UpsertRowsBatchIo> BatchUpdateAlgorithms<E>
    for diesel::sqlite::Sqlite
{
    async fn update_or_create_all(io: &mut E) -> QueryResult<Found<E::Row>> {
        update_or_create_all(
            io,
            crate::sqlite::ERRORS,
            false,
            async |io, chunk, _, found| {
                record(found, io.update_returning(chunk).await?, false);
                Ok(())
            },
            async |io, missing, standalone, found| {
                let insert = async |io: &mut E| insert_all_or_none(io, missing, false, found).await;
                wrapped(io, standalone, insert).await
            },
        )
        .await
    }

    async fn update_or_create_each(io: &mut E) -> QueryResult<Found<E::Row>> {
        update_or_create_all(
            io,
            crate::sqlite::ERRORS,
            false,
            async |io, chunk, standalone, found| {
                record(
                    found,
                    each::lock_then_upsert(io, chunk, standalone).await?,
                    false,
                );
                Ok(())
            },
            async |io, missing, standalone, found| {
                let insert = async |io: &mut E| insert_all_or_none(io, missing, false, found).await;
                wrapped(io, standalone, insert).await
            },
        )
        .await
    }
}

#[cfg(feature = "async")]
pub(crate) mod asynchronous;
pub(crate) mod each;
pub use each::UpsertRowsBatchIo;
#[cfg(feature = "sqlite")]
pub(crate) mod sqlite_text;

pub(crate) mod sync {
    //! The batch statements on any `diesel::Connection`.

    use core::time::Duration;

    use diesel::backend::Backend;
    use diesel::connection::{LoadConnection, TransactionManager};
    use diesel::deserialize::FromSqlRow;
    use diesel::expression::{QueryMetadata, Selectable};
    use diesel::query_builder::{AsChangeset, QueryFragment, QueryId};
    use diesel::query_dsl::methods::ExecuteDsl;
    use diesel::query_source::QuerySource;
    use diesel::sql_types::Integer;
    use diesel::{Connection, Insertable, QueryResult, RunQueryDsl, SelectableHelper};

    use super::each::{columns_of, Each, SetToValues};
    #[cfg(any(feature = "postgres", feature = "sqlite"))]
    use super::UpdateReturningBatchIo;
    use super::{
        insert_rows, positions, update_or_create_all_with, update_or_create_each, Batch,
        BatchAlgorithms, BatchIo, BatchLock, BatchUpdateAlgorithms, InsertRows, UpdateBatchIo,
        UpsertRowsBatchIo,
    };
    use crate::call::SelectionOf;
    use crate::defaults::InsertRow;
    use crate::driver::sync::block_on;
    use crate::key::{Lookup, LookupFilter};
    use crate::model::Model;
    use crate::query::SupportsReturning;

    /// A connection and one batch: what the batch algorithm's steps run on.
    pub struct SyncBatchIo<'c, C, M, K, D, Mk, U = ()>
    where
        M: Model,
        D: InsertRow<M::Table, K, Mk>,
    {
        pub(crate) conn: &'c mut C,
        pub(crate) batch: Batch<M, K, D, Mk, U>,
    }

    /// The batch statements of `Self` on connection `C`, synchronously:
    /// Diesel's loading bounds, stated once.
    pub trait SyncBatchStatements<C: Connection> {
        /// The row: the model.
        type Row;
        /// See [`BatchIo::read`].
        fn read(
            &self,
            conn: &mut C,
            which: &[usize],
            lock: bool,
        ) -> QueryResult<Vec<(usize, Self::Row)>>;
        /// See [`BatchIo::insert`].
        fn insert(&mut self, conn: &mut C, which: &[usize]) -> QueryResult<usize>;
        /// See [`UpdateBatchIo::update_is_noop`].
        fn update_is_noop(&self) -> QueryResult<bool>;
        /// See [`UpdateBatchIo::update`].
        fn update(&self, conn: &mut C, which: &[usize]) -> QueryResult<usize>;
        /// See [`UpdateReturningBatchIo::update_returning`].
        fn update_returning(
            &self,
            conn: &mut C,
            which: &[usize],
        ) -> QueryResult<Vec<(usize, Self::Row)>>
        where
            C::Backend: SupportsReturning;
    }

    impl<C, DB, M, K, D, Mk, U> SyncBatchStatements<C> for Batch<M, K, D, Mk, U>
    where
        C: Connection<Backend = DB> + LoadConnection,
        DB: Backend + Default + BatchLock + QueryMetadata<(Integer, SelectionOf<M, DB>)> + 'static,
        M: Model + Selectable<DB> + 'static,
        M::SelectExpression: QueryId,
        (i32, M): FromSqlRow<(Integer, SelectionOf<M, DB>), DB>,
        <M::Table as QuerySource>::FromClause: QueryFragment<DB>,
        SelectionOf<M, DB>: QueryFragment<DB>,
        K: Lookup + LookupFilter<DB> + Ord + Clone,
        D: InsertRow<M::Table, K, Mk>,
        D::Row: Clone,
        Vec<D::Row>: Insertable<M::Table>,
        InsertRows<M, D::Row>: ExecuteDsl<C>,
        U: QueryFragment<DB>,
    {
        type Row = M;

        fn read(&self, conn: &mut C, which: &[usize], lock: bool) -> QueryResult<Vec<(usize, M)>> {
            let rows = self.select_keys::<DB>(which, lock).load::<(i32, M)>(conn)?;
            positions(which, rows)
        }

        fn insert(&mut self, conn: &mut C, which: &[usize]) -> QueryResult<usize> {
            insert_rows::<M, D::Row>(self.rows(which)).execute(conn)
        }

        fn update_is_noop(&self) -> QueryResult<bool> {
            self.changeset.is_noop(&DB::default())
        }

        fn update(&self, conn: &mut C, which: &[usize]) -> QueryResult<usize> {
            self.update_keys::<()>(which, None).execute(conn)
        }

        fn update_returning(&self, conn: &mut C, which: &[usize]) -> QueryResult<Vec<(usize, M)>>
        where
            DB: SupportsReturning,
        {
            let rows = self
                .update_keys(which, Some(M::as_select()))
                .load::<(i32, M)>(conn)?;
            positions(which, rows)
        }
    }

    impl<C, M, K, D, Mk, U> BatchIo for SyncBatchIo<'_, C, M, K, D, Mk, U>
    where
        C: Connection + Send,
        M: Model + Send,
        K: Send,
        D: InsertRow<M::Table, K, Mk> + Send,
        D::Row: Send,
        Mk: Send,
        U: Send,
        Batch<M, K, D, Mk, U>: SyncBatchStatements<C, Row = M>,
    {
        type Row = M;

        fn in_transaction(&mut self) -> QueryResult<bool> {
            let status =
                <C::TransactionManager as TransactionManager<C>>::transaction_manager_status_mut(
                    self.conn,
                );
            Ok(status.transaction_depth()?.is_some())
        }

        fn len(&self) -> usize {
            self.batch.keys.len()
        }

        async fn read(&mut self, which: &[usize], lock: bool) -> QueryResult<Vec<(usize, M)>> {
            self.batch.read(self.conn, which, lock)
        }

        async fn insert(&mut self, which: &[usize]) -> QueryResult<usize> {
            self.batch.insert(self.conn, which)
        }

        async fn begin(&mut self) -> QueryResult<()> {
            C::TransactionManager::begin_transaction(self.conn)
        }

        async fn commit(&mut self) -> QueryResult<()> {
            C::TransactionManager::commit_transaction(self.conn)
        }

        async fn rollback(&mut self) -> QueryResult<()> {
            C::TransactionManager::rollback_transaction(self.conn)
        }

        async fn pause(&mut self, pause: Duration) {
            std::thread::sleep(pause)
        }
    }

    impl<C, M, K, D, Mk, U> UpdateBatchIo for SyncBatchIo<'_, C, M, K, D, Mk, U>
    where
        Self: BatchIo<Row = M>,
        C: Connection,
        M: Model,
        D: InsertRow<M::Table, K, Mk>,
        Batch<M, K, D, Mk, U>: SyncBatchStatements<C, Row = M>,
    {
        fn update_is_noop(&self) -> QueryResult<bool> {
            self.batch.update_is_noop()
        }

        async fn update(&mut self, which: &[usize]) -> QueryResult<usize> {
            self.batch.update(self.conn, which)
        }
    }

    #[cfg(any(feature = "postgres", feature = "sqlite"))]
    impl<C, M, K, D, Mk, U> UpdateReturningBatchIo for SyncBatchIo<'_, C, M, K, D, Mk, U>
    where
        Self: UpdateBatchIo<Row = M>,
        C: Connection,
        C::Backend: SupportsReturning,
        M: Model,
        D: InsertRow<M::Table, K, Mk>,
        Batch<M, K, D, Mk, U>: SyncBatchStatements<C, Row = M>,
    {
        async fn update_returning(&mut self, which: &[usize]) -> QueryResult<Vec<(usize, M)>> {
            self.batch.update_returning(self.conn, which)
        }
    }

    #[cfg(feature = "postgres")]
    mod pg {
        use diesel::connection::LoadConnection;
        use diesel::deserialize::FromSqlRow;
        use diesel::expression::{QueryMetadata, Selectable};
        use diesel::pg::Pg;
        use diesel::query_builder::QueryFragment;
        use diesel::sql_types::{Bool, Integer};
        use diesel::{Connection, Insertable, QueryResult, RunQueryDsl};

        use super::super::{
            positions, Batch, BatchIo, InsertRows, ReturningBatchIo, UpdateReturningBatchIo,
            UpsertBatchIo,
        };
        use super::{SyncBatchIo, SyncBatchStatements};
        use crate::call::SelectionOf;
        use crate::defaults::InsertRow;
        use crate::key::{Lookup, LookupFilter};
        use crate::model::Model;

        impl<C, M, K, D, Mk, U> ReturningBatchIo for SyncBatchIo<'_, C, M, K, D, Mk, U>
        where
            C: Connection<Backend = Pg> + LoadConnection + Send,
            Self: BatchIo<Row = M>,
            Batch<M, K, D, Mk, U>: SyncBatchStatements<C, Row = M>,
            M: Model + Selectable<Pg> + 'static,
            M::SelectExpression: diesel::query_builder::QueryId,
            Pg: QueryMetadata<(Integer, SelectionOf<M, Pg>)>,
            (i32, M): FromSqlRow<(Integer, SelectionOf<M, Pg>), Pg>,
            SelectionOf<M, Pg>: QueryFragment<Pg>,
            K: Lookup + LookupFilter<Pg> + Ord + Clone,
            D: InsertRow<M::Table, K, Mk>,
            D::Row: Clone,
            Vec<D::Row>: Insertable<M::Table>,
            InsertRows<M, D::Row>: QueryFragment<Pg>,
        {
            async fn insert_returning(&mut self, which: &[usize]) -> QueryResult<Vec<(usize, M)>> {
                let rows = self
                    .batch
                    .insert_returning_keys(which)
                    .load::<(i32, M)>(self.conn)?;
                positions(which, rows)
            }
        }

        impl<C, M, K, D, Mk, U> UpsertBatchIo for SyncBatchIo<'_, C, M, K, D, Mk, U>
        where
            C: Connection<Backend = Pg> + LoadConnection + Send,
            Self: ReturningBatchIo<Row = M> + UpdateReturningBatchIo<Row = M>,
            M: Model + Selectable<Pg> + 'static,
            M::SelectExpression: diesel::query_builder::QueryId,
            Pg: QueryMetadata<(Integer, (SelectionOf<M, Pg>, Bool))>,
            (i32, (M, bool)): FromSqlRow<(Integer, (SelectionOf<M, Pg>, Bool)), Pg>,
            SelectionOf<M, Pg>: QueryFragment<Pg>,
            K: Lookup + LookupFilter<Pg> + Ord + Clone,
            D: InsertRow<M::Table, K, Mk>,
            D::Row: Clone,
            Vec<D::Row>: Insertable<M::Table>,
            InsertRows<M, D::Row>: QueryFragment<Pg>,
            U: QueryFragment<Pg>,
        {
            async fn upsert(&mut self, which: &[usize]) -> QueryResult<Vec<(usize, (M, bool))>> {
                let rows = self
                    .batch
                    .upsert_keys(which)
                    .load::<(i32, (M, bool))>(self.conn)?;
                positions(which, rows)
            }
        }
    }

    /// The statements of [`UpsertRowsBatchIo`] on backend `Self`
    /// (MySQL, SQLite), synchronously.
    pub trait SyncUpsertRows<C, M, K, D, Mk, U>: Backend
    where
        M: Model,
        D: InsertRow<M::Table, K, Mk>,
    {
        /// See [`UpsertRowsBatchIo::lock_rows`].
        fn lock_rows(
            conn: &mut C,
            batch: &mut Batch<M, K, D, Mk, U>,
            which: &[usize],
        ) -> QueryResult<Vec<(usize, M)>>;
        /// See [`UpsertRowsBatchIo::upsert_rows`].
        fn upsert_rows(
            conn: &mut C,
            batch: &mut Batch<M, K, D, Mk, U>,
            which: &[usize],
        ) -> QueryResult<Option<Vec<(usize, M)>>>;
    }

    impl<C, M, K, D, Mk, U> UpsertRowsBatchIo for SyncBatchIo<'_, C, M, K, D, Mk, U>
    where
        Self: UpdateBatchIo<Row = M>,
        C: Connection,
        C::Backend: SyncUpsertRows<C, M, K, D, Mk, U>,
        M: Model,
        D: InsertRow<M::Table, K, Mk>,
    {
        async fn lock_rows(&mut self, which: &[usize]) -> QueryResult<Vec<(usize, M)>> {
            C::Backend::lock_rows(self.conn, &mut self.batch, which)
        }

        async fn upsert_rows(&mut self, which: &[usize]) -> QueryResult<Option<Vec<(usize, M)>>> {
            C::Backend::upsert_rows(self.conn, &mut self.batch, which)
        }
    }

    #[cfg(feature = "mysql")]
    mod mysql {
        use diesel::connection::LoadConnection;
        use diesel::deserialize::FromSqlRow;
        use diesel::expression::{QueryMetadata, Selectable};
        use diesel::mysql::Mysql;
        use diesel::query_builder::{QueryFragment, QueryId};
        use diesel::query_source::QuerySource;
        use diesel::sql_types::Integer;
        use diesel::{Connection, Insertable, QueryResult, RunQueryDsl};

        use super::super::each::other_unique;
        use super::super::{positions, Batch, InsertRows};
        use super::SyncUpsertRows;
        use crate::call::SelectionOf;
        use crate::defaults::InsertRow;
        use crate::key::{Lookup, LookupFilter};
        use crate::model::Model;

        impl<C, M, K, D, Mk, U> SyncUpsertRows<C, M, K, D, Mk, U> for Mysql
        where
            C: Connection<Backend = Mysql> + LoadConnection,
            M: Model + Selectable<Mysql> + 'static,
            M::SelectExpression: QueryId,
            Mysql: QueryMetadata<(Integer, SelectionOf<M, Mysql>)>,
            (i32, M): FromSqlRow<(Integer, SelectionOf<M, Mysql>), Mysql>,
            SelectionOf<M, Mysql>: QueryFragment<Mysql>,
            <M::Table as QuerySource>::FromClause: QueryFragment<Mysql>,
            K: Lookup + LookupFilter<Mysql> + Ord + Clone,
            D: InsertRow<M::Table, K, Mk>,
            D::Row: Clone,
            Vec<D::Row>: Insertable<M::Table>,
            InsertRows<M, D::Row>: QueryFragment<Mysql>,
            U: QueryFragment<Mysql>,
        {
            fn lock_rows(
                conn: &mut C,
                batch: &mut Batch<M, K, D, Mk, U>,
                which: &[usize],
            ) -> QueryResult<Vec<(usize, M)>> {
                let rows = batch.select_for_update(which).load::<(i32, M)>(conn)?;
                positions(which, rows)
            }

            fn upsert_rows(
                conn: &mut C,
                batch: &mut Batch<M, K, D, Mk, U>,
                which: &[usize],
            ) -> QueryResult<Option<Vec<(usize, M)>>> {
                let upsert = batch.upsert_rows(which);
                upsert.execute(conn).map_err(other_unique)?;
                Ok(None)
            }
        }
    }

    #[cfg(feature = "sqlite")]
    mod sqlite {
        use diesel::connection::LoadConnection;
        use diesel::deserialize::FromSqlRow;
        use diesel::expression::{QueryMetadata, Selectable};
        use diesel::query_builder::{QueryFragment, QueryId};
        use diesel::query_source::QuerySource;
        use diesel::sql_types::Integer;
        use diesel::sqlite::Sqlite;
        use diesel::{Connection, Insertable, QueryResult, RunQueryDsl};

        use super::super::each::upsert_row;
        use diesel::SelectableHelper;

        use super::super::{positions, Batch, InsertRows};
        use super::SyncUpsertRows;
        use crate::call::{RowSqlTypeOf, SelectionOf, SqlTypeOf};
        use crate::defaults::InsertRow;
        use crate::key::{Lookup, LookupFilter};
        use crate::model::Model;

        impl<C, M, K, D, Mk, U> SyncUpsertRows<C, M, K, D, Mk, U> for Sqlite
        where
            C: Connection<Backend = Sqlite> + LoadConnection,
            M: Model + Selectable<Sqlite> + 'static,
            M: FromSqlRow<RowSqlTypeOf<M, Sqlite>, Sqlite>,
            Sqlite: QueryMetadata<SqlTypeOf<M, Sqlite>>,
            SqlTypeOf<M, Sqlite>: diesel::sql_types::SqlType
                + diesel::expression::TypedExpressionType
                + diesel::deserialize::SqlTypeLikeMarker,
            M::Table: QueryId,
            M::SelectExpression: QueryId,
            Sqlite: QueryMetadata<(Integer, SelectionOf<M, Sqlite>)>,
            (i32, M): FromSqlRow<(Integer, SelectionOf<M, Sqlite>), Sqlite>,
            SelectionOf<M, Sqlite>: QueryFragment<Sqlite>,
            <M::Table as QuerySource>::FromClause: QueryFragment<Sqlite>,
            K: Lookup + LookupFilter<Sqlite> + Ord + Clone,
            D: InsertRow<M::Table, K, Mk>,
            D::Row: Clone + Insertable<M::Table>,
            <D::Row as Insertable<M::Table>>::Values: QueryFragment<Sqlite> + QueryId,
            Vec<D::Row>: Insertable<M::Table>,
            for<'a> diesel::query_builder::DebugQuery<'a, InsertRows<M, D::Row>, Sqlite>:
                core::fmt::Display,
            U: QueryFragment<Sqlite>,
        {
            fn lock_rows(
                conn: &mut C,
                batch: &mut Batch<M, K, D, Mk, U>,
                which: &[usize],
            ) -> QueryResult<Vec<(usize, M)>> {
                batch.write_lock().execute(conn)?;
                let rows = batch
                    .select_keys::<Sqlite>(which, false)
                    .load::<(i32, M)>(conn)?;
                positions(which, rows)
            }

            fn upsert_rows(
                conn: &mut C,
                batch: &mut Batch<M, K, D, Mk, U>,
                which: &[usize],
            ) -> QueryResult<Option<Vec<(usize, M)>>> {
                if let Some(upsert) = batch.sqlite_upsert(which)? {
                    return positions(which, upsert.load::<(i32, M)>(conn)?).map(Some);
                }
                let mut rows = Vec::with_capacity(which.len());
                for &i in which {
                    let values = batch.row_values(i);
                    let select = M::as_select();
                    let upsert = upsert_row::<_, _, K::Columns, _, _>(
                        M::table(),
                        &values,
                        &batch.changeset,
                        select,
                    );
                    rows.push((i, upsert.get_result::<M>(conn)?));
                }
                Ok(Some(rows))
            }
        }
    }

    /// Whether backend `Self` can run `get_or_create_all` for model `M` with
    /// lookups `K` and defaults `D` over connection `C`; see
    /// [`GetOrCreate::get_or_create_all`](crate::GetOrCreate::get_or_create_all).
    /// It only appears in bounds: never implement it.
    #[diagnostic::on_unimplemented(
        message = "`get_or_create_all` cannot run for `{M}` on backend `{Self}` with these arguments",
        label = "a requirement below is not met",
        note = "check that the backend's feature of diesel-get-or-create is enabled (`sqlite`, `postgres` or `mysql`), \
                that the keys and the defaults use columns of the model's table, that the model is `Clone` \
                and derives `Queryable` and `Selectable`, and that the key values are `Ord` and the defaults `Clone`",
        note = "on MariaDB, connect with `diesel::MysqlConnection`: \
                Diesel 2.4's `MariadbConnection` (backend `Mariadb`) is not supported yet"
    )]
    pub trait GetOrCreateAllBackend<C, M, K, D, Mk>:
        Backend + crate::query::sealed::Sealed
    {
        /// Run `get_or_create_all` on `conn`.
        #[doc(hidden)]
        fn get_or_create_all(
            conn: &mut C,
            items: impl IntoIterator<Item = (K, D)>,
        ) -> QueryResult<Vec<(M, bool)>>;
    }

    impl<DB, C, M, K, D, Mk> GetOrCreateAllBackend<C, M, K, D, Mk> for DB
    where
        DB: Backend + crate::query::sealed::Sealed,
        C: Connection<Backend = DB>,
        M: Model + Clone,
        K: Ord + Clone,
        D: InsertRow<M::Table, K, Mk>,
        D::Row: Clone,
        for<'c> SyncBatchIo<'c, C, M, K, D, Mk>: BatchIo<Row = M>,
        for<'c> DB: BatchAlgorithms<SyncBatchIo<'c, C, M, K, D, Mk>>,
    {
        fn get_or_create_all(
            conn: &mut C,
            items: impl IntoIterator<Item = (K, D)>,
        ) -> QueryResult<Vec<(M, bool)>> {
            let mut io = SyncBatchIo {
                conn,
                batch: Batch::new(items),
            };
            let found = block_on(DB::get_or_create_all(&mut io))?;
            Ok(io.batch.finish(found))
        }
    }

    /// Whether backend `Self` can run `update_or_create_all_with` for model
    /// `M` with lookups `K`, changeset `U` and create values `D` over
    /// connection `C`; see
    /// [`GetOrCreate::update_or_create_all_with`](crate::GetOrCreate::update_or_create_all_with).
    /// It only appears in bounds: never implement it.
    #[diagnostic::on_unimplemented(
        message = "`update_or_create_all_with` cannot run for `{M}` on backend `{Self}` with these arguments",
        label = "a requirement below is not met",
        note = "check that the backend's feature of diesel-get-or-create is enabled (`sqlite`, `postgres` or `mysql`), \
                that the keys, the update and the create values use columns of the model's table, that the update \
                is `AsChangeset`, that the model is `Clone` and derives `Queryable` and `Selectable`, \
                and that the key values are `Ord` and the create values `Clone`",
        note = "on MariaDB, connect with `diesel::MysqlConnection`: \
                Diesel 2.4's `MariadbConnection` (backend `Mariadb`) is not supported yet"
    )]
    pub trait UpdateOrCreateAllBackend<C, M, K, U, D, Mk>:
        Backend + crate::query::sealed::Sealed
    {
        /// Run `update_or_create_all_with` on `conn`.
        #[doc(hidden)]
        fn update_or_create_all_with(
            conn: &mut C,
            items: impl IntoIterator<Item = (K, D)>,
            update: U,
        ) -> QueryResult<Vec<(M, bool)>>;
    }

    impl<DB, C, M, K, U, D, Mk> UpdateOrCreateAllBackend<C, M, K, U, D, Mk> for DB
    where
        DB: Backend + crate::query::sealed::Sealed,
        C: Connection<Backend = DB>,
        M: Model + Clone,
        K: Ord + Clone,
        U: AsChangeset<Target = M::Table>,
        D: InsertRow<M::Table, K, Mk>,
        D::Row: Clone,
        for<'c> SyncBatchIo<'c, C, M, K, D, Mk, U::Changeset>: UpdateBatchIo<Row = M>,
        for<'c> DB: BatchUpdateAlgorithms<SyncBatchIo<'c, C, M, K, D, Mk, U::Changeset>>,
    {
        fn update_or_create_all_with(
            conn: &mut C,
            items: impl IntoIterator<Item = (K, D)>,
            update: U,
        ) -> QueryResult<Vec<(M, bool)>> {
            let mut io = SyncBatchIo {
                conn,
                batch: Batch::updating(items, update.as_changeset()),
            };
            let found = block_on(update_or_create_all_with::<DB, _>(&mut io))?;
            Ok(io.batch.finish(found))
        }
    }
    /// Whether backend `Self` can run `update_or_create_all` for model `M`
    /// with lookups `K` and values `V` over connection `C`; see
    /// [`GetOrCreate::update_or_create_all`](crate::GetOrCreate::update_or_create_all).
    /// It only appears in bounds: never implement it.
    #[diagnostic::on_unimplemented(
        message = "`update_or_create_all` cannot run for `{M}` on backend `{Self}` with these arguments",
        label = "a requirement below is not met",
        note = "check that the backend's feature of diesel-get-or-create is enabled (`sqlite`, `postgres` or `mysql`), \
                that the keys and the values use columns of the model's table, that the values are `Insertable` \
                and `Clone`, that the model is `Clone` and derives `Queryable` and `Selectable`, \
                and that the key values are `Ord`",
        note = "on MariaDB, connect with `diesel::MysqlConnection`: \
                Diesel 2.4's `MariadbConnection` (backend `Mariadb`) is not supported yet"
    )]
    pub trait UpdateOrCreateEachBackend<C, M, K, V, Mk>:
        Backend + crate::query::sealed::Sealed
    {
        /// Run `update_or_create_all` on `conn`.
        #[doc(hidden)]
        fn update_or_create_all(
            conn: &mut C,
            items: impl IntoIterator<Item = (K, V)>,
        ) -> QueryResult<Vec<(M, bool)>>;
    }

    impl<DB, C, M, K, V, Mk> UpdateOrCreateEachBackend<C, M, K, V, Mk> for DB
    where
        DB: Backend + Default + crate::query::sealed::Sealed,
        DB::QueryBuilder: Default,
        C: Connection<Backend = DB>,
        M: Model + Clone,
        K: Lookup + Ord + Clone,
        V: InsertRow<M::Table, K, Mk> + Clone,
        V::Row: Clone + Insertable<M::Table>,
        <V::Row as Insertable<M::Table>>::Values: QueryFragment<DB>,
        for<'c> SyncBatchIo<'c, C, M, K, V, Mk, SetToValues<M::Table>>: UpdateBatchIo<Row = M>,
        for<'c> DB: BatchUpdateAlgorithms<SyncBatchIo<'c, C, M, K, V, Mk, SetToValues<M::Table>>>,
    {
        fn update_or_create_all(
            conn: &mut C,
            items: impl IntoIterator<Item = (K, V)>,
        ) -> QueryResult<Vec<(M, bool)>> {
            let mut each = Each::new(items, columns_of::<DB, M, K, V, Mk>)?;
            let mut results = Vec::with_capacity(each.groups.len());
            for (columns, group) in core::mem::take(&mut each.groups) {
                let mut io = SyncBatchIo {
                    conn: &mut *conn,
                    batch: Batch::updating(group, SetToValues::new(columns)),
                };
                let found = block_on(update_or_create_each::<DB, _>(&mut io))?;
                results.push(io.batch.finish(found));
            }
            Ok(each.finish(&results))
        }
    }
}

#[cfg(test)]
mod tests;
