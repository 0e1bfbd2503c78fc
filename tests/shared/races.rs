// The race and stress tests, the same on every server backend.
//
// `include!`d by each backend's race test file, which defines `Conn`,
// `TestDb` (with `connect_at(isolation)`), `BACKEND` (its name in the
// figures) and the list of isolation levels and modes through
// `stress_tests!`.

use std::sync::atomic::{AtomicUsize, Ordering};

use diesel::prelude::*;
use diesel_get_or_create::prelude::*;
use diesel_get_or_create_tests::models::*;
use diesel_get_or_create_tests::race::*;
use diesel_get_or_create_tests::schema::*;

type Op = fn(&mut Conn, &str) -> QueryResult<(User, bool)>;

fn get(conn: &mut Conn, key: &str) -> QueryResult<(User, bool)> {
    User::get_or_create(conn, users::email.key(key), names(key, key, "R"))
}

fn count(conn: &mut Conn, key: &str) -> QueryResult<(User, bool)> {
    User::update_or_create_with(
        conn,
        users::email.key(key),
        users::visits.eq(users::visits + 1),
        (names(key, key, "R"), users::visits.eq(1)),
    )
}

/// Django's get_or_create, without its IntegrityError handling: read, then insert.
fn naive_get(conn: &mut Conn, key: &str) -> QueryResult<(User, bool)> {
    let found = users::table
        .filter(users::email.eq(key))
        .select(User::as_select())
        .first(conn)
        .optional()?;
    if let Some(user) = found {
        return Ok((user, false));
    }
    diesel::insert_into(users::table)
        .values((users::email.eq(key), names(key, key, "R")))
        .execute(conn)?;
    let user = users::table
        .filter(users::email.eq(key))
        .select(User::as_select())
        .first(conn)?;
    Ok((user, true))
}

/// A read-modify-write counter: read the row, write `visits + 1` computed
/// in the application, or insert it.
fn naive_count(conn: &mut Conn, key: &str) -> QueryResult<(User, bool)> {
    let (user, created) = naive_get(conn, key)?;
    if created {
        return Ok((user, true));
    }
    diesel::update(users::table.filter(users::id.eq(user.id)))
        .set(users::visits.eq(user.visits + 1))
        .execute(conn)?;
    Ok((user, false))
}

fn rows(conn: &mut Conn, key: &str) -> i64 {
    users::table
        .filter(users::email.eq(key))
        .count()
        .get_result(conn)
        .unwrap()
}

fn rows_and_visits(conn: &mut Conn, key: &str) -> (i64, i64) {
    let visits: Vec<i32> = users::table
        .filter(users::email.eq(key))
        .select(users::visits)
        .load(conn)
        .unwrap();
    (visits.len() as i64, visits.iter().map(|&v| i64::from(v)).sum())
}

fn callers(db: &TestDb, isolation: &str, n: usize) -> Vec<Caller<Conn>> {
    (0..n).map(|_| Caller::new(db.connect_at(isolation))).collect()
}

/// Call `op` standalone, or inside a transaction of the caller's that runs
/// again after a serialization failure.
fn call(conn: &mut Conn, key: &str, op: Op, in_txn: bool, retries: &AtomicUsize) -> QueryResult<(User, bool)> {
    if in_txn {
        in_caller_transaction(conn, retries, |conn| op(conn, key))
    } else {
        op(conn, key)
    }
}

/// Properties 1 and 3 (3, 8 and 32 callers on one missing key, for both
/// operations) and property 4 (32 callers x 200 increments of one counter),
/// at one isolation level, standalone or inside the callers' transactions.
fn stress(isolation: &str, in_txn: bool) {
    let mode = if in_txn { "in txn" } else { "standalone" };
    let db = TestDb::new(&format!("race_{isolation}_{in_txn}"));
    let mut failures = Vec::new();
    for (name, op) in [("get_or_create", get as Op), ("update_or_create", count as Op)] {
        for (n, rounds) in [(3, 20), (8, 10), (32, 4)] {
            let mut cs = callers(&db, isolation, n);
            let retries = AtomicUsize::new(0);
            let prefix = format!("{name}-{n}");
            let out = race(&mut cs, rounds, &prefix, |c, k| call(c, k, op, in_txn, &retries), rows);
            let (aborted, deadlocks) = aborts(&cs);
            report(
                BACKEND,
                isolation,
                mode,
                &format!("{name}, missing key"),
                n,
                n * rounds,
                out.iter().map(|r| r.rows).sum(),
                out.iter().map(|r| r.errors.len()).sum(),
                retries.load(Ordering::Relaxed),
                aborted,
                out.iter().map(|r| r.most_aborts).max().unwrap_or(0),
                deadlocks,
            );
            for (i, r) in out.iter().enumerate() {
                if let Err(e) = r.check() {
                    failures.push(format!("{name} x{n} round {i}: {e}"));
                }
            }
        }
    }

    let mut cs = callers(&db, isolation, 32);
    let retries = AtomicUsize::new(0);
    let c = counter(&mut cs, 200, "counter@race.test", |c, k| call(c, k, count, in_txn, &retries), rows_and_visits);
    let (aborted, deadlocks) = aborts(&cs);
    report(
        BACKEND,
        isolation,
        mode,
        "update_or_create counter",
        32,
        32 * 200,
        c.rows,
        c.errors.len(),
        retries.load(Ordering::Relaxed),
        aborted,
        c.most_aborts,
        deadlocks,
    );
    if (c.rows, c.total, c.creators, c.errors.len()) != (1, 6400, 1, 0) {
        failures.push(format!(
            "counter: rows {} total {} creators {} errors {:?}",
            c.rows,
            c.total,
            c.creators,
            &c.errors[..c.errors.len().min(5)]
        ));
    }
    assert!(failures.is_empty(), "{isolation} {mode}: {failures:#?}");
}

macro_rules! stress_tests {
    ($($name:ident: $isolation:literal, $in_txn:literal;)*) => {
        $(
            #[test]
            fn $name() {
                stress($isolation, $in_txn);
            }
        )*
    };
}

/// The same race against a naive read-then-insert must fail: proof that the
/// race is real and the test can catch it.
#[test]
fn naive_read_then_insert_fails_the_race() {
    let db = TestDb::new("race_naive");
    let isolation = NAIVE_ISOLATION;
    let mut cs = callers(&db, isolation, 8);
    let out = race(&mut cs, 10, "naive", naive_get, rows);
    let failed = out.iter().filter(|r| r.check().is_err()).count();
    let errors: usize = out.iter().map(|r| r.errors.len()).sum();
    report(BACKEND, isolation, "naive", "read-then-insert, missing key", 8, 80, out.iter().map(|r| r.rows).sum(), errors, 0, 0, 0, 0);
    assert!(failed > 0, "the naive version passed every round: the race is not exercised");

    let mut cs = callers(&db, isolation, 8);
    let c = counter(&mut cs, 100, "naive-counter@race.test", naive_count, rows_and_visits);
    report(BACKEND, isolation, "naive", "read-modify-write counter", 8, 800, c.rows, c.errors.len(), 0, 0, 0, 0);
    assert!(c.total < 800 || !c.errors.is_empty(), "no increment lost: {c:?}");
}
