//! Overhead of diesel-get-or-create against hand-written Diesel, per backend.
//!
//! Each group pairs one operation of the crate with its hand-written
//! equivalent, in the same run and on the same connection (two connections
//! to one server can differ by 4x in round-trip time), over one seeded
//! table:
//!
//! * `hit`: `get_or_create` on an existing key vs `users.filter(email).first()`
//!   (and vs the same without `.first()`'s bound `LIMIT`, `.get_result()`);
//! * `miss`: `get_or_create` on a new key vs `INSERT .. ON CONFLICT DO NOTHING
//!   RETURNING` (MariaDB: `INSERT`, then `SELECT`);
//! * `update`: `update_or_create_with(visits + 1)` on an existing key vs
//!   `INSERT .. ON CONFLICT DO UPDATE .. RETURNING` (MariaDB:
//!   `ON DUPLICATE KEY UPDATE`, then `SELECT`, with and without a transaction;
//!   SQLite and PostgreSQL also vs a plain `UPDATE .. RETURNING`, which cannot
//!   create but is the crate's statement when the row exists).
//!
//! After each group it prints `ratio = crate / hand-written`: the paired
//! ratio (median over rounds of back-to-back batches of both sides) and the
//! ratio of the criterion sample medians, and the statements per call of each side (counted with
//! Diesel's instrumentation on a separate connection, so the timed ones carry
//! no instrumentation). `BENCH_SQL=1` also prints the statements of one call.
//!
//! `cargo bench -p diesel-get-or-create-bench --all-features` runs every
//! backend (SQLite needs no set-up; PostgreSQL and MariaDB use `GOC_PG_URL`
//! and `GOC_MYSQL_URL`). Under `cargo test` every benchmark runs once.

use std::cell::RefCell;
use std::hint::black_box;
use std::rc::Rc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use diesel::Connection;
use diesel_get_or_create_bench::seeded_key;
use diesel_get_or_create_bench::stats::median;
use diesel_get_or_create_tests::backend::AsConnRef;
use diesel_get_or_create_tests::counter::StatementCounter;

/// Rows seeded in every table: the hit and update benchmarks cycle through them.
const SEEDED: usize = 1000;
/// Criterion samples per benchmark (the ratio is of their medians).
const SAMPLES: usize = 60;
/// Rounds of the interleaved comparison: each round times a batch of the
/// crate's side and a batch of the hand-written side back to back.
const ROUNDS: usize = 31;
/// Time of one batch of the interleaved comparison.
const BATCH: Duration = Duration::from_millis(15);

/// One side of a group: a label and the operation (which picks its own key).
struct Side<'a, C> {
    label: &'static str,
    op: Box<dyn FnMut(&mut C) + 'a>,
}

/// The figures of one group, for the summary at the end.
struct Row {
    group: String,
    crate_ns: Option<f64>,
    /// Per hand-written side: label, criterion median (ns), paired ratio,
    /// statements per call.
    hand: Vec<(&'static str, Option<f64>, Option<f64>, f64)>,
    crate_statements: f64,
}

thread_local! {
    static SUMMARY: RefCell<Vec<Row>> = const { RefCell::new(Vec::new()) };
}

fn bench_mode() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// Statements per call of `side`, over 20 calls on connection `counting`.
fn statements_per_call<C: Connection + AsConnRef>(counting: &mut C, side: &mut Side<'_, C>) -> f64 {
    const CALLS: usize = 20;
    let counter = StatementCounter::install(counting);
    counter.take();
    for _ in 0..CALLS {
        (side.op)(counting);
    }
    let per_call = counter.take() as f64 / CALLS as f64;
    if std::env::var_os("BENCH_SQL").is_some() {
        (side.op)(counting);
        for sql in counter.statements() {
            eprintln!("    {}: {sql}", side.label);
        }
    }
    per_call
}

/// Run the group: the crate's side first, then each hand-written side, all
/// on connection `conn` (so that no side gets a faster or slower connection
/// or server process than another); print the ratios and the statements per
/// call (counted on connection `counting`).
fn pair<C: Connection + AsConnRef>(
    c: &mut Criterion,
    group: &str,
    conn: &mut C,
    counting: &mut C,
    mut sides: Vec<Side<'_, C>>,
) {
    let statements: Vec<f64> = sides
        .iter_mut()
        .map(|side| statements_per_call(counting, side))
        .collect();
    let samples: Vec<Rc<RefCell<Vec<f64>>>> = sides.iter().map(|_| Rc::default()).collect();
    {
        let mut g = c.benchmark_group(group);
        g.sample_size(SAMPLES);
        for (side, record) in sides.iter_mut().zip(&samples) {
            g.bench_function(side.label, |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    for _ in 0..iters {
                        (side.op)(black_box(&mut *conn));
                    }
                    let elapsed = start.elapsed();
                    record
                        .borrow_mut()
                        .push(elapsed.as_nanos() as f64 / iters as f64);
                    elapsed
                })
            });
        }
        g.finish();
    }
    // Criterion calls the routine for its warm-up first: the last SAMPLES
    // calls are the measurement samples.
    let medians: Vec<Option<f64>> = samples
        .iter()
        .map(|s| {
            let s = s.borrow();
            if bench_mode() && s.len() >= SAMPLES {
                median(&s[s.len() - SAMPLES..])
            } else {
                None
            }
        })
        .collect();
    let mut row = Row {
        group: group.to_string(),
        crate_ns: medians[0],
        hand: Vec::new(),
        crate_statements: statements[0],
    };
    for i in 1..sides.len() {
        let paired = medians[0].map(|ns| paired_ratio(conn, &mut sides, i, ns));
        let ratio = match (medians[0], medians[i], paired) {
            (Some(ours), Some(theirs), Some((paired, a, b))) => format!(
                "{:.3} (criterion medians), {paired:.3} (median of {ROUNDS} interleaved rounds: \
                 {:.1} µs vs {:.1} µs per call)",
                ours / theirs,
                a / 1000.0,
                b / 1000.0
            ),
            _ => "n/a (not measured: test mode or filtered out)".into(),
        };
        println!(
            "{group}: ratio = crate / {} = {ratio}; statements per call: crate {:.2}, {} {:.2}",
            sides[i].label, statements[0], sides[i].label, statements[i]
        );
        row.hand.push((
            sides[i].label,
            medians[i],
            paired.map(|p| p.0),
            statements[i],
        ));
    }
    SUMMARY.with(|s| s.borrow_mut().push(row));
}

/// `crate / hand-written` measured on interleaved batches: each of ROUNDS
/// rounds times a batch of side 0 and a batch of side `i` back to back (in
/// alternating order), so both see the same background load; the result is
/// the median of the rounds' ratios. `crate_ns` (the criterion median) sizes
/// the batches.
fn paired_ratio<C: Connection>(
    conn: &mut C,
    sides: &mut [Side<'_, C>],
    i: usize,
    crate_ns: f64,
) -> (f64, f64, f64) {
    let iters = ((BATCH.as_nanos() as f64 / crate_ns) as u64).clamp(1, 1_000_000);
    let mut time = |side: &mut Side<'_, C>| {
        let start = Instant::now();
        for _ in 0..iters {
            (side.op)(black_box(&mut *conn));
        }
        start.elapsed().as_nanos() as f64 / iters as f64
    };
    let (mut ratios, mut ours, mut theirs) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let (a, b) = if round % 2 == 0 {
            let a = time(&mut sides[0]);
            (a, time(&mut sides[i]))
        } else {
            let b = time(&mut sides[i]);
            (time(&mut sides[0]), b)
        };
        ratios.push(a / b);
        ours.push(a);
        theirs.push(b);
    }
    let m = |v: &[f64]| median(v).expect("ROUNDS > 0");
    (m(&ratios), m(&ours), m(&theirs))
}

/// A key-picking operation over the seeded keys, in turn; `maintain(conn,
/// calls)` after each call (the backend's checkpoint schedule).
fn cycling<'a, C, R>(
    op: fn(&mut C, &str) -> R,
    maintain: fn(&mut C, u64),
) -> Box<dyn FnMut(&mut C) + 'a>
where
    R: 'a,
    C: 'a,
    R: std::fmt::Debug,
{
    let keys: Vec<String> = (0..SEEDED).map(seeded_key).collect();
    let mut i = 0;
    Box::new(move |conn| {
        let key = &keys[i % keys.len()];
        i += 1;
        black_box(op(conn, key));
        maintain(conn, i as u64);
    })
}

/// An operation on a new key at every call (`prefix` keeps the sides apart),
/// with `maintain` as in [`cycling`].
fn fresh<'a, C: 'a, R: 'a>(
    prefix: &'static str,
    op: fn(&mut C, &str) -> R,
    maintain: fn(&mut C, u64),
) -> Box<dyn FnMut(&mut C) + 'a> {
    let mut i = 0u64;
    Box::new(move |conn| {
        i += 1;
        black_box(op(conn, &format!("{prefix}-{i}@bench.test")));
        maintain(conn, i);
    })
}

/// Build each side's database (seeded) and connections, and run the three
/// groups of a backend. `$m` is the backend's module in the bench crate;
/// `txn` or `returning` names the third side of its update group.
macro_rules! backend_benches {
    ($c:expr, $name:literal, $m:ident, $extra:ident) => {{
        use diesel_get_or_create_bench::$m as m;
        let db = m::Db::new("bench_overhead", true);
        let mut conn = db.connect(None);
        m::seed(&mut conn, SEEDED);
        m::checkpoint_on_schedule(&mut conn);
        let mut counting = db.connect(None);
        let side = |label, op| Side { label, op };
        pair(
            $c,
            concat!($name, "/hit"),
            &mut conn,
            &mut counting,
            vec![
                side("crate", cycling(|c, k| m::crate_get(c, k).unwrap(), m::maintain)),
                side("hand-written", cycling(|c, k| m::hand_hit(c, k).unwrap(), m::maintain)),
                side(
                    "hand-written, no LIMIT",
                    cycling(|c, k| m::hand_hit_unlimited(c, k).unwrap(), m::maintain),
                ),
            ],
        );
        pair(
            $c,
            concat!($name, "/miss"),
            &mut conn,
            &mut counting,
            vec![
                side("crate", fresh("crate", |c, k| m::crate_get(c, k).unwrap(), m::maintain)),
                side("hand-written", fresh("hand", |c, k| m::hand_get(c, k).unwrap(), m::maintain)),
            ],
        );
        let mut update = vec![
            side("crate", cycling(|c, k| m::crate_increment(c, k).unwrap(), m::maintain)),
            side("hand-written", cycling(|c, k| m::hand_increment(c, k).unwrap(), m::maintain)),
        ];
        backend_benches!(@extra update, side, m, $extra);
        pair($c, concat!($name, "/update"), &mut conn, &mut counting, update);
    }};
    (@extra $update:ident, $side:ident, $m:ident, txn) => {
        $update.push($side(
            "hand-written in txn",
            cycling(|c, k| $m::hand_increment_txn(c, k).unwrap(), $m::maintain),
        ));
    };
    (@extra $update:ident, $side:ident, $m:ident, returning) => {
        $update.push($side(
            "hand-written UPDATE RETURNING",
            cycling(|c, k| $m::hand_update_returning(c, k).unwrap(), $m::maintain),
        ));
    };
}

fn print_summary() {
    SUMMARY.with(|s| {
        let rows = s.borrow();
        if rows.is_empty() || !bench_mode() {
            return;
        }
        println!("\n| benchmark | crate (median) | hand-written (median) | ratio of medians | paired ratio | statements/call crate | statements/call hand-written |");
        println!("|---|--:|--:|--:|--:|--:|--:|");
        let us = |ns: Option<f64>| ns.map_or("n/a".into(), |ns| format!("{:.1} µs", ns / 1000.0));
        for row in rows.iter() {
            for (label, ns, paired, statements) in &row.hand {
                let ratio = match (row.crate_ns, ns) {
                    (Some(a), Some(b)) => format!("{:.3}", a / b),
                    _ => "n/a".into(),
                };
                let name = if *label == "hand-written" {
                    row.group.clone()
                } else {
                    format!("{} (vs {label})", row.group)
                };
                println!(
                    "| {name} | {} | {} | {ratio} | {} | {:.2} | {:.2} |",
                    us(row.crate_ns),
                    us(*ns),
                    paired.map_or("n/a".into(), |r| format!("{r:.3}")),
                    row.crate_statements,
                    statements
                );
            }
        }
    });
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .configure_from_args();
    #[cfg(feature = "sqlite")]
    backend_benches!(&mut c, "sqlite", sqlite, returning);
    #[cfg(feature = "postgres")]
    backend_benches!(&mut c, "postgres", pg, returning);
    #[cfg(feature = "mysql")]
    backend_benches!(&mut c, "mariadb", my, txn);
    c.final_summary();
    print_summary();
}
