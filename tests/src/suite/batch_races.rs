//! Races of `get_or_create_all`, the same on every backend: [`CALLERS`]
//! callers on connections of their own, one thread each, released together
//! by a barrier (as in [`crate::race`]), each sending the same [`KEYS`]
//! missing keys in a shuffled order of its own, for [`ROUNDS`] rounds of
//! fresh keys. The batch sorts its keys, so the callers insert them in one
//! order and wait for each other instead of deadlocking.
//!
//! A second race ([`stress_batch_overlapping`]) has the callers send
//! partially overlapping batches: each a random subset of about
//! [`SUBSET`] of a pool of [`KEYS`] fresh keys, with [`REPEATS`] of its keys
//! given twice, shuffled. A key is then raced by some callers and not by
//! others, and a caller's multi-row `INSERT` can fail on a key that another
//! caller committed while it waits on an earlier key.
//!
//! The same race run by a naive batch (read, then one multi-row `INSERT` of
//! the missing keys in the caller's own order) must fail it: proof that the
//! race is real and that the checks catch it. Each run prints one `RACE |`
//! line of figures.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Barrier;
use std::time::Duration;

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error};
use diesel_get_or_create::prelude::*;

use crate::backend::{AsConnRef, Isolation, Mode, TestBackend, TestDatabase};
use crate::counter::StatementCounter;
use crate::models::*;
use crate::race::{aborts, report, Caller};
use crate::schema::*;
use crate::suite::races::callers;
use crate::{call_all, query};

/// Callers of each race, each on its own connection.
pub const CALLERS: usize = 8;
/// Keys of each batch: every caller sends the same keys.
pub const KEYS: usize = 100;
/// Rounds of each race, each on fresh keys.
pub const ROUNDS: usize = 5;
/// Distinct keys of each caller's batch in [`stress_batch_overlapping`], on
/// average (from `SUBSET - SUBSET / 5` to `SUBSET + SUBSET / 5`), out of
/// the round's [`KEYS`].
pub const SUBSET: usize = 50;
/// Keys given twice in each caller's batch in [`stress_batch_overlapping`].
pub const REPEATS: usize = 5;

/// `#[test]` functions on backend `$backend`, in a module `batch_races`: per
/// named setting (`name: Isolation, Mode;`), one race of `get_or_create_all`
/// on the same keys (`batch_races::name`) and one on overlapping keys
/// (`batch_races::overlapping::name`); races of `update_or_create_all_with`
/// (`batch_races::updating::..`) and of the per-key `update_or_create_all`
/// (`batch_races::each::name`); and the naive batches that must fail them.
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

            mod overlapping {
                #[allow(unused_imports)]
                use super::*;

                $(
                    #[test]
                    fn $name() {
                        $crate::suite::batch_races::stress_batch_overlapping::<$backend>(
                            $crate::backend::Isolation::$isolation,
                            $crate::backend::Mode::$mode,
                        )
                    }
                )*
            }

            mod updating {
                #[allow(unused_imports)]
                use super::*;

                $(
                    #[test]
                    fn $name() {
                        $crate::suite::batch_races::stress_batch_update::<$backend>(
                            $crate::backend::Isolation::$isolation,
                            $crate::backend::Mode::$mode,
                        )
                    }
                )*

                mod overlapping {
                    #[allow(unused_imports)]
                    use super::*;

                    $(
                        #[test]
                        fn $name() {
                            $crate::suite::batch_races::stress_batch_update_overlapping::<$backend>(
                                $crate::backend::Isolation::$isolation,
                                $crate::backend::Mode::$mode,
                            )
                        }
                    )*
                }
            }

            mod each {
                #[allow(unused_imports)]
                use super::*;

                $(
                    #[test]
                    fn $name() {
                        $crate::suite::batch_races::stress_batch_each::<$backend>(
                            $crate::backend::Isolation::$isolation,
                            $crate::backend::Mode::$mode,
                        )
                    }
                )*
            }

            $crate::suite_tests!($backend, batch_races: [
                naive_batch_fails_the_race,
                naive_batch_update_fails_the_race,
                naive_batch_each_fails_the_race,
            ]);
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

/// `update_or_create_all_with`: each key's `visits` incremented, or the key
/// created with 1.
fn update_all<C: AsConnRef>(conn: &mut C, keys: &[String]) -> QueryResult<Vec<(User, bool)>> {
    crate::call_all!(
        conn,
        User,
        update_with: users::visits.eq(users::visits + 1),
        keys.iter().map(|e| (
            users::email.key(e.as_str()),
            (names(e, e, "R"), users::visits.eq(1))
        ))
    )
}

/// A hand-written batch upsert: read the keys' rows, increment the existing
/// ones with one `UPDATE`, insert the missing ones with one multi-row
/// `INSERT` in the caller's order, read again.
fn naive_update_all<C: AsConnRef>(conn: &mut C, keys: &[String]) -> QueryResult<Vec<(User, bool)>> {
    let existing: Vec<String> = query!(
        conn,
        load::<String>,
        users::table
            .filter(users::email.eq_any(keys))
            .select(users::email)
    )?;
    query!(
        conn,
        execute,
        diesel::update(users::table.filter(users::email.eq_any(&existing)))
            .set(users::visits.eq(users::visits + 1))
    )?;
    let missing: Vec<_> = keys
        .iter()
        .filter(|k| !existing.contains(k))
        .map(|k| {
            (
                users::email.eq(k.as_str()),
                names(k, k, "R"),
                users::visits.eq(1),
            )
        })
        .collect();
    if !missing.is_empty() {
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
            Ok((user, !existing.contains(k)))
        })
        .collect()
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
    let mut next = xorshift(caller, round, 0);
    let mut out = keys.to_vec();
    shuffle(&mut out, &mut next);
    out
}

/// The batch of `caller` in `round` of [`stress_batch_overlapping`]: a
/// random subset of `pool` of about [`SUBSET`] keys, [`REPEATS`] of them
/// twice, shuffled (deterministic, different for each caller and round).
pub fn overlapping(pool: &[String], caller: usize, round: usize) -> Vec<String> {
    let mut next = xorshift(caller, round, 0x5EED_0F0B_E5E5);
    let mut out = pool.to_vec();
    shuffle(&mut out, &mut next);
    let spread = SUBSET / 5;
    out.truncate(SUBSET - spread + (next() % (2 * spread as u64 + 1)) as usize);
    // The subset is in random order: its first keys are random keys of it.
    let repeated: Vec<String> = out[..REPEATS].to_vec();
    out.extend(repeated);
    shuffle(&mut out, &mut next);
    out
}

/// A xorshift generator seeded by `caller`, `round` and `salt`.
fn xorshift(caller: usize, round: usize, salt: u64) -> impl FnMut() -> u64 {
    let mut state =
        0x9E37_79B9_7F4A_7C15_u64 ^ ((caller as u64 + 1) << 32) ^ (round as u64 + 1) ^ salt;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}

/// A Fisher-Yates shuffle of `items` driven by `next`.
fn shuffle<T>(items: &mut [T], next: &mut impl FnMut() -> u64) {
    for i in (1..items.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
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
    /// Keys of the round's pool that some caller sent.
    pub sent: usize,
    /// Results at a key's repeat within a caller's batch (each checked:
    /// not created, the row of the key's first occurrence).
    pub repeats: usize,
}

impl BatchRound {
    /// The properties: one row per key sent (none for the pool's other
    /// keys), every caller got every key's row in its input order, one
    /// creator per key over all callers and occurrences, a key repeated in a
    /// batch created at most at its first occurrence and the same row at
    /// each, all callers agree on each key's row, no error.
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

/// A caller's batch in a round: `batch(pool, caller, round)` ([`shuffled`],
/// [`overlapping`]).
type MakeBatch = fn(&[String], usize, usize) -> Vec<String>;

/// Run rounds `rounds` of every caller calling `op(conn, keys)` at once, each
/// with a batch of its own made by `batch` from the round's [`KEYS`] keys.
fn batch_race<C, Op>(
    callers: &mut [Caller<C>],
    rounds: Range<usize>,
    prefix: &str,
    batch: MakeBatch,
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
            let orders: Vec<Vec<String>> =
                (0..callers.len()).map(|c| batch(&keys, c, round)).collect();
            assert_eq!(
                orders.iter().collect::<BTreeSet<_>>().len(),
                callers.len(),
                "every caller has an order of its own"
            );
            let barrier = Barrier::new(callers.len());
            let counters: Vec<StatementCounter> =
                callers.iter().map(|c| c.counter.clone()).collect();
            let done: Vec<AtomicBool> = callers.iter().map(|_| AtomicBool::new(false)).collect();
            let (finished, round_over) = mpsc::channel::<()>();
            let results: Vec<_> = std::thread::scope(|s| {
                let (counters, done) = (&counters, &done);
                s.spawn(move || {
                    watchdog(
                        &format!("{prefix} round {round}"),
                        round_over,
                        counters,
                        done,
                    )
                });
                let handles: Vec<_> = callers
                    .iter_mut()
                    .zip(&orders)
                    .enumerate()
                    .map(|(i, (caller, order))| {
                        let (barrier, op) = (&barrier, &op);
                        let done = &done[i];
                        s.spawn(move || {
                            CALLER.with(|c| c.set(i));
                            caller.counter.take();
                            barrier.wait();
                            let (result, aborts) = caller.call(|conn| op(conn, order));
                            let inserts = caller
                                .counter
                                .statements()
                                .iter()
                                .filter(|s| s.trim_start().starts_with("INSERT"))
                                .count();
                            done.store(true, Ordering::SeqCst);
                            (result, aborts, inserts)
                        })
                    })
                    .collect();
                let results = handles.into_iter().map(|h| h.join().unwrap()).collect();
                drop(finished);
                results
            });
            check_round(&mut callers[0].conn, &keys, &orders, results)
        })
        .collect()
}

/// How long a round may take. A call still running past it is stuck, and
/// cannot be interrupted: [`watchdog`] ends the test process instead of
/// letting it hang. (Seen on MariaDB in [`stress_batch_overlapping`] in the
/// callers' transactions: a locking read that fails with a deadlock after
/// its first rows leaves its cached prepared statement in a state where
/// libmariadb's next `mysql_stmt_execute` of it waits forever for rows.)
pub const ROUND_DEADLINE: Duration = Duration::from_secs(90);

/// Wait until the round is over (`round_over` disconnects); past
/// [`ROUND_DEADLINE`], print what each caller not `done` sent in its call
/// and the last errors of its connection (`STUCK |` lines), and end the
/// process with a failure.
fn watchdog(
    what: &str,
    round_over: mpsc::Receiver<()>,
    counters: &[StatementCounter],
    done: &[AtomicBool],
) {
    if round_over.recv_timeout(ROUND_DEADLINE) != Err(RecvTimeoutError::Timeout) {
        return;
    }
    let mut err = std::io::stderr().lock();
    for (c, counter) in counters.iter().enumerate() {
        if done[c].load(Ordering::SeqCst) {
            continue;
        }
        let statements = counter.statements();
        let errors = counter.errors.lock().unwrap().clone();
        let _ = writeln!(
            err,
            "STUCK | {what}: caller {c} still in its call after {ROUND_DEADLINE:?}, \
             {} statements sent; its connection's last errors: {:?}",
            statements.len(),
            &errors[errors.len().saturating_sub(8)..],
        );
        for statement in &statements {
            let _ = writeln!(
                err,
                "STUCK |   {}",
                statement.chars().take(160).collect::<String>()
            );
        }
    }
    let _ = writeln!(err, "STUCK | {what}: ending the test process");
    std::process::exit(101);
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
    let sent: BTreeSet<&str> = orders.iter().flatten().map(String::as_str).collect();
    let mut r = BatchRound {
        rows: stored.len() as i64,
        sent: sent.len(),
        ..BatchRound::default()
    };
    let mut misplaced = 0;
    let mut bad_repeats = 0;
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
        // The row id at each key's first occurrence in the batch.
        let mut first: BTreeMap<&str, i32> = BTreeMap::new();
        let mut from_another = false;
        for ((user, created), key) in got.iter().zip(order) {
            match first.get(key.as_str()) {
                Some(&id) => {
                    r.repeats += 1;
                    bad_repeats += usize::from(*created || user.id != id);
                }
                None => {
                    first.insert(key, user.id);
                    from_another |= !created;
                }
            }
        }
        r.creators += usize::from(got.iter().any(|(_, created)| *created));
        r.contended += usize::from(inserts > 0 && from_another);
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
    if bad_repeats > 0 {
        r.faults.push(format!(
            "{bad_repeats} results at a key's repeat in a batch created, or another row \
             than at the key's first occurrence"
        ));
    }
    let mut fault = |what: &str, bad: Vec<&str>| {
        if let Some(first) = bad.first() {
            r.faults
                .push(format!("{} keys {what} (first: {first})", bad.len()));
        }
    };
    let sent_where =
        |bad: &dyn Fn(&Tally) -> bool| keys_where(&tally, |k, t| sent.contains(k) && bad(t));
    fault(
        "without exactly one row",
        sent_where(&|t| t.stored.len() != 1),
    );
    fault(
        "without exactly one creator",
        sent_where(&|t| t.creators != 1),
    );
    fault(
        "whose callers got other rows than the stored one",
        sent_where(&|t| t.ids.len() != 1 || t.stored.first() != t.ids.first()),
    );
    fault(
        "that no caller sent with a row",
        keys_where(&tally, |k, t| !sent.contains(k) && !t.stored.is_empty()),
    );
    r
}

fn keys_where<'a>(
    tally: &BTreeMap<&'a str, Tally>,
    bad: impl Fn(&str, &Tally) -> bool,
) -> Vec<&'a str> {
    tally
        .iter()
        .filter(|(k, t)| bad(k, t))
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
    let out = batch_race(&mut cs, 0..ROUNDS, "batch", shuffled, |c, keys| {
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

/// [`CALLERS`] callers each sending `get_or_create_all` a batch of its own
/// ([`overlapping`]): about [`SUBSET`] of the round's [`KEYS`] fresh keys,
/// [`REPEATS`] of them twice, shuffled; [`ROUNDS`] rounds, at one isolation
/// level, standalone or inside the callers' transactions. The defaults
/// repeat the key as the username, so two callers inserting one key collide
/// on two unique columns.
///
/// No error may reach a caller (a transaction that the database aborts runs
/// again, counted in the retries). No deadlock may happen on PostgreSQL and
/// SQLite. MariaDB/MySQL deadlocks here, a known limitation: InnoDB rolls
/// back the rows that a multi-row `INSERT` inserted before the key it
/// failed on, and the callers that waited on those rows then deadlock
/// inserting them. A standalone call runs again after a deadlock (no error
/// reaches the caller); inside a transaction the deadlock is a
/// serialization failure, which the caller's transaction retries. Its
/// deadlocks are printed, not asserted.
pub fn stress_batch_overlapping<B: TestBackend>(isolation: Isolation, mode: Mode) {
    let level = isolation.sql();
    let db = B::Db::new(&format!("batch_overlap_{level}_{mode:?}"));
    let mut cs = callers::<B>(&db, isolation, CALLERS);
    let retries = AtomicUsize::new(0);
    let out = batch_race(&mut cs, 0..ROUNDS, "overlap", overlapping, |c, keys| {
        call::<B>(c, keys, get_all, mode, &retries)
    });
    let (aborted, deadlocks) = aborts(&cs);
    let (rows, errors, most_aborts) = totals(&out);
    report(
        B::NAME,
        level,
        mode.label(),
        &format!("overlapping ~{SUBSET}/{KEYS} +{REPEATS} rep"),
        CALLERS,
        CALLERS * ROUNDS,
        rows,
        errors,
        retries.load(Ordering::Relaxed),
        aborted,
        most_aborts,
        deadlocks,
    );
    let what = format!("overlapping on {} {level} {}", B::NAME, mode.label());
    contention(&what, &out);
    let _ = writeln!(
        std::io::stderr(),
        "      {what}: keys sent per round (of {KEYS}): {:?}; repeats checked: {}",
        out.iter().map(|r| r.sent).collect::<Vec<_>>(),
        out.iter().map(|r| r.repeats).sum::<usize>(),
    );
    let failures: Vec<String> = out
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.check().err().map(|e| format!("round {i}: {e}")))
        .collect();
    assert!(failures.is_empty(), "{level} {mode:?}: {failures:#?}");
    if !overlapping_batches_may_deadlock::<B>() {
        assert_eq!(
            deadlocks, 0,
            "{level} {mode:?}: overlapping batches in canonical order deadlocked"
        );
    }
}

/// Whether overlapping batches may deadlock on backend `B`: on MariaDB/MySQL
/// (see [`stress_batch_overlapping`]).
fn overlapping_batches_may_deadlock<B: TestBackend>() -> bool {
    #[cfg(feature = "mysql")]
    if std::any::TypeId::of::<B>() == std::any::TypeId::of::<crate::my::Mysql>() {
        return true;
    }
    false
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
    let mut out = batch_race(&mut cs, 0..ROUNDS, "naive-batch", shuffled, naive_get_all);
    while out.iter().all(|r| r.check().is_ok()) && out.len() < NAIVE_MAX_ROUNDS {
        let round = out.len();
        out.extend(batch_race(
            &mut cs,
            round..round + 1,
            "naive-batch",
            shuffled,
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

/// [`CALLERS`] callers each sending the same [`KEYS`] keys to
/// `update_or_create_all_with` (`visits + 1`, or created with 1) in an order
/// of its own, [`ROUNDS`] rounds, at one isolation level, standalone or
/// inside the callers' transactions: see [`batch_update_race`].
pub fn stress_batch_update<B: TestBackend>(isolation: Isolation, mode: Mode) {
    batch_update_race::<B>(isolation, mode, "update", shuffled);
}

/// [`stress_batch_update`] with the batches of [`stress_batch_overlapping`]:
/// each caller about [`SUBSET`] of the round's keys, [`REPEATS`] of them
/// twice.
pub fn stress_batch_update_overlapping<B: TestBackend>(isolation: Isolation, mode: Mode) {
    batch_update_race::<B>(isolation, mode, "update-overlap", overlapping);
}

/// Callers sending `update_or_create_all_with` (`visits + 1`, or created
/// with 1) the batches `batch` makes. Besides the properties of
/// [`stress_batch`] (one row and one creator per key, no error): each key
/// ends with `visits` = the number of callers that sent it (no update lost),
/// and those callers got its row with `visits` 1, 2, .. once each (every
/// call returned exactly the row it wrote; a key repeated in a batch is
/// updated once). Deadlocks are printed, not asserted (see the end).
fn batch_update_race<B: TestBackend>(
    isolation: Isolation,
    mode: Mode,
    prefix: &str,
    batch: MakeBatch,
) {
    let level = isolation.sql();
    let db = B::Db::new(&format!("batch_{prefix}_{level}_{mode:?}").replace('-', "_"));
    let mut cs = callers::<B>(&db, isolation, CALLERS);
    let retries = AtomicUsize::new(0);
    let returned: std::sync::Mutex<BTreeMap<String, Vec<i32>>> = Default::default();
    let out = batch_race(&mut cs, 0..ROUNDS, prefix, batch, |c, keys| {
        let result = call::<B>(c, keys, update_all, mode, &retries);
        if let Ok(rows) = &result {
            let rows: BTreeMap<&str, i32> = rows
                .iter()
                .map(|(user, _)| (user.email.as_str(), user.visits))
                .collect();
            let mut returned = returned.lock().unwrap();
            for (email, visits) in rows {
                returned.entry(email.to_owned()).or_default().push(visits);
            }
        }
        result
    });
    let (aborted, deadlocks) = aborts(&cs);
    let (rows, errors, most_aborts) = totals(&out);
    report(
        B::NAME,
        level,
        mode.label(),
        &format!("{prefix} {KEYS} keys"),
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
        &format!("batch {prefix} on {} {level} {}", B::NAME, mode.label()),
        &out,
    );
    let mut failures: Vec<String> = out
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.check().err().map(|e| format!("round {i}: {e}")))
        .collect();
    let stored: BTreeMap<String, i32> = query!(
        &mut cs[0].conn,
        load::<(String, i32)>,
        users::table
            .filter(users::email.like(format!("{prefix}-%")))
            .select((users::email, users::visits))
    )
    .unwrap()
    .into_iter()
    .collect();
    let returned = returned.into_inner().unwrap();
    let wrong: Vec<(&String, &Vec<i32>, Option<&i32>)> = returned
        .iter()
        .filter(|(email, got)| {
            let mut got = (*got).clone();
            got.sort_unstable();
            let expected: Vec<i32> = (1..=got.len() as i32).collect();
            got != expected || stored.get(*email) != Some(&(got.len() as i32))
        })
        .map(|(email, got)| (email, got, stored.get(email)))
        .collect();
    if !wrong.is_empty() || returned.len() != stored.len() {
        failures.push(format!(
            "{} of {} keys whose callers did not get visits 1..=n once each, or whose row \
             does not have n visits (first: {:?})",
            wrong.len(),
            stored.len(),
            wrong.first()
        ));
    }
    // Deadlocks are printed (the `RACE |` line), not asserted: PostgreSQL's
    // upsert locks in key order, yet CI saw 2 deadlocks in 40 standalone
    // calls (READ COMMITTED, partly overlapping; SERIALIZABLE, same keys),
    // retried inside the call, no error reaching a caller. Not explained yet.
    assert!(failures.is_empty(), "{level} {mode:?}: {failures:#?}");
}

/// The race of [`stress_batch_update`] run by a naive batch upsert
/// ([`naive_update_all`]), standalone, must fail a round.
pub fn naive_batch_update_fails_the_race<B: TestBackend>() {
    let db = B::Db::new("batch_update_naive");
    let isolation = B::NAIVE_ISOLATION;
    let mut cs = callers::<B>(&db, isolation, CALLERS);
    let mut out = batch_race(
        &mut cs,
        0..ROUNDS,
        "naive-update",
        shuffled,
        naive_update_all,
    );
    while out.iter().all(|r| r.check().is_ok()) && out.len() < NAIVE_MAX_ROUNDS {
        let round = out.len();
        out.extend(batch_race(
            &mut cs,
            round..round + 1,
            "naive-update",
            shuffled,
            naive_update_all,
        ));
    }
    let (_, errors, _) = totals(&out);
    let failed = out.iter().filter(|r| r.check().is_err()).count();
    let _ = writeln!(
        std::io::stderr(),
        "      naive batch update on {}: {failed} of {} rounds failed, {errors} failed calls",
        B::NAME,
        out.len(),
    );
    assert!(
        failed > 0,
        "the naive batch update passed every round: the race is not exercised"
    );
}

thread_local! {
    /// The index of the caller that this thread runs in [`batch_race`], set
    /// before its call.
    static CALLER: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The `visits` that the caller of this thread writes to every key in the
/// race of [`stress_batch_each`]: `1000 + caller`.
fn my_visits() -> i32 {
    1000 + CALLER.with(|c| c.get()) as i32
}

/// `update_or_create_all`: every key set to (or created with) this caller's
/// [`my_visits`].
fn each_all<C: AsConnRef>(conn: &mut C, keys: &[String]) -> QueryResult<Vec<(User, bool)>> {
    let visits = my_visits();
    crate::call_all!(
        conn,
        User,
        each: keys.iter().map(|e| (
            users::email.key(e.as_str()),
            (names(e, e, "R"), users::visits.eq(visits))
        ))
    )
}

/// A hand-written [`each_all`]: read the keys that exist, one `UPDATE` per
/// existing key, one multi-row `INSERT` of the missing ones in the caller's
/// order, read again.
fn naive_each_all<C: AsConnRef>(conn: &mut C, keys: &[String]) -> QueryResult<Vec<(User, bool)>> {
    let visits = my_visits();
    let existing: BTreeSet<String> = query!(
        conn,
        load::<String>,
        users::table
            .filter(users::email.eq_any(keys))
            .select(users::email)
    )?
    .into_iter()
    .collect();
    for key in &existing {
        query!(
            conn,
            execute,
            diesel::update(users::table.filter(users::email.eq(key))).set(users::visits.eq(visits))
        )?;
    }
    let missing: Vec<_> = keys
        .iter()
        .filter(|k| !existing.contains(*k))
        .map(|k| {
            (
                users::email.eq(k.as_str()),
                names(k, k, "R"),
                users::visits.eq(visits),
            )
        })
        .collect();
    if !missing.is_empty() {
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
        .map(|k| Ok((all.remove(k).ok_or(Error::NotFound)?, !existing.contains(k))))
        .collect()
}

/// Rounds `rounds` of [`batch_race`] ([`shuffled`] batches) with `op` called
/// through [`call`]; besides the checks of [`check_round`], each round fails
/// if a caller got a row whose `visits` is not its own [`my_visits`] (a call
/// must return the row it wrote), or a key's row ends with a `visits` that no
/// caller wrote.
fn each_race<B: TestBackend>(
    cs: &mut [Caller<B::Conn>],
    rounds: Range<usize>,
    prefix: &str,
    op: BatchOp<B::Conn>,
    mode: Mode,
    retries: &AtomicUsize,
) -> Vec<BatchRound> {
    rounds
        .map(|round| {
            let wrong: std::sync::Mutex<Vec<String>> = Default::default();
            let mut r = batch_race(cs, round..round + 1, prefix, shuffled, |c, keys| {
                let result = call::<B>(c, keys, op, mode, retries);
                let mine = my_visits();
                if let Ok(rows) = &result {
                    wrong.lock().unwrap().extend(
                        rows.iter().filter(|(u, _)| u.visits != mine).map(|(u, _)| {
                            format!(
                                "caller {} got visits {} for {}",
                                mine - 1000,
                                u.visits,
                                u.email
                            )
                        }),
                    );
                }
                result
            })
            .pop()
            .expect("one round");
            let wrong = wrong.into_inner().unwrap();
            if let Some(first) = wrong.first() {
                r.faults.push(format!(
                    "{} results with another caller's visits (first: {first})",
                    wrong.len()
                ));
            }
            let stored: Vec<(String, i32)> = query!(
                &mut cs[0].conn,
                load::<(String, i32)>,
                users::table
                    .filter(users::email.like(format!("{prefix}-{round}-%")))
                    .select((users::email, users::visits))
            )
            .unwrap();
            let callers = 1000..1000 + cs.len() as i32;
            let foreign: Vec<_> = stored
                .iter()
                .filter(|(_, v)| !callers.contains(v))
                .collect();
            if let Some(first) = foreign.first() {
                r.faults.push(format!(
                    "{} rows with visits that no caller wrote (first: {first:?})",
                    foreign.len()
                ));
            }
            r
        })
        .collect()
}

/// [`CALLERS`] callers each sending the same [`KEYS`] keys to the per-key
/// `update_or_create_all` in an order of its own, caller `i` setting every
/// key's `visits` to `1000 + i`, [`ROUNDS`] rounds, at one isolation level,
/// standalone or inside the callers' transactions: the checks of
/// [`each_race`]. Deadlocks are printed, not asserted.
pub fn stress_batch_each<B: TestBackend>(isolation: Isolation, mode: Mode) {
    let level = isolation.sql();
    let db = B::Db::new(&format!("batch_each_{level}_{mode:?}"));
    let mut cs = callers::<B>(&db, isolation, CALLERS);
    let retries = AtomicUsize::new(0);
    let out = each_race::<B>(&mut cs, 0..ROUNDS, "each", each_all, mode, &retries);
    let (aborted, deadlocks) = aborts(&cs);
    let (rows, errors, most_aborts) = totals(&out);
    report(
        B::NAME,
        level,
        mode.label(),
        &format!("each {KEYS} keys"),
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
        &format!("batch each on {} {level} {}", B::NAME, mode.label()),
        &out,
    );
    let failures: Vec<String> = out
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.check().err().map(|e| format!("round {i}: {e}")))
        .collect();
    assert!(failures.is_empty(), "{level} {mode:?}: {failures:#?}");
}

/// The race of [`stress_batch_each`] run by a naive batch
/// ([`naive_each_all`]), standalone, must fail a round (rounds as in
/// [`naive_batch_fails_the_race`]).
pub fn naive_batch_each_fails_the_race<B: TestBackend>() {
    let db = B::Db::new("batch_each_naive");
    let isolation = B::NAIVE_ISOLATION;
    let mut cs = callers::<B>(&db, isolation, CALLERS);
    let retries = AtomicUsize::new(0);
    let mut out = Vec::new();
    while out.len() < ROUNDS
        || (out.iter().all(|r: &BatchRound| r.check().is_ok()) && out.len() < NAIVE_MAX_ROUNDS)
    {
        let round = out.len();
        out.extend(each_race::<B>(
            &mut cs,
            round..round + 1,
            "naive-each",
            naive_each_all,
            Mode::Standalone,
            &retries,
        ));
    }
    let (aborted, deadlocks) = aborts(&cs);
    let (rows, errors, most_aborts) = totals(&out);
    report(
        B::NAME,
        isolation.sql(),
        "naive",
        &format!("naive each {KEYS} keys"),
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
    let faults: Vec<&String> = out.iter().flat_map(|r| &r.faults).take(4).collect();
    let _ = writeln!(
        std::io::stderr(),
        "      naive batch each on {}: {failed} of {} rounds failed; failed calls: \
         {duplicates} duplicate key, {deadlocked} deadlock, {} other; faults: {faults:?}",
        B::NAME,
        out.len(),
        errors - duplicates - deadlocked,
    );
    assert!(
        failed > 0,
        "the naive batch each passed every round: the race is not exercised"
    );
}
