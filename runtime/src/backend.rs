//! Per-backend algorithms, dispatched through a trait on the backend type.
//!
//! The operations of [`GetOrCreate`](crate::GetOrCreate) call
//! `<C::Backend as GetOrCreateBackend<C, ..>>`, so any connection whose
//! backend implements the trait works: a plain connection, a pooled one, or
//! an instrumented wrapper. (Two blanket impls keyed on `C::Backend = X`
//! would overlap; impls on the backend types `Sqlite`, `Pg`, `Mysql` do not.)

use diesel::backend::Backend;
use diesel::connection::TransactionManager;
use diesel::result::{DatabaseErrorKind, Error};
use diesel::{Connection, QueryResult};

/// How backend `Self` runs `get_or_create` for model `M`, lookup `K` and
/// defaults `D` over connection `C`.
#[diagnostic::on_unimplemented(
    message = "`get_or_create` cannot run for `{M}` on backend `{Self}` with these arguments",
    label = "a requirement below is not met",
    note = "check that the backend's feature of diesel-get-or-create is enabled (`sqlite`, `postgres` or `mysql`), \
            that the key and the defaults use columns of the model's table, \
            and that the model derives `Queryable` and `Selectable`"
)]
pub trait GetOrCreateBackend<C, M, K, D, Mk>: Backend {
    /// See [`GetOrCreate::get_or_create`](crate::GetOrCreate::get_or_create).
    fn get_or_create(conn: &mut C, key: K, defaults: D) -> QueryResult<(M, bool)>;
}

/// How backend `Self` runs `update_or_create_with` for model `M`.
#[diagnostic::on_unimplemented(
    message = "`update_or_create` cannot run for `{M}` on backend `{Self}` with these arguments",
    label = "a requirement below is not met",
    note = "check that the backend's feature of diesel-get-or-create is enabled (`sqlite`, `postgres` or `mysql`), \
            that the key and the values use columns of the model's table, that the update \
            values are `AsChangeset` and the create values `Insertable`, \
            and that the model derives `Queryable` and `Selectable`"
)]
pub trait UpdateOrCreateBackend<C, M, K, U, D, Mk>: Backend {
    /// See [`GetOrCreate::update_or_create_with`](crate::GetOrCreate::update_or_create_with).
    fn update_or_create_with(conn: &mut C, key: K, update: U, create: D) -> QueryResult<(M, bool)>;
}

/// How many times an operation re-runs its statements when a concurrent
/// delete removes the row between a conflict and the read that follows it.
#[cfg_attr(
    not(any(feature = "sqlite", feature = "postgres", feature = "mysql")),
    allow(dead_code)
)]
pub(crate) const MAX_ATTEMPTS: usize = 16;

/// A unique violation, on any index.
#[cfg_attr(not(any(feature = "postgres", feature = "mysql")), allow(dead_code))]
pub(crate) fn is_duplicate(error: &Error) -> bool {
    matches!(
        error,
        Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _)
    )
}

/// Unique violations that a call could not attribute to a concurrent insert
/// of its own key.
///
/// A racing insert of the same key can fail on *another* unique index (the
/// defaults of both callers carry the same `username`, say): PostgreSQL
/// resolves `ON CONFLICT` only for the key's index and raises any other
/// duplicate, and MySQL's error names an index, not columns. Such a failure
/// is only seen after the other insert committed, so the next attempt finds
/// the key's row. A second unique violation in a row, with no row for the key
/// in between, is a real conflict on another column, and its error is
/// returned.
#[cfg_attr(not(any(feature = "postgres", feature = "mysql")), allow(dead_code))]
#[derive(Default)]
pub(crate) struct Duplicates(u32);

#[cfg_attr(not(any(feature = "postgres", feature = "mysql")), allow(dead_code))]
impl Duplicates {
    /// Record a unique violation; `Err` (with it) if it is the second.
    pub(crate) fn not_on_key(&mut self, error: Error) -> QueryResult<()> {
        self.0 += 1;
        if self.0 >= 2 {
            Err(error)
        } else {
            Ok(())
        }
    }
}

/// How many times a standalone call runs when the database aborts it with a
/// serialization failure or a deadlock (the first run included).
///
/// At PostgreSQL REPEATABLE READ, every standalone upsert waiting on a row
/// lock is aborted when the holder commits, so 32 callers on one hot row saw
/// 61-82% of their runs aborted, roughly independently. With 32 runs, one call
/// in ~500 gave up on a loaded machine; with 100, about one in 10^8.
pub(crate) const MAX_RUNS: u32 = 100;

/// Whether the caller has a transaction open on `conn`.
///
/// A call inside the caller's transaction can neither retry (the database
/// may have rolled the whole transaction back) nor commit early; a
/// standalone call is its own unit of work and may do both.
#[cfg_attr(not(any(feature = "postgres", feature = "mysql")), allow(dead_code))]
pub(crate) fn in_transaction<C: Connection>(conn: &mut C) -> QueryResult<bool> {
    let status =
        <C::TransactionManager as TransactionManager<C>>::transaction_manager_status_mut(conn);
    Ok(status.transaction_depth()?.is_some())
}

/// Run `op` inside `conn.transaction(..)` when `wrap` is true (a transaction
/// when none is open, a savepoint inside the caller's), as is otherwise.
#[cfg_attr(not(any(feature = "postgres", feature = "mysql")), allow(dead_code))]
pub(crate) fn transaction_if<C: Connection, R>(
    conn: &mut C,
    wrap: bool,
    op: impl FnOnce(&mut C) -> QueryResult<R>,
) -> QueryResult<R> {
    if wrap {
        conn.transaction(op)
    } else {
        op(conn)
    }
}

/// A serialization failure (PostgreSQL 40001; MySQL deadlock 1213, which
/// Diesel maps to `SerializationFailure`) or a PostgreSQL deadlock (40P01,
/// which Diesel reports as `Unknown` with the server's message). The database
/// has aborted the work; running it again from the start is safe.
#[cfg_attr(not(any(feature = "postgres", feature = "mysql")), allow(dead_code))]
pub(crate) fn is_retryable(error: &Error) -> bool {
    match error {
        Error::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => true,
        Error::DatabaseError(DatabaseErrorKind::Unknown, info) => {
            info.message().starts_with("deadlock detected")
        }
        _ => false,
    }
}

/// Run `op` once inside the caller's transaction (`standalone == false`);
/// as a standalone call, run it again after a retryable error, at most
/// [`MAX_RUNS`] times, sleeping a small random time in between.
#[cfg_attr(not(any(feature = "postgres", feature = "mysql")), allow(dead_code))]
pub(crate) fn run<C, R>(
    conn: &mut C,
    standalone: bool,
    mut op: impl FnMut(&mut C) -> QueryResult<R>,
) -> QueryResult<R> {
    let mut run = 1;
    loop {
        match op(conn) {
            Err(e) if standalone && run < MAX_RUNS && is_retryable(&e) => {
                std::thread::sleep(backoff(run));
                run += 1;
            }
            result => return result,
        }
    }
}

/// A random pause in `[0, min(2^run, 128)]` ms, so that callers that just
/// collided spread out instead of colliding again.
fn backoff(run: u32) -> std::time::Duration {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(run);
    let cap_us = 1000u64 << run.min(7);
    std::time::Duration::from_micros(hasher.finish() % (cap_us + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_stays_under_its_cap_and_varies() {
        for run in 1..40 {
            let cap = 1000u64 << run.min(7);
            assert!(backoff(run).as_micros() as u64 <= cap);
        }
        let pauses: std::collections::HashSet<_> = (0..20).map(|_| backoff(6)).collect();
        assert!(pauses.len() > 10, "backoff is not random: {pauses:?}");
    }

    #[test]
    fn only_aborted_work_is_retryable() {
        struct Info(&'static str);
        impl diesel::result::DatabaseErrorInformation for Info {
            fn message(&self) -> &str {
                self.0
            }
            fn details(&self) -> Option<&str> {
                None
            }
            fn hint(&self) -> Option<&str> {
                None
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
        let db = |kind, msg| Error::DatabaseError(kind, Box::new(Info(msg)));
        assert!(is_retryable(&db(
            DatabaseErrorKind::SerializationFailure,
            "x"
        )));
        assert!(is_retryable(&db(
            DatabaseErrorKind::Unknown,
            "deadlock detected"
        )));
        assert!(!is_retryable(&db(
            DatabaseErrorKind::UniqueViolation,
            "deadlock detected"
        )));
        assert!(!is_retryable(&db(
            DatabaseErrorKind::Unknown,
            "Lock wait timeout exceeded"
        )));
        assert!(!is_retryable(&Error::NotFound));
    }
}
