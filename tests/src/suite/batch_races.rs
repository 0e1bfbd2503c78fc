//! Races of `get_or_create_all`, the same on every backend: [`CALLERS`]
//! callers on connections of their own, one thread each, released together
//! by a barrier (as in [`crate::race`]), each sending the same [`KEYS`]
//! missing keys in a shuffled order of its own, for [`ROUNDS`] rounds of
//! fresh keys. The batch sorts its keys, so the callers insert them in one
//! order and wait for each other instead of deadlocking.
//!
//! The same race run by a naive batch (read, then one multi-row `INSERT` of
//! the missing keys in the caller's own order) must fail it: proof that the
//! race is real and that the checks catch it. Each run prints one `RACE |`
//! line of figures.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Barrier;

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error};
use diesel_get_or_create::prelude::*;

use crate::backend::{AsConnRef, Isolation, Mode, TestBackend, TestDatabase};
use crate::models::*;
use crate::race::{aborts, report, Caller};
use crate::schema::*;
use crate::{call_all, query};

/// Callers of each race, each on its own connection.
pub const CALLERS: usize = 8;
/// Keys of each batch: every caller sends the same keys.
pub const KEYS: usize = 100;
/// Rounds of each race, each on fresh keys.
pub const ROUNDS: usize = 5;

/// `#[test]` functions on backend `$backend`, in a module `batch_races`: one
/// race of `get_or_create_all` per named setting (`name: Isolation, Mode;`),
/// and `naive_batch_fails_the_race`.
#[macro_export]
macro_rules! batch_race_tests {
    ($backend:ty; $($name:ident: $isolation:ident, $mode:ident;)*) => {
        mod batch_races {
            #[allow(unused_imports)]
            use super::*;

            $(
                #[test]
                fn $name() {
                    $crate::suite::batch_races::stress_batch::<$backend>(
                        $crate::backend::Isolation::$isolation,
                        $crate::backend::Mode::$mode,
                    )
                }
            )*
            $crate::suite_tests!($backend, batch_races: [naive_batch_fails_the_race]);
        }
    };
}

/// A batch operation: the rows of `keys`, in their order, and whether this
/// call created each.
type BatchOp<C> = fn(&mut C, &[String]) -> QueryResult<Vec<(User, bool)>>;

fn get_all<C: AsConnRef>(conn: &mut C, keys: &[String]) -> QueryResult<Vec<(User, bool)>> {
    call_all!(
        conn,
        User,
        keys.iter()
            .map(|e| (users::email.key(e.as_str()), names(e, e, "R")))
    )
}

/// A hand-written batch: read the keys' rows, insert the missing ones with
/// one multi-row `INSERT` in the caller's order (not sorted), read again.
fn naive_get_all<C: AsConnRef>(conn: &mut C, keys: &[String]) -> QueryResult<Vec<(User, bool)>> {
    // (The select is written out twice: `as_select` is typed by its backend.)
    let existing: Vec<User> = query!(
        conn,
        load::<User>,
        users::table
            .filter(users::email.eq_any(keys))
            .select(User::as_select())
    )?;
    let existed: BTreeSet<&str> = existing.iter().map(|u| u.email.as_str()).collect();
    let missing: Vec<_> = keys
        .iter()
        .filter(|k| !existed.contains(k.as_str()))
        .map(|k| (users::email.eq(k.as_str()), names(k, k, "R")))
        .collect();
    if !missing.is_empty() {
        // Sync connections only, as `get_or_create_all` (diesel-async's
        // SQLite wrapper has no multi-row insert).
        crate::dispatch!(
            conn,
            |c| diesel::insert_into(users::table).values(missing).execute(c),
            async |_a| unreachable!("the batch races run on sync connections"),
        )?;
    }
    let all: Vec<User> = query!(
        conn,
        load::<User>,
        users::table
            .filter(users::email.eq_any(keys))
            .select(User::as_select())
    )?;
    let mut all: BTreeMap<String, User> = all.into_iter().map(|u| (u.email.clone(), u)).collect();
    keys.iter()
        .map(|k| {
            let user = all.remove(k).ok_or(Error::NotFound)?;
            Ok((user, !existed.contains(k.as_str())))
        })
        .collect()
}

fn callers<B: TestBackend>(db: &B::Db, isolation: Isolation, n: usize) -> Vec<Caller<B::Conn>> {
    (0..n)
        .map(|_| Caller::new(db.connect_at(isolation)))
        .collect()
}

/// Call `op` standalone, or inside a transaction of the caller's that runs
/// again after a serialization failure (as `suite::races` does for one key).
fn call<B: TestBackend>(
    conn: &mut B::Conn,
    keys: &[String],
    op: BatchOp<B::Conn>,
    mode: Mode,
    retries: &AtomicUsize,
) -> QueryResult<Vec<(User, bool)>> {
    match mode {
        Mode::InTransaction => B::retrying_transaction(conn, retries, |conn| op(conn, keys)),
        Mode::Standalone => op(conn, keys),
    }
}

/// `keys` in the order of `caller` in `round`: a Fisher-Yates shuffle driven
/// by a xorshift generator seeded by both (deterministic, different for each
/// caller and round).
pub fn shuffled(keys: &[String], caller: usize, round: usize) -> Vec<String> {
    let mut state = 0x9E37_79B9_7F4A_7C15_u64 ^ ((caller as u64 + 1) << 32) ^ (round as u64 + 1);
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut out = keys.to_vec();
    for i in (1..out.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        out.swap(i, j);
    }
    out
}

/// What one round (every caller once, on fresh keys) produced.
#[derive(Debug, Default)]
pub struct BatchRound {
    /// Rows with the round's keys, afterwards.
    pub rows: i64,
    /// The callers' errors.
    pub errors: Vec<String>,
    /// Of the errors: duplicate keys, deadlocks.
    pub duplicates: usize,
    pub deadlocks: usize,
    /// The properties that do not hold (besides errors).
    pub faults: Vec<String>,
    /// As in [`crate::race::Round::most_aborts`].
    pub most_aborts: usize,
    /// Callers that created at least one key.
    pub creators: usize,
    /// Calls that sent an `INSERT` and still got some key's row from
    /// another caller: the calls that raced.
    pub contended: usize,
}

impl BatchRound {
    /// The properties: one row per key, every caller got every key's row in
    /// its input order, one creator per key, all callers agree on each
    /// key's row, no error.
    pub fn check(&self) -> Result<(), String> {
        if self.faults.is_empty() && self.errors.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "rows {}, faults {:?}, errors {:?}",
                self.rows,
                self.faults,
                &self.errors[..self.errors.len().min(3)]
            ))
        }
    }
}

/// What the callers said about one key.
#[derive(Default)]
struct Tally {
    stored: Vec<i32>,
    creators: usize,
    ids: BTreeSet<i32>,
}

/// A call's result, how many of its statements the server aborted, and
/// how many `INSERT`s it sent.
type Outcome = (QueryResult<Vec<(User, bool)>>, usize, usize);

/// Run rounds `rounds` of every caller calling `op(conn, keys)` at once, each
/// with the round's keys in an order of its own ([`shuffled`]).
fn batch_race<C, Op>(
    callers: &mut [Caller<C>],
    rounds: Range<usize>,
    prefix: &str,
    op: Op,
) -> Vec<BatchRound>
where
    C: AsConnRef + Send,
    Op: Fn(&mut C, &[String]) -> QueryResult<Vec<(User, bool)>> + Sync,
{
    rounds
        .map(|round| {
            let keys: Vec<String> = (0..KEYS)
                .map(|i| format!("{prefix}-{round}-{i}@race.test"))
                .collect();
            let orders: Vec<Vec<String>> = (0..callers.len())
                .map(|c| shuffled(&keys, c, round))
                .collect();
            assert_eq!(
                orders.iter().collect::<BTreeSet<_>>().len(),
                callers.len(),
                "every caller has an order of its own"
            );
            let barrier = Barrier::new(callers.len());
            let results: Vec<_> = std::thread::scope(|s| {
                let handles: Vec<_> = callers
                    .iter_mut()
                    .zip(&orders)
                    .map(|(caller, order)| {
                        let (barrier, op) = (&barrier, &op);
                        s.spawn(move || {
                            caller.counter.take();
                            barrier.wait();
                            let (result, aborts) = caller.call(|conn| op(conn, order));
                            let inserts = caller
                                .counter
                                .statements()
                                .iter()
                                .filter(|s| s.trim_start().starts_with("INSERT"))
                                .count();
                            (result, aborts, inserts)
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            check_round(&mut callers[0].conn, &keys, &orders, results)
        })
        .collect()
}

/// The round's figures and the properties that failed.
fn check_round<C: AsConnRef>(
    conn: &mut C,
    keys: &[String],
    orders: &[Vec<String>],
    results: Vec<Outcome>,
) -> BatchRound {
    let stored: Vec<(String, i32)> = query!(
        conn,
        load::<(String, i32)>,
        users::table
            .filter(users::email.eq_any(keys))
            .select((users::email, users::id))
    )
    .unwrap();
    let mut tally: BTreeMap<&str, Tally> = keys
        .iter()
        .map(|k| (k.as_str(), Tally::default()))
        .collect();
    for (email, id) in &stored {
        tally
            .get_mut(email.as_str())
            .expect("a row of the round's keys")
            .stored
            .push(*id);
    }
    let mut r = BatchRound {
        rows: stored.len() as i64,
        ..BatchRound::default()
    };
    let mut misplaced = 0;
    for (c, ((result, aborts, inserts), order)) in results.into_iter().zip(orders).enumerate() {
        r.most_aborts = r.most_aborts.max(aborts);
        let got = match result {
            Ok(got) => got,
            Err(e) => {
                match &e {
                    Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                        r.duplicates += 1
                    }
                    e if e.to_string().contains("eadlock") => r.deadlocks += 1,
                    _ => {}
                }
                r.errors.push(format!("caller {c}: {e}"));
                continue;
            }
        };
        r.creators += usize::from(got.iter().any(|(_, created)| *created));
        r.contended += usize::from(inserts > 0 && got.iter().any(|(_, created)| !created));
        if got.len() != order.len() {
            r.faults.push(format!(
                "caller {c}: {} results for {} keys",
                got.len(),
                order.len()
            ));
        }
        for ((user, created), key) in got.iter().zip(order) {
            match tally.get_mut(key.as_str()) {
                Some(t) if &user.email == key => {
                    t.creators += usize::from(*created);
                    t.ids.insert(user.id);
                }
                _ => misplaced += 1,
            }
        }
    }
    if misplaced > 0 {
        r.faults.push(format!(
            "{misplaced} results not in the caller's input order"
        ));
    }
    let mut fault = |what: &str, bad: Vec<&str>| {
        if let Some(first) = bad.first() {
            r.faults
                .push(format!("{} keys {what} (first: {first})", bad.len()));
        }
    };
    fault(
        "without exactly one row",
        keys_where(&tally, |t| t.stored.len() != 1),
    );
    fault(
        "without exactly one creator",
        keys_where(&tally, |t| t.creators != 1),
    );
    fault(
        "whose callers got other rows than the stored one",
        keys_where(&tally, |t| {
            t.ids.len() != 1 || t.stored.first() != t.ids.first()
        }),
    );
    r
}

fn keys_where<'a>(tally: &BTreeMap<&'a str, Tally>, bad: impl Fn(&Tally) -> bool) -> Vec<&'a str> {
    tally
        .iter()
        .filter(|(_, t)| bad(t))
        .map(|(k, _)| *k)
        .collect()
}

/// Sums over the rounds: rows, errors, the most aborts of one call.
fn totals(out: &[BatchRound]) -> (i64, usize, usize) {
    (
        out.iter().map(|r| r.rows).sum(),
        out.iter().map(|r| r.errors.len()).sum(),
        out.iter().map(|r| r.most_aborts).max().unwrap_or(0),
    )
}

/// A line under the `RACE |` line: whether the calls raced.
fn contention(what: &str, out: &[BatchRound]) {
    let _ = writeln!(
        std::io::stderr(),
        "      {what}: {} of {} calls sent an INSERT and got some key's row from another caller; \
         callers that created keys, per round: {:?}",
        out.iter().map(|r| r.contended).sum::<usize>(),
        CALLERS * out.len(),
        out.iter().map(|r| r.creators).collect::<Vec<_>>(),
    );
}

/// [`CALLERS`] callers each sending the same [`KEYS`] keys to
/// `get_or_create_all` in an order of its own, [`ROUNDS`] rounds, at one
/// isolation level, standalone or inside the callers' transactions. No
/// deadlock may happen standalone: the keys go in one (sorted) order.
pub fn stress_batch<B: TestBackend>(isolation: Isolation, mode: Mode) {
    let level = isolation.sql();
    let db = B::Db::new(&format!("batch_race_{level}_{mode:?}"));
    let mut cs = callers::<B>(&db, isolation, CALLERS);
    let retries = AtomicUsize::new(0);
    let out = batch_race(&mut cs, 0..ROUNDS, "batch", |c, keys| {
        call::<B>(c, keys, get_all, mode, &retries)
    });
    let (aborted, deadlocks) = aborts(&cs);
    let (rows, errors, most_aborts) = totals(&out);
    report(
        B::NAME,
        level,
        mode.label(),
        &format!("get_or_create_all {KEYS} keys"),
        CALLERS,
        CALLERS * ROUNDS,
        rows,
        errors,
        retries.load(Ordering::Relaxed),
        aborted,
        most_aborts,
        deadlocks,
    );
    contention(
        &format!("batch on {} {level} {}", B::NAME, mode.label()),
        &out,
    );
    let failures: Vec<String> = out
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.check().err().map(|e| format!("round {i}: {e}")))
        .collect();
    assert!(failures.is_empty(), "{level} {mode:?}: {failures:#?}");
    if mode == Mode::Standalone {
        assert_eq!(
            deadlocks, 0,
            "{level} standalone: batches in canonical order deadlocked"
        );
    }
}

/// The most rounds the naive batch runs: [`ROUNDS`], and then more, one at
/// a time, until one fails (on SQLite about 6 rounds in 10 fail).
pub const NAIVE_MAX_ROUNDS: usize = 30;

/// The race of [`stress_batch`] run by a naive batch ([`naive_get_all`]),
/// standalone, must fail a round: duplicate keys (a caller inserts a key
/// that another committed after its read), or deadlocks (callers insert the
/// same keys in different orders).
pub fn naive_batch_fails_the_race<B: TestBackend>() {
    let db = B::Db::new("batch_race_naive");
    let isolation = B::NAIVE_ISOLATION;
    let mut cs = callers::<B>(&db, isolation, CALLERS);
    let mut out = batch_race(&mut cs, 0..ROUNDS, "naive-batch", naive_get_all);
    while out.iter().all(|r| r.check().is_ok()) && out.len() < NAIVE_MAX_ROUNDS {
        let round = out.len();
        out.extend(batch_race(
            &mut cs,
            round..round + 1,
            "naive-batch",
            naive_get_all,
        ));
    }
    let (aborted, deadlocks) = aborts(&cs);
    let (rows, errors, most_aborts) = totals(&out);
    report(
        B::NAME,
        isolation.sql(),
        "naive",
        &format!("naive batch {KEYS} keys"),
        CALLERS,
        CALLERS * out.len(),
        rows,
        errors,
        0,
        aborted,
        most_aborts,
        deadlocks,
    );
    let failed = out.iter().filter(|r| r.check().is_err()).count();
    let duplicates: usize = out.iter().map(|r| r.duplicates).sum();
    let deadlocked: usize = out.iter().map(|r| r.deadlocks).sum();
    let faults: Vec<&String> = out.iter().flat_map(|r| &r.faults).collect();
    let _ = writeln!(
        std::io::stderr(),
        "      naive batch on {}: {failed} of {} rounds failed; failed calls: \
         {duplicates} duplicate key, {deadlocked} deadlock, {} other; faults: {faults:?}",
        B::NAME,
        out.len(),
        errors - duplicates - deadlocked,
    );
    assert!(
        failed > 0,
        "the naive batch passed every round: the race is not exercised"
    );
}
