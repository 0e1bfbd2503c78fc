//! The retrying transaction: the caller's closure in a transaction, run
//! again when the database aborted it, with the retry policy of standalone
//! calls ([`Runs`]).

use diesel::backend::Backend;
use diesel::result::Error;
use diesel::Connection;

use crate::algorithm::{Errors, Runs};
use crate::query::sealed::Sealed;

/// A backend whose errors [`transaction`] can read: which of them mean
/// "the database aborted your transaction, run it again". Implemented for
/// `Pg`, `Mysql` and `Sqlite` when their feature is enabled; it cannot be
/// implemented outside this crate.
///
/// * PostgreSQL: a serialization failure (40001) or a deadlock (40P01).
/// * MySQL / MariaDB: a deadlock (1213), at any statement or at `COMMIT`,
///   including MariaDB Galera's certification failures, which arrive as
///   1213 ("Deadlock found when trying to get lock", "Deadlock: wsrep
///   aborted transaction"), the crate's own `SerializationFailure`s, and,
///   on MariaDB, a transaction the server rolled back without reporting it
///   (caught by a check before `COMMIT`).
/// * SQLite: `database is locked` (`SQLITE_BUSY`, a deferred transaction
///   that read and then could not take the write lock, or a busy timeout
///   that ran out) and `database table is locked` (`SQLITE_LOCKED`).
#[diagnostic::on_unimplemented(
    message = "`diesel_get_or_create::transaction` does not know the errors of backend `{Self}`",
    note = "enable the backend's feature of diesel-get-or-create (`sqlite`, `postgres` or `mysql`)",
    note = "on MariaDB, connect with `diesel::MysqlConnection`: \
            Diesel 2.4's `MariadbConnection` (backend `Mariadb`) is not supported yet"
)]
pub trait RetryBackend: Backend + Sealed {
    /// The backend's errors, as the standalone calls read them.
    #[doc(hidden)]
    fn __errors() -> __Errors;

    /// A statement to run before `COMMIT` that fails if the server has rolled
    /// the transaction back without reporting it (MariaDB Galera), and how
    /// to read its error.
    #[doc(hidden)]
    fn __commit_check() -> Option<__CommitCheck> {
        None
    }
}

/// A statement to run before `COMMIT`, and how to read its error (not
/// public API).
#[doc(hidden)]
pub type __CommitCheck = (&'static str, fn(Error) -> Error);

/// The backend's error policy (not public API).
#[doc(hidden)]
#[derive(Clone, Copy)]
pub struct __Errors(pub(crate) Errors);

#[cfg(feature = "postgres")]
impl RetryBackend for diesel::pg::Pg {
    fn __errors() -> __Errors {
        // PostgreSQL's ERRORS: both drivers report its errors alike.
        __Errors(Errors {
            normalize: core::convert::identity,
            retryable: crate::postgres::is_retryable,
        })
    }
}

#[cfg(feature = "mysql")]
impl RetryBackend for diesel::mysql::Mysql {
    fn __errors() -> __Errors {
        __Errors(crate::mysql::ERRORS)
    }

    fn __commit_check() -> Option<__CommitCheck> {
        Some((crate::mysql::COMMIT_CHECK, crate::mysql::guarded))
    }
}

#[cfg(feature = "sqlite")]
impl RetryBackend for diesel::sqlite::Sqlite {
    fn __errors() -> __Errors {
        __Errors(SQLITE_TRANSACTION_ERRORS)
    }
}

/// SQLite's standalone calls are single statements that never need running
/// again (the crate's `sqlite::ERRORS`), but a caller's deferred transaction
/// that read and then needs to write fails with `database is locked` when
/// another connection wrote in between, and only running it again helps.
#[cfg(feature = "sqlite")]
const SQLITE_TRANSACTION_ERRORS: Errors = Errors {
    normalize: core::convert::identity,
    retryable: is_sqlite_busy,
};

/// `SQLITE_BUSY` or `SQLITE_LOCKED`, which Diesel reports as `Unknown` with
/// SQLite's message.
#[cfg(feature = "sqlite")]
fn is_sqlite_busy(error: &Error) -> bool {
    use diesel::result::DatabaseErrorKind;
    match error {
        Error::DatabaseError(DatabaseErrorKind::Unknown, info) => {
            let message = info.message();
            message.starts_with("database is locked")
                || message.starts_with("database table is locked")
        }
        _ => false,
    }
}

/// An error type that [`transaction`] can return: it converts from Diesel's
/// error (as `Connection::transaction` requires) and shows the Diesel error
/// it carries, if any, so that the retry policy can read it.
///
/// Implemented for [`diesel::result::Error`]. Implement it for your own
/// error type to use that type in the closure:
///
/// ```
/// use diesel_get_or_create::TransactionError;
///
/// #[derive(Debug)]
/// enum AppError {
///     Db(diesel::result::Error),
///     OutOfStock,
/// }
///
/// impl From<diesel::result::Error> for AppError {
///     fn from(error: diesel::result::Error) -> Self {
///         AppError::Db(error)
///     }
/// }
///
/// impl TransactionError for AppError {
///     fn diesel_error(&self) -> Option<&diesel::result::Error> {
///         match self {
///             AppError::Db(error) => Some(error),
///             AppError::OutOfStock => None, // never retried
///         }
///     }
/// }
/// ```
pub trait TransactionError: From<Error> {
    /// The Diesel error inside, if any; only such errors can be retried.
    fn diesel_error(&self) -> Option<&Error>;

    /// Replace the Diesel error inside with `f(error)`: used to return a
    /// MySQL deadlock as `SerializationFailure`, whichever protocol reported
    /// it. Keeping the default (no change) is always correct.
    #[doc(hidden)]
    fn __map_diesel_error(self, f: fn(Error) -> Error) -> Self
    where
        Self: Sized,
    {
        let _ = f;
        self
    }
}

impl TransactionError for Error {
    fn diesel_error(&self) -> Option<&Error> {
        Some(self)
    }

    fn __map_diesel_error(self, f: fn(Error) -> Error) -> Self {
        f(self)
    }
}

/// The runs of one retrying transaction: retried when no transaction was
/// open before it (`in_transaction == false`), run once inside one.
pub(crate) fn runs<DB: RetryBackend>(in_transaction: bool) -> Runs {
    Runs::new(!in_transaction, DB::__errors().0)
}

/// After a run that failed with `error`: the pause before the next run, or
/// the error to return.
pub(crate) fn again<DB: RetryBackend, E: TransactionError>(
    runs: &mut Runs,
    error: E,
) -> Result<core::time::Duration, E> {
    match error.diesel_error().and_then(|e| runs.again(e)) {
        Some(pause) => Ok(pause),
        None => Err(error.__map_diesel_error(DB::__errors().0.normalize)),
    }
}

/// Run `f` in a transaction, and run it again, in a new transaction, when
/// the database aborted it: the retrying counterpart of Diesel's
/// `conn.transaction(|conn| ..)`.
///
/// What "aborted" means depends on the backend ([`RetryBackend`]):
/// PostgreSQL serialization failures and deadlocks; MySQL/MariaDB deadlocks,
/// including those raised at `COMMIT` (which Diesel reports as `Unknown`)
/// and MariaDB Galera's certification failures; SQLite's `database is
/// locked`. These are the failures that the crate's standalone calls retry
/// themselves, and that a call inside your transaction returns as
/// `DatabaseError(SerializationFailure, ..)`: your transaction is gone, and
/// only running all of it again helps.
///
/// * `f` may run several times: it must not have effects outside the
///   database that cannot be repeated, and it must build what it writes
///   from what it reads in this run.
/// * Runs: at most 100, with a random pause of up to `min(2^n, 128)` ms after
///   run n, the same bounded, jittered backoff as a standalone
///   `get_or_create` / `update_or_create` call. The last error is returned
///   when runs run out.
/// * Any other error (a unique violation, `NotFound`, your own error) ends
///   the transaction with a rollback and is returned at once, as
///   `conn.transaction` returns it. A MySQL deadlock is returned as
///   `DatabaseError(SerializationFailure, ..)` whichever protocol reported
///   it, when `E` is [`diesel::result::Error`].
/// * On MySQL and MariaDB, one statement runs before `COMMIT` (`DO ..`, one
///   round trip): on MariaDB it fails when the server has rolled the
///   transaction back without reporting it (a Galera brute-force abort seen
///   by a prepared statement), which is then retried like a deadlock,
///   instead of a `COMMIT` that "succeeds" with nothing to commit.
/// * Inside a transaction that is already open, `f` runs once, in a
///   savepoint (as a nested `conn.transaction` does): the database aborted
///   the outer transaction, which is the one to run again.
///
/// ```
/// use diesel::prelude::*;
/// use diesel_get_or_create::prelude::*;
///
/// diesel::table! {
///     stock (id) {
///         id -> Integer,
///         sku -> Text,
///         count -> Integer,
///     }
/// }
///
/// #[derive(Queryable, Selectable, GetOrCreate)]
/// #[diesel(table_name = stock)]
/// struct Stock {
///     id: i32,
///     #[unique]
///     sku: String,
///     count: i32,
/// }
///
/// # fn main() -> QueryResult<()> {
/// let mut conn = SqliteConnection::establish(":memory:").unwrap();
/// diesel::sql_query("CREATE TABLE stock (id INTEGER PRIMARY KEY, sku TEXT NOT NULL UNIQUE, count INTEGER NOT NULL)")
///     .execute(&mut conn)?;
/// // Move one item from one SKU to another, atomically; run again if the
/// // database aborts the transaction.
/// let (from, to) = diesel_get_or_create::transaction(&mut conn, |conn| {
///     let (from, _) = Stock::update_or_create_with(
///         conn,
///         stock::sku.key("A-1"),
///         stock::count.eq(stock::count - 1),
///         stock::count.eq(-1),
///     )?;
///     let (to, _) = Stock::update_or_create_with(
///         conn,
///         stock::sku.key("B-2"),
///         stock::count.eq(stock::count + 1),
///         stock::count.eq(1),
///     )?;
///     Ok::<_, diesel::result::Error>((from.count, to.count))
/// })?;
/// assert_eq!((from, to), (-1, 1));
/// # Ok(())
/// # }
/// ```
pub fn transaction<C, T, E, F>(conn: &mut C, mut f: F) -> Result<T, E>
where
    C: Connection,
    C::Backend: RetryBackend,
    F: FnMut(&mut C) -> Result<T, E>,
    E: TransactionError,
{
    use diesel::connection::TransactionManager;
    let depth =
        <C::TransactionManager as TransactionManager<C>>::transaction_manager_status_mut(conn)
            .transaction_depth()?;
    let mut runs = runs::<C::Backend>(depth.is_some());
    let check = <C::Backend as RetryBackend>::__commit_check();
    loop {
        let result = conn.transaction(|conn| {
            let value = f(conn)?;
            if let Some((sql, read)) = check {
                conn.batch_execute(sql).map_err(read)?;
            }
            Ok(value)
        });
        match result {
            Ok(value) => return Ok(value),
            Err(error) => std::thread::sleep(again::<C::Backend, E>(&mut runs, error)?),
        }
    }
}

#[cfg(test)]
mod tests {
    use diesel::result::DatabaseErrorKind::{SerializationFailure, UniqueViolation, Unknown};

    use super::*;
    use crate::algorithm::{backoff_cap_us, MAX_RUNS};
    use crate::driver::script::{db_error, unique_violation};

    fn commit_deadlock() -> Error {
        db_error(
            Unknown,
            "Deadlock found when trying to get lock; try restarting transaction",
        )
    }

    #[cfg(feature = "mysql")]
    #[test]
    fn a_commit_time_deadlock_runs_again_until_runs_run_out_then_is_a_serialization_failure() {
        type My = diesel::mysql::Mysql;
        let mut runs = runs::<My>(false);
        for run in 1..MAX_RUNS {
            let pause = again::<My, Error>(&mut runs, commit_deadlock()).unwrap();
            assert!(pause.as_micros() as u64 <= backoff_cap_us(run));
        }
        assert_eq!(runs.runs(), MAX_RUNS);
        let last = again::<My, Error>(&mut runs, commit_deadlock()).unwrap_err();
        assert!(matches!(
            last,
            Error::DatabaseError(SerializationFailure, _)
        ));
    }

    #[cfg(feature = "mysql")]
    #[test]
    fn inside_an_open_transaction_nothing_runs_again() {
        type My = diesel::mysql::Mysql;
        let mut runs = runs::<My>(true);
        let error = again::<My, Error>(&mut runs, commit_deadlock()).unwrap_err();
        assert!(matches!(
            error,
            Error::DatabaseError(SerializationFailure, _)
        ));
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn postgres_runs_again_after_serialization_failures_and_deadlocks_only() {
        type Pg = diesel::pg::Pg;
        let mut runs = runs::<Pg>(false);
        assert!(again::<Pg, Error>(
            &mut runs,
            db_error(SerializationFailure, "could not serialize")
        )
        .is_ok());
        assert!(again::<Pg, Error>(&mut runs, db_error(Unknown, "deadlock detected")).is_ok());
        let error = again::<Pg, Error>(&mut runs, unique_violation()).unwrap_err();
        assert!(matches!(error, Error::DatabaseError(UniqueViolation, _)));
    }

    #[cfg(feature = "sqlite")]
    #[test]
    fn sqlite_runs_again_when_the_database_is_locked() {
        type Lite = diesel::sqlite::Sqlite;
        let mut runs = runs::<Lite>(false);
        assert!(again::<Lite, Error>(&mut runs, db_error(Unknown, "database is locked")).is_ok());
        assert!(
            again::<Lite, Error>(&mut runs, db_error(Unknown, "database table is locked")).is_ok()
        );
        assert!(again::<Lite, Error>(&mut runs, unique_violation()).is_err());
        assert!(again::<Lite, Error>(&mut runs, db_error(Unknown, "no such table: t")).is_err());
    }
}
