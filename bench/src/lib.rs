//! Benchmark support for diesel-get-or-create: the strategies compared (this
//! crate, hand-written Diesel, and the naive read-then-insert), fresh
//! databases for each backend, a cheap statement counter and the statistics
//! the benchmarks print.
//!
//! Every strategy works on the test suite's `users` table and `User` model
//! (`diesel_get_or_create_tests`), looked up by `email`. A "get" creates a
//! missing row with `visits = 0`; an "increment" adds one to `visits`, or
//! creates the row with `visits = 1`. So after any run, the sum of `visits`
//! over the table is the number of increments that were applied.
#![deny(missing_docs)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use diesel::connection::{Instrumentation, InstrumentationEvent};
use diesel::Connection;

pub mod stats;

#[cfg(feature = "mysql")]
pub mod my;
#[cfg(feature = "postgres")]
pub mod pg;
#[cfg(feature = "sqlite")]
pub mod sqlite;

/// An operation on one key, as every strategy implements it: returns the row
/// and whether this call created it (`false` where a hand-written strategy
/// cannot tell).
pub type Op<C> =
    fn(&mut C, &str) -> diesel::QueryResult<(diesel_get_or_create_tests::models::User, bool)>;

/// The get and increment operations of one strategy, on connection type `C`.
pub struct Strategy<C> {
    /// Name in the figures.
    pub name: &'static str,
    /// Return the row of a key, creating it (`visits = 0`) if missing.
    pub get: Op<C>,
    /// Add one to the row's `visits`, creating it (`visits = 1`) if missing.
    pub increment: Op<C>,
    /// Whether the strategy's table has the unique indexes (the naive
    /// strategy's has none, so that its duplicates show as rows).
    pub unique_indexes: bool,
}

/// Counts the statements a connection sends, and those that failed, through
/// Diesel's instrumentation, and nothing else: unlike the test suite's
/// `StatementCounter` it renders no SQL, so it costs next to nothing on a
/// connection whose calls are timed.
#[derive(Clone, Default)]
pub struct Counter {
    started: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    /// Failed statements by cause: duplicate key, deadlock or serialization
    /// failure, anything else.
    causes: Arc<[AtomicUsize; 3]>,
}

impl Counter {
    /// Install a new counter on `conn`.
    pub fn install<C: Connection>(conn: &mut C) -> Counter {
        let counter = Counter::default();
        conn.set_instrumentation(counter.clone());
        counter
    }

    /// Statements since the last call.
    pub fn take(&self) -> usize {
        self.started.swap(0, Ordering::Relaxed)
    }

    /// Failed statements (a duplicate key the operation absorbed, a
    /// deadlock or serialization failure it retried, or an error it
    /// returned) since the last call.
    pub fn take_failed(&self) -> usize {
        self.failed.swap(0, Ordering::Relaxed)
    }

    /// Failed statements since the counter was installed, by cause:
    /// `[duplicate key, deadlock or serialization failure, other]`.
    pub fn failure_causes(&self) -> [usize; 3] {
        [0, 1, 2].map(|i| self.causes[i].load(Ordering::Relaxed))
    }
}

/// The cause of a failed statement, as an index of [`Counter::failure_causes`].
fn cause(error: &diesel::result::Error) -> usize {
    use diesel::result::{DatabaseErrorKind, Error};
    match error {
        Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => 0,
        Error::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => 1,
        Error::DatabaseError(_, info) if info.message().contains("eadlock") => 1,
        _ => 2,
    }
}

impl Instrumentation for Counter {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        match event {
            InstrumentationEvent::StartQuery { .. } => {
                self.started.fetch_add(1, Ordering::Relaxed);
            }
            InstrumentationEvent::FinishQuery {
                error: Some(error), ..
            } => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                self.causes[cause(error)].fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }
}

/// The email of seeded key number `i`.
pub fn seeded_key(i: usize) -> String {
    format!("seed-{i}@bench.test")
}

/// The operations every backend shares, written once for connection type
/// `$Conn`: this crate's calls, the naive read-then-insert, and the
/// hand-written lookup.
macro_rules! common_ops {
    ($Conn:ty) => {
        use diesel::prelude::*;
        use diesel_get_or_create::prelude::*;
        use diesel_get_or_create_tests::models::{names, User};
        use diesel_get_or_create_tests::schema::users;

        /// The connection type of this backend.
        pub type Conn = $Conn;

        /// This crate: `User::get_or_create` by email, defaults `visits = 0`.
        pub fn crate_get(conn: &mut Conn, key: &str) -> QueryResult<(User, bool)> {
            User::get_or_create(
                conn,
                users::email.key(key),
                (names(key, key, "B"), users::visits.eq(0)),
            )
        }

        /// This crate: `User::update_or_create_with(.., visits + 1, visits = 1)`.
        pub fn crate_increment(conn: &mut Conn, key: &str) -> QueryResult<(User, bool)> {
            User::update_or_create_with(
                conn,
                users::email.key(key),
                users::visits.eq(users::visits + 1),
                (names(key, key, "B"), users::visits.eq(1)),
            )
        }

        /// Hand-written: `users.filter(email.eq(key)).first()`.
        pub fn hand_hit(conn: &mut Conn, key: &str) -> QueryResult<User> {
            users::table
                .filter(users::email.eq(key))
                .select(User::as_select())
                .first(conn)
        }

        /// Hand-written, without `.first()`'s bound `LIMIT`:
        /// `users.filter(email.eq(key)).get_result()` (the key is unique).
        pub fn hand_hit_unlimited(conn: &mut Conn, key: &str) -> QueryResult<User> {
            users::table
                .filter(users::email.eq(key))
                .select(User::as_select())
                .get_result(conn)
        }

        /// Naive (Django's `get_or_create` without its `IntegrityError`
        /// handling): read, then insert and read back.
        pub fn naive_get(conn: &mut Conn, key: &str) -> QueryResult<(User, bool)> {
            if let Some(user) = hand_hit(conn, key).optional()? {
                return Ok((user, false));
            }
            diesel::insert_into(users::table)
                .values((
                    users::email.eq(key),
                    names(key, key, "B"),
                    users::visits.eq(0),
                ))
                .execute(conn)?;
            Ok((hand_hit(conn, key)?, true))
        }

        /// Naive read-modify-write counter: read the row, write `visits + 1`
        /// computed in the application, or insert and read back.
        pub fn naive_increment(conn: &mut Conn, key: &str) -> QueryResult<(User, bool)> {
            if let Some(mut user) = hand_hit(conn, key).optional()? {
                user.visits += 1;
                diesel::update(users::table.filter(users::id.eq(user.id)))
                    .set(users::visits.eq(user.visits))
                    .execute(conn)?;
                return Ok((user, false));
            }
            diesel::insert_into(users::table)
                .values((
                    users::email.eq(key),
                    names(key, key, "B"),
                    users::visits.eq(1),
                ))
                .execute(conn)?;
            Ok((hand_hit(conn, key)?, true))
        }

        /// Insert seeded keys `0..n` (`visits = 0`).
        pub fn seed(conn: &mut Conn, n: usize) {
            let keys: Vec<String> = (0..n).map($crate::seeded_key).collect();
            for chunk in keys.chunks(500) {
                let rows: Vec<_> = chunk
                    .iter()
                    .map(|k| (users::email.eq(k), names(k, k, "B"), users::visits.eq(0)))
                    .collect();
                diesel::insert_into(users::table)
                    .values(rows)
                    .execute(conn)
                    .expect("seed the table");
            }
        }

        /// `(rows, duplicate rows, sum of visits)` of the table: a duplicate
        /// is every row beyond the first with the same email.
        pub fn audit(conn: &mut Conn) -> (usize, usize, i64) {
            let rows: Vec<(String, i32)> = users::table
                .select((users::email, users::visits))
                .load(conn)
                .expect("read the table");
            let distinct: std::collections::HashSet<&str> =
                rows.iter().map(|(e, _)| e.as_str()).collect();
            let visits = rows.iter().map(|&(_, v)| i64::from(v)).sum();
            (rows.len(), rows.len() - distinct.len(), visits)
        }

        /// This crate's strategy.
        pub fn crate_strategy() -> $crate::Strategy<Conn> {
            $crate::Strategy {
                name: "diesel-get-or-create",
                get: crate_get,
                increment: crate_increment,
                unique_indexes: true,
            }
        }

        /// The naive strategy (run on a table without unique indexes).
        pub fn naive_strategy() -> $crate::Strategy<Conn> {
            $crate::Strategy {
                name: "naive read-then-write",
                get: naive_get,
                increment: naive_increment,
                unique_indexes: false,
            }
        }
    };
}

/// `INSERT .. ON CONFLICT` hand-written operations, for the backends whose
/// Diesel connection has `RETURNING` (SQLite and PostgreSQL).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
macro_rules! returning_upserts {
    () => {
        /// Hand-written `get_or_create`:
        /// `INSERT .. ON CONFLICT (email) DO NOTHING RETURNING ..`, then a
        /// `SELECT` if another caller had the key.
        pub fn hand_get(conn: &mut Conn, key: &str) -> QueryResult<(User, bool)> {
            let inserted = diesel::insert_into(users::table)
                .values((
                    users::email.eq(key),
                    names(key, key, "B"),
                    users::visits.eq(0),
                ))
                .on_conflict(users::email)
                .do_nothing()
                .returning(User::as_select())
                .get_result(conn)
                .optional()?;
            match inserted {
                Some(user) => Ok((user, true)),
                None => Ok((hand_hit(conn, key)?, false)),
            }
        }

        /// Hand-written `update_or_create`:
        /// `INSERT .. ON CONFLICT (email) DO UPDATE SET visits = visits + 1 RETURNING ..`
        /// (it cannot tell whether it inserted: `created` is always false).
        pub fn hand_increment(conn: &mut Conn, key: &str) -> QueryResult<(User, bool)> {
            diesel::insert_into(users::table)
                .values((
                    users::email.eq(key),
                    names(key, key, "B"),
                    users::visits.eq(1),
                ))
                .on_conflict(users::email)
                .do_update()
                .set(users::visits.eq(users::visits + 1))
                .returning(User::as_select())
                .get_result(conn)
                .map(|user| (user, false))
        }

        /// Hand-written `UPDATE .. SET visits = visits + 1 WHERE email = ..
        /// RETURNING ..`: the crate's statement when the row exists (it cannot
        /// create a missing row; a reference point, not an equivalent).
        pub fn hand_update_returning(conn: &mut Conn, key: &str) -> QueryResult<(User, bool)> {
            diesel::update(users::table.filter(users::email.eq(key)))
                .set(users::visits.eq(users::visits + 1))
                .returning(User::as_select())
                .get_result(conn)
                .map(|user| (user, false))
        }

        /// The hand-written upsert strategy.
        pub fn upsert_strategy() -> $crate::Strategy<Conn> {
            $crate::Strategy {
                name: "hand-written upsert",
                get: hand_get,
                increment: hand_increment,
                unique_indexes: true,
            }
        }
    };
}

#[allow(unused_imports)]
pub(crate) use common_ops;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) use returning_upserts;
