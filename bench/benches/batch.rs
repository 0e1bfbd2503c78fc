//! A batch of 100 keys, per backend: `get_or_create_all` against 100 single
//! `get_or_create` calls and against the hand-written Diesel batch idiom; and
//! `update_or_create_all_with` (`visits + 1`, or created with 1) against 100
//! single `update_or_create_with` calls and the hand-written multi-row upsert
//! (`insert_into(users).values(rows).on_conflict(email).do_update()`, setting
//! `visits` to `visits + 1`; MariaDB `on_conflict(DuplicatedKeys)`, `ON
//! DUPLICATE KEY UPDATE`) followed by the rows' `SELECT`, which cannot tell
//! which rows it created nor return exactly the rows it wrote; and
//! `update_or_create_all` (key `i` of a batch set to, or created with,
//! `visits = i`) against 100 single `update_or_create` calls and the
//! hand-written multi-row upsert setting the inserted values (`do_update()
//! .set((c.eq(excluded(c)), ..))`; MariaDB `c = VALUES(c)`), then the rows'
//! `SELECT`.
//!
//! Three forms, each returning the 100 keys' rows in input order:
//!
//! * `crate batch`: `User::get_or_create_all(conn, keys.map(|k| (users::email.key(k),
//!   defaults)))`, with whether each row was created;
//! * `100 singles`: `User::get_or_create(conn, users::email.key(k), defaults)` for each key;
//! * `hand-written`: one multi-row insert of all 100 keys that skips the existing ones
//!   (SQLite, PostgreSQL: `insert_into(users).values(rows).on_conflict_do_nothing()`;
//!   MariaDB: `insert_or_ignore_into(users).values(rows)`, `INSERT IGNORE`), then
//!   `users.filter(email.eq_any(keys))` (PostgreSQL `= ANY($1)`, the others `IN (..)`),
//!   the rows put back in input order through a `HashMap`. It cannot tell which rows it
//!   created, and it is correct only at READ COMMITTED (or outside a transaction): in a
//!   transaction at REPEATABLE READ or SERIALIZABLE the `SELECT` does not see a row
//!   committed by a concurrent caller after the snapshot, whose key the insert skipped,
//!   so a key can come back without a row. `ON CONFLICT DO NOTHING` without a target
//!   and `INSERT IGNORE` also skip a row that conflicts on another unique index (and
//!   `INSERT IGNORE` turns other errors into warnings).
//!
//! Six situations: `miss` (100 new keys at every batch, each form its own) and `hit`
//! (100 existing keys, a window of the seeded rows moving at every batch), and the same
//! for the updates (`update-miss`, `update-hit`, `each-miss`, `each-hit`). The table is
//! the test suite's `users`, seeded with [`SEEDED`] rows and analyzed (in test mode
//! [`SEEDED_TEST`]); each group runs on new connections.
//!
//! Each round times one batch of each form back to back on the same connection, in an
//! order that cycles through the six permutations; the paired ratios `crate /
//! 100 singles` and `crate / hand-written` are the medians of the per-round ratios
//! (background load hits the three batches of a round alike), and the time of each
//! form is its median over the rounds. Rounds go on until [`BUDGET`] has passed (at
//! least [`MIN_ROUNDS`], at most [`MAX_ROUNDS`]), after [`WARM_UP_ROUNDS`] untimed ones.
//! SQLite: automatic WAL checkpoints are off on the timed connection and a passive
//! checkpoint runs after every timed batch, outside the timing, so that each batch
//! starts from a checkpointed WAL and no form pays for another's writes.
//!
//! Statements per batch are counted once per form and situation with Diesel's
//! instrumentation, on a second connection (the timed one carries none);
//! `BENCH_SQL=1` prints the first four of each (shortened) on stderr.
//!
//! `cargo bench -p diesel-get-or-create-bench --features postgres,mysql --bench batch`
//! runs every backend (the default features run SQLite only); a positional argument
//! keeps the groups whose name contains it (`-- postgres/`, `-- /miss`). Under
//! `cargo test` (no `--bench` argument) or `cargo bench -- --test` each form runs
//! once per group, with its result checked, as a smoke test.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel_get_or_create::prelude::*;
use diesel_get_or_create_bench::seeded_key;
use diesel_get_or_create_bench::stats::median;
use diesel_get_or_create_tests::backend::AsConnRef;
use diesel_get_or_create_tests::counter::StatementCounter;
use diesel_get_or_create_tests::models::{names, User};
use diesel_get_or_create_tests::schema::users;

/// Keys per batch.
const KEYS: usize = 100;
/// Rows seeded in every table (then `ANALYZE`d): the hit batches take
/// windows of them. Enough rows that the planners pick the `email` index
/// for the hand-written `IN` / `= ANY` lookup, as on a table of any size:
/// with 1000 rows, PostgreSQL's cached generic plan for `email = ANY($1)`
/// was a sequential scan, kept as the miss batches grew the table, until
/// the `SELECT` took 90 ms.
const SEEDED: usize = 20_000;
/// Rows seeded in test mode (no timings: the plans do not matter).
const SEEDED_TEST: usize = 1000;

/// The rows to seed: [`SEEDED`], or [`SEEDED_TEST`] in test mode.
fn seeded() -> usize {
    if bench_mode() {
        SEEDED
    } else {
        SEEDED_TEST
    }
}
/// Untimed rounds first (prepared-statement caches, buffer pools).
const WARM_UP_ROUNDS: usize = 3;
/// Timed rounds of a group: at least, at most, and the time after which no
/// new round starts once [`MIN_ROUNDS`] have run.
const MIN_ROUNDS: usize = 15;
const MAX_ROUNDS: usize = 401;
const BUDGET: Duration = Duration::from_secs(8);

/// The forms, in table order: the crate's batch first.
const FORMS: [&str; 3] = ["crate batch", "100 singles", "hand-written"];

/// Timed rounds under `cargo bench` (`--bench`), a checked smoke run under
/// `cargo test` or with `--test`.
fn bench_mode() -> bool {
    let args: Vec<String> = std::env::args().collect();
    args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--test")
}

/// Group-name filters: the positional arguments.
fn selected(group: &str) -> bool {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    filters.is_empty() || filters.iter().any(|f| group.contains(f.as_str()))
}

#[derive(Clone, Copy, PartialEq)]
enum Situation {
    /// 100 new keys at every batch.
    Miss,
    /// 100 seeded keys.
    Hit,
    /// `update_or_create_all_with` (`visits + 1`) of 100 new keys.
    UpdateMiss,
    /// `update_or_create_all_with` of 100 seeded keys.
    UpdateHit,
    /// `update_or_create_all` (each key its own `visits`) of 100 new keys.
    EachMiss,
    /// `update_or_create_all` of 100 seeded keys.
    EachHit,
}

impl Situation {
    fn name(self) -> &'static str {
        match self {
            Situation::Miss => "miss",
            Situation::Hit => "hit",
            Situation::UpdateMiss => "update-miss",
            Situation::UpdateHit => "update-hit",
            Situation::EachMiss => "each-miss",
            Situation::EachHit => "each-hit",
        }
    }

    /// Whether the keys are new: every key created.
    fn creates(self) -> bool {
        matches!(
            self,
            Situation::Miss | Situation::UpdateMiss | Situation::EachMiss
        )
    }

    fn updates(self) -> bool {
        matches!(self, Situation::UpdateMiss | Situation::UpdateHit)
    }

    fn each(self) -> bool {
        matches!(self, Situation::EachMiss | Situation::EachHit)
    }
}

/// The keys of batches: fresh ones for misses, windows of the seeded ones for
/// hits.
struct Keys {
    situation: Situation,
    batches: usize,
}

impl Keys {
    /// The keys of the next batch of form `form`.
    fn next(&mut self, form: usize) -> Vec<String> {
        self.batches += 1;
        let n = self.batches;
        if self.situation.creates() {
            let op = self.situation.name();
            (0..KEYS)
                .map(|i| format!("batch-{op}-{form}-{n}-{i}@bench.test"))
                .collect()
        } else {
            // The three forms of a round read neighbouring windows.
            (0..KEYS)
                .map(|i| seeded_key((n * KEYS + i) % seeded()))
                .collect()
        }
    }
}

/// The result of a batch: each key's row in input order, and whether the
/// batch created it (always `false` for the hand-written form).
type Rows = Vec<(User, bool)>;

/// One form of a backend: runs a batch of keys on a connection.
type Form<C> = fn(&mut C, &[String]) -> QueryResult<Rows>;

/// Check a batch's result: a row per key, in input order, created exactly
/// when the keys were missing (for the forms that can tell).
fn check(form: usize, situation: Situation, keys: &[String], rows: &Rows) {
    assert_eq!(rows.len(), keys.len(), "{}: one row per key", FORMS[form]);
    for (key, (user, created)) in keys.iter().zip(rows) {
        assert_eq!(&user.email, key, "{}: rows in input order", FORMS[form]);
        if form != 2 {
            assert_eq!(
                *created,
                situation.creates(),
                "{}: created flag",
                FORMS[form]
            );
        }
    }
}

/// The figures of one group.
struct Row {
    group: String,
    rounds: usize,
    /// Median time per batch of each form (ns); `None` in test mode.
    medians: [Option<f64>; 3],
    /// Paired ratios crate / 100 singles and crate / hand-written.
    ratios: [Option<f64>; 2],
    statements: [usize; 3],
}

/// Statements of one batch of each form, counted on connection `counting`.
fn count_statements<C: Connection + AsConnRef>(
    counting: &mut C,
    forms: &[Form<C>; 3],
    keys: &mut Keys,
) -> [usize; 3] {
    let counter = StatementCounter::install(counting);
    let mut counts = [0; 3];
    for (i, form) in forms.iter().enumerate() {
        let batch = keys.next(i);
        counter.take();
        let rows = form(counting, &batch).expect("batch");
        if std::env::var_os("BENCH_SQL").is_some() {
            let statements = counter.statements();
            for sql in statements.iter().take(4) {
                let short: String = sql.chars().take(240).collect();
                let more = if sql.len() > short.len() { " .." } else { "" };
                eprintln!("    {}: {short}{more}", FORMS[i]);
            }
            if statements.len() > 4 {
                eprintln!("    {}: .. ({} more)", FORMS[i], statements.len() - 4);
            }
        }
        counts[i] = counter.take();
        check(i, keys.situation, &batch, &rows);
    }
    counts
}

/// Run one group: statement counts, warm-up, then timed rounds (one round,
/// checked, in test mode). `after_batch` runs after every timed batch,
/// outside the timing.
fn group<C: Connection + AsConnRef>(
    name: String,
    situation: Situation,
    conn: &mut C,
    counting: &mut C,
    forms: &[Form<C>; 3],
    after_batch: fn(&mut C),
) -> Row {
    let mut keys = Keys {
        situation,
        batches: 0,
    };
    let statements = count_statements(counting, forms, &mut keys);
    let bench = bench_mode();
    let mut run = |form: usize, keys: &mut Keys, check_rows: bool| -> f64 {
        let batch = keys.next(form);
        let start = Instant::now();
        let rows = black_box(forms[form](black_box(&mut *conn), &batch).expect("batch"));
        let elapsed = start.elapsed().as_nanos() as f64;
        if check_rows {
            check(form, situation, &batch, &rows);
        } else {
            assert_eq!(rows.len(), KEYS);
        }
        after_batch(conn);
        elapsed
    };
    if !bench {
        for form in 0..3 {
            run(form, &mut keys, true);
        }
        println!(
            "{name}: ok (test mode: each form ran once, results checked); statements per batch: \
             {} {}, {} {}, {} {}",
            FORMS[0], statements[0], FORMS[1], statements[1], FORMS[2], statements[2]
        );
        return Row {
            group: name,
            rounds: 1,
            medians: [None; 3],
            ratios: [None; 2],
            statements,
        };
    }
    for round in 0..WARM_UP_ROUNDS {
        for form in 0..3 {
            run(form, &mut keys, round == 0);
        }
    }
    // The six orders of three forms, one per round in turn.
    const ORDERS: [[usize; 3]; 6] = [
        [0, 1, 2],
        [1, 2, 0],
        [2, 0, 1],
        [0, 2, 1],
        [2, 1, 0],
        [1, 0, 2],
    ];
    let mut times: [Vec<f64>; 3] = Default::default();
    let (mut vs_singles, mut vs_hand) = (Vec::new(), Vec::new());
    let start = Instant::now();
    let mut rounds = 0;
    while rounds < MAX_ROUNDS && (rounds < MIN_ROUNDS || start.elapsed() < BUDGET) {
        let mut t = [0.0; 3];
        for &form in &ORDERS[rounds % ORDERS.len()] {
            t[form] = run(form, &mut keys, false);
        }
        for (all, t) in times.iter_mut().zip(t) {
            all.push(t);
        }
        vs_singles.push(t[0] / t[1]);
        vs_hand.push(t[0] / t[2]);
        rounds += 1;
    }
    let row = Row {
        group: name,
        rounds,
        medians: times.map(|t| median(&t)),
        ratios: [median(&vs_singles), median(&vs_hand)],
        statements,
    };
    println!(
        "{}: {rounds} rounds in {:.1} s; per batch: {} {}, {} {}, {} {}; crate / 100 singles = {}, \
         crate / hand-written = {} (paired); statements per batch: {}, {}, {}",
        row.group,
        start.elapsed().as_secs_f64(),
        FORMS[0],
        ms(row.medians[0]),
        FORMS[1],
        ms(row.medians[1]),
        FORMS[2],
        ms(row.medians[2]),
        ratio(row.ratios[0]),
        ratio(row.ratios[1]),
        statements[0],
        statements[1],
        statements[2],
    );
    row
}

fn ms(ns: Option<f64>) -> String {
    ns.map_or("n/a".into(), |ns| format!("{:.3} ms", ns / 1e6))
}

fn ratio(r: Option<f64>) -> String {
    r.map_or("n/a".into(), |r| format!("{r:.3}"))
}

fn print_table(rows: &[Row]) {
    if rows.is_empty() {
        return;
    }
    println!();
    if !bench_mode() {
        println!("(test mode: one round per group, no timings)");
    }
    println!(
        "Batch of {KEYS} keys, median time per batch; paired ratios = median over rounds of \
         crate batch / other form in the same round."
    );
    println!(
        "hand-written = insert of all {KEYS} skipping existing keys (ON CONFLICT DO NOTHING; \
         MariaDB INSERT IGNORE) + SELECT .. WHERE email IN / = ANY: it cannot tell which rows \
         it created, and is correct only at READ COMMITTED (or outside a transaction); \
         update-*: the multi-row upsert (ON CONFLICT (email) DO UPDATE; MariaDB ON DUPLICATE \
         KEY UPDATE) + the same SELECT."
    );
    println!();
    println!(
        "| group | rounds | crate batch | 100 singles | hand-written | crate / 100 singles (paired) \
         | crate / hand-written (paired) | statements/batch: crate, singles, hand-written |"
    );
    println!("|---|--:|--:|--:|--:|--:|--:|--:|");
    for row in rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {}, {}, {} |",
            row.group,
            row.rounds,
            ms(row.medians[0]),
            ms(row.medians[1]),
            ms(row.medians[2]),
            ratio(row.ratios[0]),
            ratio(row.ratios[1]),
            row.statements[0],
            row.statements[1],
            row.statements[2],
        );
    }
}

/// Put rows loaded in any order back in the order of `keys` (each key has
/// exactly one row: the key is unique).
fn in_input_order(keys: &[String], rows: Vec<User>) -> Rows {
    let mut by_email: HashMap<String, User> =
        rows.into_iter().map(|u| (u.email.clone(), u)).collect();
    keys.iter()
        .map(|k| {
            let user = by_email
                .remove(k)
                .expect("a row for every key (READ COMMITTED)");
            (user, false)
        })
        .collect()
}

/// The forms of a backend whose module in the bench crate is `$m`;
/// `$insert` is the hand-written insert that skips existing keys, given
/// the rows.
macro_rules! forms {
    ($m:ident, |$rows:ident| $insert:expr) => {{
        use diesel_get_or_create_bench::$m as m;

        fn crate_batch(conn: &mut m::Conn, keys: &[String]) -> QueryResult<Rows> {
            User::get_or_create_all(
                conn,
                keys.iter().map(|k| {
                    let k = k.as_str();
                    (users::email.key(k), (names(k, k, "B"), users::visits.eq(0)))
                }),
            )
        }

        fn singles(conn: &mut m::Conn, keys: &[String]) -> QueryResult<Rows> {
            keys.iter().map(|k| m::crate_get(conn, k)).collect()
        }

        fn hand_written(conn: &mut m::Conn, keys: &[String]) -> QueryResult<Rows> {
            let $rows: Vec<_> = keys
                .iter()
                .map(|k| (users::email.eq(k), names(k, k, "B"), users::visits.eq(0)))
                .collect();
            $insert.execute(conn)?;
            let rows = users::table
                .filter(users::email.eq_any(keys))
                .select(User::as_select())
                .load(conn)?;
            Ok(in_input_order(keys, rows))
        }

        [
            crate_batch as Form<m::Conn>,
            singles as Form<m::Conn>,
            hand_written as Form<m::Conn>,
        ]
    }};
}

/// The `update_or_create_all_with` forms of a backend (`visits + 1`, or
/// created with 1): the crate's batch, 100 single `update_or_create_with`,
/// and `$upsert`, the hand-written multi-row upsert given the rows, then
/// the rows' `SELECT`.
macro_rules! update_forms {
    ($m:ident, |$rows:ident| $upsert:expr) => {{
        use diesel_get_or_create_bench::$m as m;

        fn crate_batch(conn: &mut m::Conn, keys: &[String]) -> QueryResult<Rows> {
            User::update_or_create_all_with(
                conn,
                keys.iter().map(|k| {
                    let k = k.as_str();
                    (users::email.key(k), (names(k, k, "B"), users::visits.eq(1)))
                }),
                users::visits.eq(users::visits + 1),
            )
        }

        fn singles(conn: &mut m::Conn, keys: &[String]) -> QueryResult<Rows> {
            keys.iter()
                .map(|k| {
                    User::update_or_create_with(
                        conn,
                        users::email.key(k.as_str()),
                        users::visits.eq(users::visits + 1),
                        (names(k, k, "B"), users::visits.eq(1)),
                    )
                })
                .collect()
        }

        fn hand_written(conn: &mut m::Conn, keys: &[String]) -> QueryResult<Rows> {
            let $rows: Vec<_> = keys
                .iter()
                .map(|k| (users::email.eq(k), names(k, k, "B"), users::visits.eq(1)))
                .collect();
            $upsert.execute(conn)?;
            let rows = users::table
                .filter(users::email.eq_any(keys))
                .select(User::as_select())
                .load(conn)?;
            Ok(in_input_order(keys, rows))
        }

        [
            crate_batch as Form<m::Conn>,
            singles as Form<m::Conn>,
            hand_written as Form<m::Conn>,
        ]
    }};
}

/// The `update_or_create_all` forms of a backend (each key `i` of a batch
/// set to, or created with, `visits = i`): the crate's batch, 100 single
/// `update_or_create`, and `$upsert`, the hand-written multi-row upsert
/// setting each row's inserted `visits`, then the rows' `SELECT`.
macro_rules! each_forms {
    ($m:ident, |$rows:ident| $upsert:expr) => {{
        use diesel_get_or_create_bench::$m as m;

        fn crate_batch(conn: &mut m::Conn, keys: &[String]) -> QueryResult<Rows> {
            User::update_or_create_all(
                conn,
                keys.iter().enumerate().map(|(i, k)| {
                    let k = k.as_str();
                    (
                        users::email.key(k),
                        (names(k, k, "B"), users::visits.eq(i as i32)),
                    )
                }),
            )
        }

        fn singles(conn: &mut m::Conn, keys: &[String]) -> QueryResult<Rows> {
            keys.iter()
                .enumerate()
                .map(|(i, k)| {
                    User::update_or_create(
                        conn,
                        users::email.key(k.as_str()),
                        (names(k, k, "B"), users::visits.eq(i as i32)),
                    )
                })
                .collect()
        }

        fn hand_written(conn: &mut m::Conn, keys: &[String]) -> QueryResult<Rows> {
            let $rows: Vec<_> = keys
                .iter()
                .enumerate()
                .map(|(i, k)| {
                    (
                        users::email.eq(k),
                        names(k, k, "B"),
                        users::visits.eq(i as i32),
                    )
                })
                .collect();
            $upsert.execute(conn)?;
            let rows = users::table
                .filter(users::email.eq_any(keys))
                .select(User::as_select())
                .load(conn)?;
            Ok(in_input_order(keys, rows))
        }

        [
            crate_batch as Form<m::Conn>,
            singles as Form<m::Conn>,
            hand_written as Form<m::Conn>,
        ]
    }};
}

/// A database for backend `$m` (seeded, then analyzed with `$analyze`) and
/// its groups, each on new connections (so that no prepared statement or
/// cached plan of one group carries over to the next).
macro_rules! backend {
    ($rows:expr, $name:literal, $m:ident, $analyze:literal, $forms:expr, $update_forms:expr, $each_forms:expr, $after_batch:expr) => {{
        use diesel_get_or_create_bench::$m as m;
        let groups: Vec<(String, Situation)> = [
            Situation::Hit,
            Situation::Miss,
            Situation::UpdateHit,
            Situation::UpdateMiss,
            Situation::EachHit,
            Situation::EachMiss,
        ]
        .into_iter()
        .map(|s| (format!("{}/{}", $name, s.name()), s))
        .filter(|(g, _)| selected(g))
        .collect();
        if !groups.is_empty() {
            let db = m::Db::new("bench_batch", true);
            {
                let mut conn = db.connect(None);
                m::seed(&mut conn, seeded());
                conn.batch_execute($analyze).expect("analyze");
            }
            let (get_forms, update_forms, each_forms) = ($forms, $update_forms, $each_forms);
            for (g, situation) in groups {
                let forms = if situation.each() {
                    each_forms
                } else if situation.updates() {
                    update_forms
                } else {
                    get_forms
                };
                let mut conn = db.connect(None);
                m::checkpoint_on_schedule(&mut conn);
                let mut counting = db.connect(None);
                $rows.push(group(
                    g,
                    situation,
                    &mut conn,
                    &mut counting,
                    &forms,
                    $after_batch,
                ));
            }
        }
    }};
}

fn main() {
    let mut rows: Vec<Row> = Vec::new();
    #[cfg(feature = "sqlite")]
    backend!(
        rows,
        "sqlite",
        sqlite,
        "ANALYZE",
        forms!(sqlite, |rows| diesel::insert_into(users::table)
            .values(rows)
            .on_conflict_do_nothing()),
        update_forms!(sqlite, |rows| diesel::insert_into(users::table)
            .values(rows)
            .on_conflict(users::email)
            .do_update()
            .set(users::visits.eq(users::visits + 1))),
        each_forms!(sqlite, |rows| diesel::insert_into(users::table)
            .values(rows)
            .on_conflict(users::email)
            .do_update()
            .set((
                users::username.eq(diesel::upsert::excluded(users::username)),
                users::first_name.eq(diesel::upsert::excluded(users::first_name)),
                users::last_name.eq(diesel::upsert::excluded(users::last_name)),
                users::visits.eq(diesel::upsert::excluded(users::visits)),
            ))),
        |c: &mut diesel::SqliteConnection| c
            .batch_execute("PRAGMA wal_checkpoint(PASSIVE)")
            .expect("checkpoint")
    );
    #[cfg(feature = "postgres")]
    backend!(
        rows,
        "postgres",
        pg,
        "ANALYZE users",
        forms!(pg, |rows| diesel::insert_into(users::table)
            .values(rows)
            .on_conflict_do_nothing()),
        update_forms!(pg, |rows| diesel::insert_into(users::table)
            .values(rows)
            .on_conflict(users::email)
            .do_update()
            .set(users::visits.eq(users::visits + 1))),
        each_forms!(pg, |rows| diesel::insert_into(users::table)
            .values(rows)
            .on_conflict(users::email)
            .do_update()
            .set((
                users::username.eq(diesel::upsert::excluded(users::username)),
                users::first_name.eq(diesel::upsert::excluded(users::first_name)),
                users::last_name.eq(diesel::upsert::excluded(users::last_name)),
                users::visits.eq(diesel::upsert::excluded(users::visits)),
            ))),
        |_: &mut diesel::PgConnection| {}
    );
    #[cfg(feature = "mysql")]
    backend!(
        rows,
        "mariadb",
        my,
        "ANALYZE TABLE users",
        forms!(my, |rows| diesel::insert_or_ignore_into(users::table)
            .values(rows)),
        update_forms!(my, |rows| diesel::insert_into(users::table)
            .values(rows)
            .on_conflict(diesel::dsl::DuplicatedKeys)
            .do_update()
            .set(users::visits.eq(users::visits + 1))),
        each_forms!(my, |rows| diesel::insert_into(users::table)
            .values(rows)
            .on_conflict(diesel::dsl::DuplicatedKeys)
            .do_update()
            .set((
                users::username.eq(diesel::dsl::sql::<diesel::sql_types::Text>(
                    "VALUES(username)"
                )),
                users::first_name.eq(diesel::dsl::sql::<diesel::sql_types::Text>(
                    "VALUES(first_name)"
                )),
                users::last_name.eq(diesel::dsl::sql::<diesel::sql_types::Text>(
                    "VALUES(last_name)"
                )),
                users::visits.eq(diesel::dsl::sql::<diesel::sql_types::Integer>(
                    "VALUES(visits)"
                )),
            ))),
        |_: &mut diesel::MysqlConnection| {}
    );
    print_table(&rows);
}
