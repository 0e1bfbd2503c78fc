//! What the algorithms ask of a driver, and the policy they share.
//!
//! Each backend module (`sqlite.rs`, `postgres.rs`, `mysql.rs`) writes its
//! two algorithms once, as `async fn`s over the [`Io`] traits below. An
//! algorithm only decides the next step from the outcome of the last one: run
//! one of the call's statements, open or end a transaction (a savepoint
//! inside the caller's), or pause before running again. It never touches a
//! connection. A driver performs the steps:
//!
//! * the sync driver (`driver::sync`) runs them on any `diesel::Connection`;
//!   its steps complete at once, so it polls an algorithm to completion in one
//!   `poll`;
//! * the scripted driver (`driver::script`, tests only) answers each step
//!   from a script, so every branch runs without a server.
//!
//! The attempt budgets, the duplicate budget and the retry policy (how many
//! runs, how long a pause) live here; only sleeping is the driver's.

use core::future::Future;
use core::time::Duration;

use diesel::result::{DatabaseErrorInformation, DatabaseErrorKind, Error};

#[cfg(any(feature = "postgres", feature = "mysql"))]
mod server;
use diesel::QueryResult;
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) use server::{begin_if, end_if, Duplicates};
/// SQLite's statements absorb every conflict on the key: no budget of
/// duplicates on other indexes to keep.
#[cfg(not(any(feature = "postgres", feature = "mysql")))]
pub(crate) type Duplicates = ();

/// The steps every backend's algorithms use.
///
/// `Row` is the model; the statements are those of one call (its key, its
/// insert values, its changeset), which the driver holds.
///
/// Every step's future is `Send` (and so is every driver), so that an
/// algorithm's future is `Send` by declaration: an async caller can run it in
/// `tokio::spawn` and inside diesel-async's `transaction`, where rustc could
/// not see through the types to prove it.
pub trait Io: Send {
    /// The row type the statements return.
    type Row: Send;

    /// Whether the caller has a transaction open: decides whether the call
    /// is standalone (may commit and run again) or not.
    fn in_transaction(&mut self) -> QueryResult<bool>;

    /// Whether the call's changeset is empty (nothing to update).
    fn update_is_noop(&self) -> QueryResult<bool>;

    /// `SELECT <row> FROM <table> WHERE <key> LIMIT 1`
    fn select(&mut self) -> impl Future<Output = QueryResult<Option<Self::Row>>> + Send;

    /// `INSERT INTO <table> <key and values>`: the number of rows inserted.
    fn insert(&mut self) -> impl Future<Output = QueryResult<usize>> + Send;

    /// `UPDATE <table> SET <changeset> WHERE <key>`: the number of rows
    /// matched.
    fn update(&mut self) -> impl Future<Output = QueryResult<usize>> + Send;

    /// Open a transaction, or a savepoint inside an open one.
    fn begin(&mut self) -> impl Future<Output = QueryResult<()>> + Send;

    /// Commit what [`begin`](Io::begin) opened.
    fn commit(&mut self) -> impl Future<Output = QueryResult<()>> + Send;

    /// Roll back what [`begin`](Io::begin) opened.
    fn rollback(&mut self) -> impl Future<Output = QueryResult<()>> + Send;

    /// Wait before running again.
    fn pause(&mut self, pause: Duration) -> impl Future<Output = ()> + Send;
}

/// Statements with `RETURNING` and `ON CONFLICT (key)`: SQLite, PostgreSQL.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub trait ReturningIo: Io {
    /// `INSERT .. ON CONFLICT (<key columns>) DO NOTHING RETURNING <row>`:
    /// the row if this statement inserted it.
    fn insert_returning(&mut self) -> impl Future<Output = QueryResult<Option<Self::Row>>> + Send;

    /// `UPDATE .. SET <changeset> WHERE <key> RETURNING <row>`
    fn update_returning(&mut self) -> impl Future<Output = QueryResult<Option<Self::Row>>> + Send;
}

/// How backend `Self` runs the two operations on the steps of driver `E`.
///
/// Implemented on the backend types, so the algorithm is chosen by the
/// connection's backend (two blanket impls keyed on `C::Backend = X` would
/// overlap; impls on `Sqlite`, `Pg` and `Mysql` do not).
pub trait Algorithms<E: Io> {
    /// `get_or_create`: `(row, created)`.
    fn get_or_create(io: &mut E) -> impl Future<Output = QueryResult<(E::Row, bool)>> + Send;

    /// `update_or_create_with`, with a changeset that is not empty.
    fn update_or_create(io: &mut E) -> impl Future<Output = QueryResult<(E::Row, bool)>> + Send;
}

/// `update_or_create_with` on any backend: with nothing to update, the
/// operation is `get_or_create`.
pub(crate) async fn update_or_create<DB: Algorithms<E>, E: Io>(
    io: &mut E,
) -> QueryResult<(E::Row, bool)> {
    if io.update_is_noop()? {
        DB::get_or_create(io).await
    } else {
        DB::update_or_create(io).await
    }
}

/// A unique violation, on any index.
pub(crate) fn is_duplicate(error: &Error) -> bool {
    matches!(
        error,
        Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _)
    )
}

/// How many times an operation re-runs its statements when a concurrent
/// delete removes the row between a conflict and the read that follows it.
pub(crate) const MAX_ATTEMPTS: u32 = 16;

/// How many times a standalone call runs when the database aborts it with a
/// serialization failure or a deadlock (the first run included).
///
/// At PostgreSQL REPEATABLE READ, every standalone upsert waiting on a row
/// lock is aborted when the holder commits, so 32 callers on one hot row saw
/// 61-82% of their runs aborted, roughly independently. With 32 runs, one call
/// in ~500 gave up on a loaded machine; with 100, about one in 10^8.
pub(crate) const MAX_RUNS: u32 = 100;

/// How a backend's errors read.
#[derive(Clone, Copy)]
pub(crate) struct Errors {
    /// One error, whichever driver reported it: sync Diesel and diesel-async
    /// spell some server errors differently (MySQL's deadlock).
    pub(crate) normalize: fn(Error) -> Error,
    /// Whether the database aborted the work, so that running it again from
    /// the start is safe. It reads an error as either driver reports it,
    /// before or after `normalize` (the retrying transaction reads the
    /// caller's errors, which it cannot normalize).
    pub(crate) retryable: fn(&Error) -> bool,
}

/// The runs of one call: once inside the caller's transaction; as a
/// standalone call (no transaction open), again after an error that
/// `errors` says is retryable (the database aborted the work), at most
/// [`MAX_RUNS`] times, pausing a random [`backoff`] in between. The last
/// error is returned when runs run out. A [`vanished`] row is not run
/// again: the call has already made [`MAX_ATTEMPTS`] attempts.
///
/// ```text
/// let mut runs = Runs::start(io, ERRORS)?;
/// loop {
///     let result = attempt(io, runs.standalone).await;
///     if let Some(result) = runs.settle(io, result).await {
///         return result;
///     }
/// }
/// ```
pub(crate) struct Runs {
    errors: Errors,
    /// Whether the call is its own unit of work.
    pub(crate) standalone: bool,
    run: u32,
}

impl Runs {
    /// The first run of a call on `io`.
    pub(crate) fn start<E: Io>(io: &mut E, errors: Errors) -> QueryResult<Runs> {
        Ok(Runs::new(!io.in_transaction()?, errors))
    }

    /// The first run of a unit of work that is its own transaction
    /// (`standalone`) or runs inside an open one.
    pub(crate) fn new(standalone: bool, errors: Errors) -> Runs {
        Runs {
            errors,
            standalone,
            run: 1,
        }
    }

    /// After a run: `Some(result)` to return, or `None` (after a pause)
    /// to run again.
    pub(crate) async fn settle<E: Io, R>(
        &mut self,
        io: &mut E,
        result: QueryResult<R>,
    ) -> Option<QueryResult<R>> {
        match result.map_err(self.errors.normalize) {
            Err(e) => match self.again(&e) {
                Some(pause) => {
                    io.pause(pause).await;
                    None
                }
                None => Some(Err(e)),
            },
            result => Some(result),
        }
    }

    /// After a run that failed with `error` (read as [`Errors::retryable`]
    /// reads it, normalized or not): the pause before the next run, or
    /// `None` to return the error.
    pub(crate) fn again(&mut self, error: &Error) -> Option<Duration> {
        if self.standalone
            && self.run < MAX_RUNS
            && (self.errors.retryable)(error)
            && !is_vanished(error)
        {
            let pause = backoff(self.run);
            self.run += 1;
            Some(pause)
        } else {
            None
        }
    }

    /// How many runs so far (the current one included).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn runs(&self) -> u32 {
        self.run
    }
}

/// One attempt of `get_or_create` after a miss: `Some((row, created))`, or
/// `None` when the row that beat the insert vanished before it was read.
type Attempt<E> = QueryResult<Option<(<E as Io>::Row, bool)>>;

/// `get_or_create` on every backend: a hit is one `SELECT`; a miss makes up
/// to [`MAX_ATTEMPTS`] attempts, each inserting the key or reading the row
/// that beat the insert, then gives up with [`vanished`]. A standalone call
/// runs again as [`Runs`] says.
pub(crate) async fn get_or_create<E: Io>(
    io: &mut E,
    errors: Errors,
    mut attempt: impl AsyncFnMut(&mut E, bool, &mut Duplicates) -> Attempt<E>,
) -> QueryResult<(E::Row, bool)> {
    let mut runs = Runs::start(io, errors)?;
    loop {
        let result = get_or_create_once(io, runs.standalone, &mut attempt).await;
        if let Some(result) = runs.settle(io, result).await {
            return result;
        }
    }
}

async fn get_or_create_once<E: Io>(
    io: &mut E,
    standalone: bool,
    attempt: &mut impl AsyncFnMut(&mut E, bool, &mut Duplicates) -> Attempt<E>,
) -> QueryResult<(E::Row, bool)> {
    if let Some(row) = io.select().await? {
        return Ok((row, false));
    }
    let mut duplicates = Duplicates::default();
    for _ in 0..MAX_ATTEMPTS {
        if let Some(found) = attempt(io, standalone, &mut duplicates).await? {
            return Ok(found);
        }
    }
    Err(vanished())
}

/// A random pause in `[0, min(2^run, 128)]` ms, so that callers that just
/// collided spread out instead of colliding again.
pub(crate) fn backoff(run: u32) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(run);
    Duration::from_micros(hasher.finish() % (backoff_cap_us(run) + 1))
}

/// The longest pause after `run` runs, in microseconds.
pub(crate) fn backoff_cap_us(run: u32) -> u64 {
    1000u64 << run.min(7)
}

/// The error of a call that ran out of attempts because, each time, a
/// concurrent transaction deleted the key's row between the statement that
/// met it and the read that should have returned it.
///
/// It is a `SerializationFailure`: concurrent work made the call impossible,
/// and running it again (or the caller's transaction) is the remedy.
pub(crate) fn vanished() -> Error {
    Error::DatabaseError(
        DatabaseErrorKind::SerializationFailure,
        Box::new(StaticInfo {
            message: VANISHED,
            hint: Some("run the call (or your transaction) again"),
        }),
    )
}

const VANISHED: &str = "diesel-get-or-create gave up after 16 attempts: each time, a concurrent \
                        transaction deleted the row with this key before this call could read it";

/// The error of a batch update inside the caller's transaction whose
/// locking read found a row its `UPDATE` had not matched: a concurrent
/// transaction deleted the key's row and created it again in between, and
/// the update cannot be undone without undoing the caller's work. A
/// `SerializationFailure`, as [`vanished`].
#[cfg(feature = "mysql")]
pub(crate) fn replaced() -> Error {
    Error::DatabaseError(
        DatabaseErrorKind::SerializationFailure,
        Box::new(StaticInfo {
            message: REPLACED,
            hint: Some("run your transaction again"),
        }),
    )
}

#[cfg(feature = "mysql")]
const REPLACED: &str = "diesel-get-or-create: a concurrent transaction deleted a row of this \
                        batch and created it again while this call updated it";

/// Whether `error` is [`replaced`].
#[cfg(feature = "mysql")]
pub(crate) fn is_replaced(error: &Error) -> bool {
    matches!(error, Error::DatabaseError(_, info) if info.message() == REPLACED)
}

fn is_vanished(error: &Error) -> bool {
    matches!(error, Error::DatabaseError(_, info) if info.message() == VANISHED)
}

/// A database error's information, written by this crate.
#[derive(Debug)]
pub(crate) struct StaticInfo {
    pub(crate) message: &'static str,
    pub(crate) hint: Option<&'static str>,
}

impl DatabaseErrorInformation for StaticInfo {
    fn message(&self) -> &str {
        self.message
    }
    fn details(&self) -> Option<&str> {
        None
    }
    fn hint(&self) -> Option<&str> {
        self.hint
    }
    fn table_name(&self) -> Option<&str> {
        None
    }
    fn column_name(&self) -> Option<&str> {
        None
    }
    fn constraint_name(&self) -> Option<&str> {
        None
    }
    fn statement_position(&self) -> Option<i32> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_stays_under_its_cap_and_varies() {
        for run in 1..40 {
            assert!(backoff(run).as_micros() as u64 <= backoff_cap_us(run));
        }
        assert_eq!(backoff_cap_us(1), 2_000);
        assert_eq!(backoff_cap_us(7), 128_000);
        assert_eq!(backoff_cap_us(60), 128_000);
        let pauses: std::collections::HashSet<_> = (0..20).map(|_| backoff(6)).collect();
        assert!(pauses.len() > 10, "backoff is not random: {pauses:?}");
    }

    #[test]
    fn a_vanished_row_is_a_serialization_failure_not_not_found() {
        let error = vanished();
        assert!(matches!(
            &error,
            Error::DatabaseError(DatabaseErrorKind::SerializationFailure, info)
                if info.message().contains(&format!("after {MAX_ATTEMPTS} attempts"))
        ));
        assert!(is_vanished(&error));
    }
}
