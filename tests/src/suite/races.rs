//! The race and stress tests, the same on every backend: callers on
//! connections of their own, one thread each, released together by a barrier
//! ([`crate::race`]), and the same races run by a naive read-then-insert,
//! which must fail them: proof that the race is real and the checks catch it.
//! Each run prints one `RACE |` line of figures.

use std::sync::atomic::{AtomicUsize, Ordering};

use diesel::prelude::*;
use diesel_get_or_create::prelude::*;

use crate::backend::{AsConnRef, Isolation, Mode, TestBackend, TestDatabase};
use crate::models::*;
use crate::race::*;
use crate::schema::*;
use crate::{call, query};

/// `#[test]` functions on backend `$backend`: one stress run per named setting
/// (`name: Isolation, Mode;`), and the naive strategies' runs.
#[macro_export]
macro_rules! race_tests {
    ($backend:ty; $($name:ident: $isolation:ident, $mode:ident;)*) => {
        $(
            #[test]
            fn $name() {
                $crate::suite::races::stress::<$backend>(
                    $crate::backend::Isolation::$isolation,
                    $crate::backend::Mode::$mode,
                )
            }
        )*
        $crate::suite_tests!($backend, races: [
            naive_read_then_insert_fails_the_race,
            naive_counter_loses_increments,
        ]);
    };
}

type Op<C> = fn(&mut C, &str) -> QueryResult<(User, bool)>;

fn get<C: AsConnRef>(conn: &mut C, key: &str) -> QueryResult<(User, bool)> {
    call!(
        conn,
        User::get_or_create(users::email.key(key), names(key, key, "R"))
    )
}

fn count<C: AsConnRef>(conn: &mut C, key: &str) -> QueryResult<(User, bool)> {
    call!(
        conn,
        User::update_or_create_with(
            users::email.key(key),
            users::visits.eq(users::visits + 1),
            (names(key, key, "R"), users::visits.eq(1)),
        )
    )
}

/// Django's get_or_create, without its IntegrityError handling: read, then insert.
fn naive_get<C: AsConnRef>(conn: &mut C, key: &str) -> QueryResult<(User, bool)> {
    // (The select is written out twice: `as_select` is typed by its backend.)
    if let Some(user) = query!(
        conn,
        first::<User>,
        users::table
            .filter(users::email.eq(key))
            .select(User::as_select())
    )
    .optional()?
    {
        return Ok((user, false));
    }
    query!(
        conn,
        execute,
        diesel::insert_into(users::table).values((users::email.eq(key), names(key, key, "R")))
    )?;
    Ok((
        query!(
            conn,
            first::<User>,
            users::table
                .filter(users::email.eq(key))
                .select(User::as_select())
        )?,
        true,
    ))
}

/// A read-modify-write counter (Django's update_or_create before ticket
/// 29499): read the row, write `visits + 1` computed in the application, or
/// insert it.
fn naive_count<C: AsConnRef>(conn: &mut C, key: &str) -> QueryResult<(User, bool)> {
    let (user, created) = naive_get(conn, key)?;
    if created {
        return Ok((user, true));
    }
    query!(
        conn,
        execute,
        diesel::update(users::table.filter(users::id.eq(user.id)))
            .set(users::visits.eq(user.visits + 1))
    )?;
    Ok((user, false))
}

fn rows<C: AsConnRef>(conn: &mut C, key: &str) -> i64 {
    query!(
        conn,
        get_result::<i64>,
        users::table.filter(users::email.eq(key)).count()
    )
    .unwrap()
}

fn rows_and_visits<C: AsConnRef>(conn: &mut C, key: &str) -> (i64, i64) {
    let visits: Vec<i32> = query!(
        conn,
        load::<i32>,
        users::table
            .filter(users::email.eq(key))
            .select(users::visits)
    )
    .unwrap();
    (
        visits.len() as i64,
        visits.iter().map(|&v| i64::from(v)).sum(),
    )
}

pub fn callers<B: TestBackend>(db: &B::Db, isolation: Isolation, n: usize) -> Vec<Caller<B::Conn>> {
    (0..n)
        .map(|_| Caller::new(db.connect_at(isolation)))
        .collect()
}

/// Call `op` standalone, or inside a transaction of the caller's that runs
/// again after a serialization failure.
fn call<B: TestBackend>(
    conn: &mut B::Conn,
    key: &str,
    op: Op<B::Conn>,
    mode: Mode,
    retries: &AtomicUsize,
) -> QueryResult<(User, bool)> {
    match mode {
        Mode::InTransaction => B::retrying_transaction(conn, retries, |conn| op(conn, key)),
        Mode::Standalone => op(conn, key),
    }
}

/// Properties 1 and 3 (callers on one missing key, for both operations) and
/// property 4 (callers incrementing one counter), at one isolation level,
/// standalone or inside the callers' transactions, in the sizes of
/// [`TestBackend::RACES`].
pub fn stress<B: TestBackend>(isolation: Isolation, mode: Mode) {
    let level = isolation.sql();
    let db = B::Db::new(&format!("race_{level}_{mode:?}"));
    let mut failures = Vec::new();
    for (name, op) in [
        ("get_or_create", get as Op<B::Conn>),
        ("update_or_create", count as Op<B::Conn>),
    ] {
        for &(n, rounds) in B::RACES.missing_key {
            let mut cs = callers::<B>(&db, isolation, n);
            let retries = AtomicUsize::new(0);
            let prefix = format!("{name}-{n}");
            let out = race(
                &mut cs,
                rounds,
                &prefix,
                |c, k| call::<B>(c, k, op, mode, &retries),
                rows,
            );
            let (aborted, deadlocks) = aborts(&cs);
            report(
                B::NAME,
                level,
                mode.label(),
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

    for &(n, calls) in B::RACES.counter {
        let mut cs = callers::<B>(&db, isolation, n);
        let retries = AtomicUsize::new(0);
        let key = format!("counter-{n}@race.test");
        let c = counter(
            &mut cs,
            calls,
            &key,
            |c, k| call::<B>(c, k, count, mode, &retries),
            rows_and_visits,
        );
        let (aborted, deadlocks) = aborts(&cs);
        report(
            B::NAME,
            level,
            mode.label(),
            "update_or_create counter",
            n,
            n * calls,
            c.rows,
            c.errors.len(),
            retries.load(Ordering::Relaxed),
            aborted,
            c.most_aborts,
            deadlocks,
        );
        let total = (n * calls) as i64;
        if (c.rows, c.total, c.creators, c.errors.len()) != (1, total, 1, 0) {
            failures.push(format!(
                "counter x{n}: rows {} total {} (expected {total}) creators {} errors {:?}",
                c.rows,
                c.total,
                c.creators,
                &c.errors[..c.errors.len().min(5)]
            ));
        }
    }
    assert!(failures.is_empty(), "{level} {mode:?}: {failures:#?}");
}

/// The race of [`stress`] against a naive read-then-insert must fail a round.
pub fn naive_read_then_insert_fails_the_race<B: TestBackend>() {
    let db = B::Db::new("race_naive");
    let isolation = B::NAIVE_ISOLATION;
    let (n, rounds) = B::RACES.naive_missing_key;
    let mut cs = callers::<B>(&db, isolation, n);
    let out = race(&mut cs, rounds, "naive", naive_get, rows);
    let failed = out.iter().filter(|r| r.check().is_err()).count();
    let errors: usize = out.iter().map(|r| r.errors.len()).sum();
    report(
        B::NAME,
        isolation.sql(),
        "naive",
        "read-then-insert, missing key",
        n,
        n * rounds,
        out.iter().map(|r| r.rows).sum(),
        errors,
        0,
        0,
        0,
        0,
    );
    assert!(
        failed > 0,
        "the naive version passed every round: the race is not exercised"
    );
}

/// The counter of [`stress`] run by a naive read-modify-write must lose an
/// increment (or fail a call).
pub fn naive_counter_loses_increments<B: TestBackend>() {
    let db = B::Db::new("race_naive_counter");
    let isolation = B::NAIVE_ISOLATION;
    let (n, calls) = B::RACES.naive_counter;
    let mut cs = callers::<B>(&db, isolation, n);
    let c = counter(
        &mut cs,
        calls,
        "naive-counter@race.test",
        naive_count,
        rows_and_visits,
    );
    report(
        B::NAME,
        isolation.sql(),
        "naive",
        "read-modify-write counter",
        n,
        n * calls,
        c.rows,
        c.errors.len(),
        0,
        0,
        0,
        0,
    );
    assert!(
        c.total < (n * calls) as i64 || !c.errors.is_empty(),
        "no increment lost: {c:?}"
    );
}
