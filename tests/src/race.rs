//! The race harness shared by the backends: N connections, one thread each,
//! released together by a barrier, all calling one operation on one key.

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Barrier;

use diesel::result::{DatabaseErrorKind, Error};
use diesel::QueryResult;

use crate::backend::AsConnRef;

use crate::counter::StatementCounter;
use crate::models::User;

/// A connection of the race with the counter installed on it.
pub struct Caller<C> {
    pub conn: C,
    pub counter: StatementCounter,
}

impl<C: AsConnRef> Caller<C> {
    pub fn new(mut conn: C) -> Self {
        let counter = StatementCounter::install(&mut conn);
        Caller { conn, counter }
    }

    /// Run `op` on the connection; also return how many statements the
    /// server aborted meanwhile.
    pub fn call<R>(&mut self, op: impl FnOnce(&mut C) -> R) -> (R, usize) {
        let before = self.counter.aborts();
        let result = op(&mut self.conn);
        (result, self.counter.aborts() - before)
    }
}

/// A call's result, and how many of its statements the server aborted.
type Outcome = (QueryResult<(User, bool)>, usize);

/// What one round (every caller once, on a fresh key) produced.
#[derive(Debug, Default)]
pub struct Round {
    pub rows: i64,
    pub creators: usize,
    pub ids: BTreeSet<i32>,
    pub errors: Vec<String>,
    /// The most statements the server aborted (serialization failure or
    /// deadlock) during one call: each one made a standalone call run again.
    pub most_aborts: usize,
}

impl Round {
    /// The properties: one row, one creator, everybody got that row, no error.
    pub fn check(&self) -> Result<(), String> {
        if self.rows == 1 && self.creators == 1 && self.ids.len() == 1 && self.errors.is_empty() {
            Ok(())
        } else {
            Err(format!("{self:?}"))
        }
    }
}

/// Run `rounds` rounds of every caller calling `op(conn, key)` at once on the
/// round's key; `rows(conn, key)` counts the rows with that key afterwards.
pub fn race<C, Op, Rows>(
    callers: &mut [Caller<C>],
    rounds: usize,
    prefix: &str,
    op: Op,
    mut rows: Rows,
) -> Vec<Round>
where
    C: AsConnRef + Send,
    Op: Fn(&mut C, &str) -> QueryResult<(User, bool)> + Sync,
    Rows: FnMut(&mut C, &str) -> i64,
{
    let mut out = Vec::new();
    for round in 0..rounds {
        let key = format!("{prefix}-{round}@race.test");
        let barrier = Barrier::new(callers.len());
        let results: Vec<Outcome> = std::thread::scope(|s| {
            let handles: Vec<_> = callers
                .iter_mut()
                .map(|caller| {
                    let (barrier, key, op) = (&barrier, &key, &op);
                    s.spawn(move || {
                        barrier.wait();
                        caller.call(|conn| op(conn, key))
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut r = Round {
            rows: rows(&mut callers[0].conn, &key),
            ..Round::default()
        };
        for (result, aborts) in results {
            r.most_aborts = r.most_aborts.max(aborts);
            match result {
                Ok((user, created)) => {
                    r.creators += usize::from(created);
                    r.ids.insert(user.id);
                }
                Err(e) => r.errors.push(e.to_string()),
            }
        }
        out.push(r);
    }
    out
}

/// What a counter race produced.
#[derive(Debug, Default)]
pub struct Counted {
    pub total: i64,
    pub rows: i64,
    pub creators: usize,
    pub errors: Vec<String>,
    /// As in [`Round::most_aborts`].
    pub most_aborts: usize,
}

/// Every caller calls `op(conn, key)` `calls` times, all at once.
pub fn counter<C, Op, Read>(
    callers: &mut [Caller<C>],
    calls: usize,
    key: &str,
    op: Op,
    mut read: Read,
) -> Counted
where
    C: AsConnRef + Send,
    Op: Fn(&mut C, &str) -> QueryResult<(User, bool)> + Sync,
    Read: FnMut(&mut C, &str) -> (i64, i64),
{
    let barrier = Barrier::new(callers.len());
    let results: Vec<Vec<Outcome>> = std::thread::scope(|s| {
        let handles: Vec<_> = callers
            .iter_mut()
            .map(|caller| {
                let (barrier, op) = (&barrier, &op);
                s.spawn(move || {
                    barrier.wait();
                    (0..calls)
                        .map(|_| caller.call(|conn| op(conn, key)))
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let (rows, total) = read(&mut callers[0].conn, key);
    let mut c = Counted {
        total,
        rows,
        ..Counted::default()
    };
    for (result, aborts) in results.into_iter().flatten() {
        c.most_aborts = c.most_aborts.max(aborts);
        match result {
            Ok((_, created)) => c.creators += usize::from(created),
            Err(e) => c.errors.push(e.to_string()),
        }
    }
    c
}

/// Run `op` in a transaction of the caller's, the way an application does:
/// the first statement takes the snapshot (at REPEATABLE READ and
/// SERIALIZABLE, and on SQLite), and `diesel_get_or_create::transaction`
/// runs the whole transaction again after a failure that means "retry"
/// (counted in `retries`).
pub fn in_caller_transaction<C, R>(
    conn: &mut C,
    retries: &AtomicUsize,
    op: impl Fn(&mut C) -> QueryResult<R>,
) -> QueryResult<R>
where
    C: diesel::Connection,
    C::Backend: diesel_get_or_create::RetryBackend,
{
    let mut runs = 0;
    let result = diesel_get_or_create::transaction(conn, |conn| {
        runs += 1;
        conn.batch_execute("SELECT 1 FROM users LIMIT 1")?;
        op(conn)
    });
    retries.fetch_add(runs.max(1) - 1, Ordering::Relaxed);
    result
}

/// `TestBackend::retrying_transaction` of a backend whose connection is a
/// sync Diesel connection: [`in_caller_transaction`].
macro_rules! retrying_transaction_of_a_sync_connection {
    () => {
        fn retrying_transaction<R>(
            conn: &mut Self::Conn,
            retries: &std::sync::atomic::AtomicUsize,
            op: impl Fn(&mut Self::Conn) -> diesel::QueryResult<R>,
        ) -> diesel::QueryResult<R> {
            crate::race::in_caller_transaction(conn, retries, op)
        }
    };
}
pub(crate) use retrying_transaction_of_a_sync_connection;

/// [`in_caller_transaction`] for the async connections of the suites, whose
/// code is sync-shaped (`crate::asyncs`): the transaction is opened and
/// ended through [`crate::txn`], and runs again while `must_retry` holds.
/// (`asynchronous::transaction` takes an async closure; `tests/transaction.rs`
/// tests it.)
pub fn in_caller_transaction_by_hand<C, R>(
    conn: &mut C,
    retries: &AtomicUsize,
    must_retry: fn(&Error) -> bool,
    op: impl Fn(&mut C) -> QueryResult<R>,
) -> QueryResult<R>
where
    C: AsConnRef,
{
    for _ in 0..10_000 {
        let result = crate::txn::transaction(conn, |conn| {
            crate::exec(conn, "SELECT 1 FROM users LIMIT 1")?;
            op(conn)
        });
        match result {
            Err(e) if must_retry(&e) => {
                retries.fetch_add(1, Ordering::Relaxed);
                pause();
            }
            other => return other,
        }
    }
    panic!("the transaction never committed")
}

/// A random pause of up to 2 ms, as an application waits before running a
/// failed transaction again.
fn pause() {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u8(0);
    std::thread::sleep(std::time::Duration::from_micros(h.finish() % 2000));
}

/// A serialization failure (PostgreSQL 40001; MySQL 1213, a deadlock).
pub fn is_serialization_failure(err: &Error) -> bool {
    matches!(
        err,
        Error::DatabaseError(DatabaseErrorKind::SerializationFailure, _)
    )
}

/// One line of the stress figures, written past the test harness's output
/// capture so that `cargo test` shows it.
#[allow(clippy::too_many_arguments)]
pub fn report(
    backend: &str,
    isolation: &str,
    mode: &str,
    scenario: &str,
    callers: usize,
    calls: usize,
    rows: i64,
    errors: usize,
    retries: usize,
    aborts: usize,
    most_aborts: usize,
    deadlocks: usize,
) {
    let _ = writeln!(
        std::io::stderr(),
        "RACE | {backend:<8} | {isolation:<15} | {mode:<10} | {scenario:<26} | callers {callers:>3} | calls {calls:>5} | rows {rows:>4} | errors {errors:>3} | caller retries {retries:>4} | aborted statements {aborts:>5} (most in one call {most_aborts:>2}) | deadlocks {deadlocks:>3}"
    );
}

/// Sum of the aborted statements and deadlocks seen by these callers.
pub fn aborts<C>(callers: &[Caller<C>]) -> (usize, usize) {
    callers.iter().fold((0, 0), |(a, d), c| {
        (a + c.counter.aborts(), d + c.counter.deadlocks())
    })
}
