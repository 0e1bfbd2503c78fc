//! Races on SQLite: separate connections to one database file, one thread
//! each, released together by a barrier.
//!
//! The same harness runs this crate and a naive read-then-insert; the naive
//! strategy must fail the checks that this crate passes, which shows that
//! the races really happen here.

use diesel::prelude::*;
use diesel::result::Error;
use diesel_get_or_create::prelude::*;
use diesel_get_or_create_tests::models::*;
use diesel_get_or_create_tests::schema::*;
use diesel_get_or_create_tests::sqlite::*;
use std::sync::{Arc, Barrier};

const THREADS: usize = 16;

type GetOrCreateFn = fn(&mut SqliteConnection, &str) -> QueryResult<(User, bool)>;
type CounterFn = fn(&mut SqliteConnection, &str) -> QueryResult<(User, bool)>;

fn defaults(
    email: &str,
) -> (
    diesel::dsl::Eq<users::username, String>,
    diesel::dsl::Eq<users::first_name, String>,
    diesel::dsl::Eq<users::last_name, String>,
) {
    (
        users::username.eq(format!("user-{email}")),
        users::first_name.eq(format!("first-{email}")),
        users::last_name.eq(format!("last-{email}")),
    )
}

fn crate_get_or_create(conn: &mut SqliteConnection, email: &str) -> QueryResult<(User, bool)> {
    User::get_or_create(conn, users::email.key(email), defaults(email))
}

/// The classic helper: read, and insert if nothing was found.
fn naive_get_or_create(conn: &mut SqliteConnection, email: &str) -> QueryResult<(User, bool)> {
    let found = users::table
        .filter(users::email.eq(email))
        .select(User::as_select())
        .first(conn)
        .optional()?;
    if let Some(user) = found {
        return Ok((user, false));
    }
    let user = diesel::insert_into(users::table)
        .values((users::email.eq(email), defaults(email)))
        .returning(User::as_select())
        .get_result(conn)?;
    Ok((user, true))
}

fn crate_counter(conn: &mut SqliteConnection, email: &str) -> QueryResult<(User, bool)> {
    User::update_or_create_with(
        conn,
        users::email.key(email),
        users::visits.eq(users::visits + 1),
        (users::visits.eq(1), defaults(email)),
    )
}

/// Django's pre-29499 `update_or_create`: read the row, then save the value
/// computed from what was read; insert if nothing was read.
fn naive_counter(conn: &mut SqliteConnection, email: &str) -> QueryResult<(User, bool)> {
    let found: Option<User> = users::table
        .filter(users::email.eq(email))
        .select(User::as_select())
        .first(conn)
        .optional()?;
    match found {
        Some(user) => {
            let user = diesel::update(users::table.filter(users::id.eq(user.id)))
                .set(users::visits.eq(user.visits + 1))
                .returning(User::as_select())
                .get_result(conn)?;
            Ok((user, false))
        }
        None => {
            let user = diesel::insert_into(users::table)
                .values((users::email.eq(email), users::visits.eq(1), defaults(email)))
                .returning(User::as_select())
                .get_result(conn)?;
            Ok((user, true))
        }
    }
}

struct RaceOutcome {
    rows: i64,
    created: usize,
    distinct_ids: usize,
    errors: Vec<String>,
}

/// `THREADS` connections call `op` once each on one missing key, together.
fn race_once(db: &TestDb, email: &str, op: GetOrCreateFn) -> RaceOutcome {
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            // Connect before spawning: a thread that failed before the
            // barrier would leave the others waiting forever.
            let mut conn = db.connect();
            let barrier = barrier.clone();
            let email = email.to_owned();
            std::thread::spawn(move || {
                barrier.wait();
                op(&mut conn, &email)
            })
        })
        .collect();
    let results: Vec<QueryResult<(User, bool)>> =
        handles.into_iter().map(|h| h.join().unwrap()).collect();
    let mut conn = db.connect();
    let rows = users::table
        .filter(users::email.eq(email))
        .count()
        .get_result(&mut conn)
        .unwrap();
    let mut ids: Vec<i32> = results.iter().flatten().map(|(u, _)| u.id).collect();
    ids.sort();
    ids.dedup();
    RaceOutcome {
        rows,
        created: results.iter().flatten().filter(|(_, c)| *c).count(),
        distinct_ids: ids.len(),
        errors: results
            .iter()
            .filter_map(|r| r.as_ref().err().map(|e| e.to_string()))
            .collect(),
    }
}

fn check(o: &RaceOutcome) -> Result<(), String> {
    if o.rows == 1 && o.created == 1 && o.distinct_ids == 1 && o.errors.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "rows={} created={} distinct ids={} errors={} {:?}",
            o.rows,
            o.created,
            o.distinct_ids,
            o.errors.len(),
            o.errors.first()
        ))
    }
}

const ROUNDS: usize = 30;

#[test]
fn get_or_create_race_one_row_one_creator_zero_errors() {
    let db = TestDb::new("race-goc");
    let mut failures = Vec::new();
    for round in 0..ROUNDS {
        let outcome = race_once(&db, &format!("k{round}@x.io"), crate_get_or_create);
        if let Err(e) = check(&outcome) {
            failures.push(format!("round {round}: {e}"));
        }
    }
    println!(
        "sqlite get_or_create race: {THREADS} threads x {ROUNDS} keys, {} calls, {} failed rounds",
        THREADS * ROUNDS,
        failures.len()
    );
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn naive_read_then_insert_fails_the_same_race() {
    let db = TestDb::new("race-naive");
    let mut failed_rounds = 0;
    let mut errors = 0;
    for round in 0..ROUNDS {
        let outcome = race_once(&db, &format!("k{round}@x.io"), naive_get_or_create);
        errors += outcome.errors.len();
        if check(&outcome).is_err() {
            failed_rounds += 1;
        }
    }
    println!(
        "naive get_or_create race: {THREADS} threads x {ROUNDS} keys: {failed_rounds} rounds failed, {errors} errors"
    );
    assert!(
        failed_rounds > 0,
        "the naive strategy passed every round: the race harness does not race"
    );
}

const CALLS_PER_THREAD: usize = 100;

struct CounterOutcome {
    visits: i32,
    rows: i64,
    created: usize,
    errors: usize,
    first_error: Option<String>,
}

fn counter_race(db: &TestDb, email: &str, op: CounterFn) -> CounterOutcome {
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let mut conn = db.connect();
            let barrier = barrier.clone();
            let email = email.to_owned();
            std::thread::spawn(move || {
                barrier.wait();
                (0..CALLS_PER_THREAD)
                    .map(|_| op(&mut conn, &email))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let results: Vec<QueryResult<(User, bool)>> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let mut conn = db.connect();
    let rows: Vec<User> = users::table
        .filter(users::email.eq(email))
        .select(User::as_select())
        .load(&mut conn)
        .unwrap();
    CounterOutcome {
        visits: rows.first().map_or(0, |u| u.visits),
        rows: rows.len() as i64,
        created: results.iter().flatten().filter(|(_, c)| *c).count(),
        errors: results.iter().filter(|r| r.is_err()).count(),
        first_error: results
            .iter()
            .find_map(|r| r.as_ref().err().map(Error::to_string)),
    }
}

#[test]
fn update_or_create_counter_loses_no_increment() {
    let db = TestDb::new("race-counter");
    let o = counter_race(&db, "counter@x.io", crate_counter);
    println!(
        "sqlite update_or_create counter: {THREADS} threads x {CALLS_PER_THREAD} calls: visits={} rows={} created={} errors={}",
        o.visits, o.rows, o.created, o.errors
    );
    assert_eq!(o.errors, 0, "{:?}", o.first_error);
    assert_eq!((o.rows, o.created), (1, 1));
    assert_eq!(o.visits, (THREADS * CALLS_PER_THREAD) as i32);
}

#[test]
fn naive_counter_loses_increments() {
    let db = TestDb::new("race-counter-naive");
    let o = counter_race(&db, "counter@x.io", naive_counter);
    let expected = (THREADS * CALLS_PER_THREAD) as i32;
    println!(
        "naive update_or_create counter: {THREADS} threads x {CALLS_PER_THREAD} calls: visits={} (expected {expected}) errors={}",
        o.visits, o.errors
    );
    assert!(
        o.visits != expected || o.errors > 0,
        "the naive counter was exact: the race harness does not race"
    );
}
