//! The contention benchmark: `--workers` threads, each with its own
//! connection, make `--calls` calls in all on a shared set of `--keys` keys,
//! for each strategy in turn (this crate; the naive read-then-write, on a
//! table without unique indexes; the hand-written upsert), each on a fresh
//! database. Afterwards the table is checked for duplicate rows and lost
//! increments. Run with `--help` for the options; BENCHMARKS.md has the
//! figures.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use diesel::Connection;
use diesel_get_or_create_bench::stats::{fmt_duration, percentile};
use diesel_get_or_create_bench::{seeded_key, Counter, Strategy};

const USAGE: &str = "\
contention: concurrent get_or_create / update_or_create against the naive and hand-written ways

USAGE:
    cargo run --release -p diesel-get-or-create-bench --all-features --bin contention -- [OPTIONS]

OPTIONS:
    --backend NAME        sqlite | postgres | mysql (MariaDB)          [default: sqlite]
    --isolation LEVEL     e.g. \"read committed\", \"repeatable read\", \"serializable\"
                          (PostgreSQL, MariaDB; SQLite is always serializable)
                                                                       [default: the server's]
    --workers N           threads, one connection each                 [default: 8]
    --keys N              distinct keys in play at any time            [default: 1000]
    --calls N             calls in all, per strategy                   [default: 5000]
    --hit-ratio R         share of calls on the key's current row; the others move the key
                          to a new, missing row (which the next callers race to create)
                                                                       [default: 0.5]
    --increments R        share of calls that increment (update_or_create_with
                          visits + 1); the others get (get_or_create)  [default: 0.5]
    --strategies LIST     comma-separated: crate,naive,upsert          [default: all three]
    --seed N              random seed                                  [default: 1]
    --no-header           print the table rows only (for scripts/contention-matrix.sh)
    -h, --help            this text

Each strategy runs on a fresh table seeded with one row per key. The naive strategy's table
has no unique index, so that its races show as duplicate rows rather than errors.
Figures per strategy: calls/s, p50 and p99 latency, statements per call and failed
statements (Diesel instrumentation), errors (calls that failed), duplicate rows, lost
increments (successful increments minus the sum of visits), rows created. PostgreSQL and MariaDB use GOC_PG_URL and GOC_MYSQL_URL.";

/// The parsed command line.
#[derive(Debug, Clone)]
struct Args {
    backend: String,
    isolation: Option<String>,
    workers: usize,
    keys: usize,
    calls: usize,
    hit_ratio: f64,
    increments: f64,
    strategies: Vec<String>,
    seed: u64,
    header: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        backend: "sqlite".into(),
        isolation: None,
        workers: 8,
        keys: 1000,
        calls: 5000,
        hit_ratio: 0.5,
        increments: 0.5,
        strategies: vec!["crate".into(), "naive".into(), "upsert".into()],
        seed: 1,
        header: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        match name.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            "--no-header" => {
                args.header = false;
                continue;
            }
            _ => {}
        }
        let value = match inline {
            Some(v) => v,
            None => it.next().ok_or_else(|| format!("{name} needs a value"))?,
        };
        let bad = |e: &dyn std::fmt::Display| format!("{name} {value}: {e}");
        match name.as_str() {
            "--backend" => args.backend = value.to_lowercase(),
            "--isolation" => args.isolation = Some(value.to_uppercase()),
            "--workers" => args.workers = value.parse().map_err(|e| bad(&e))?,
            "--keys" => args.keys = value.parse().map_err(|e| bad(&e))?,
            "--calls" => args.calls = value.parse().map_err(|e| bad(&e))?,
            "--hit-ratio" => args.hit_ratio = value.parse().map_err(|e| bad(&e))?,
            "--increments" => args.increments = value.parse().map_err(|e| bad(&e))?,
            "--seed" => args.seed = value.parse().map_err(|e| bad(&e))?,
            "--strategies" => {
                args.strategies = value.split(',').map(|s| s.trim().to_string()).collect()
            }
            _ => return Err(format!("unknown option {name}")),
        }
    }
    if args.workers == 0 || args.keys == 0 || args.calls == 0 {
        return Err("--workers, --keys and --calls must be at least 1".into());
    }
    if !(0.0..=1.0).contains(&args.hit_ratio) || !(0.0..=1.0).contains(&args.increments) {
        return Err("--hit-ratio and --increments are between 0 and 1".into());
    }
    for s in &args.strategies {
        if !["crate", "naive", "upsert"].contains(&s.as_str()) {
            return Err(format!("unknown strategy {s} (crate, naive, upsert)"));
        }
    }
    Ok(args)
}

fn main() {
    let args = parse_args().unwrap_or_else(|e| {
        eprintln!("error: {e}\n\n{USAGE}");
        std::process::exit(2);
    });
    match args.backend.as_str() {
        #[cfg(feature = "sqlite")]
        "sqlite" => {
            use diesel_get_or_create_bench::sqlite;
            let args = Args {
                isolation: None,
                ..args
            };
            run_all(
                &args,
                sqlite::strategies(),
                sqlite::Db::new,
                sqlite::Db::connect,
                sqlite::seed,
                sqlite::audit,
            );
        }
        #[cfg(feature = "postgres")]
        "postgres" | "pg" => {
            use diesel_get_or_create_bench::pg;
            run_all(
                &args,
                pg::strategies(),
                pg::Db::new,
                pg::Db::connect,
                pg::seed,
                pg::audit,
            );
        }
        #[cfg(feature = "mysql")]
        "mysql" | "mariadb" => {
            use diesel_get_or_create_bench::my;
            run_all(
                &args,
                my::strategies(),
                my::Db::new,
                my::Db::connect,
                my::seed,
                my::audit,
            );
        }
        other => {
            eprintln!(
                "error: backend {other} unknown or not compiled in (build with --all-features, \
                 or --features postgres / mysql)"
            );
            std::process::exit(2);
        }
    }
}

/// What one worker saw.
#[derive(Default)]
struct WorkerOut {
    latencies: Vec<Duration>,
    statements: usize,
    failed_statements: usize,
    failure_causes: [usize; 3],
    ok: usize,
    ok_increments: usize,
    created: usize,
    errors: Vec<String>,
}

/// The key of `slot` at generation `generation`: generation 0 is the seeded row.
fn key(slot: usize, generation: u64) -> String {
    if generation == 0 {
        seeded_key(slot)
    } else {
        format!("k{slot}-g{generation}@bench.test")
    }
}

/// xorshift64*: a small, seedable generator, so that no dependency is needed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn run_all<C, D>(
    args: &Args,
    strategies: Vec<Strategy<C>>,
    new_db: fn(&str, bool) -> D,
    connect: fn(&D, Option<&str>) -> C,
    seed: fn(&mut C, usize),
    audit: fn(&mut C) -> (usize, usize, i64),
) where
    C: Connection + Send,
    D: Sync,
{
    if args.header {
        println!(
            "| backend | isolation | workers | keys | strategy | calls/s | p50 | p99 | statements/call | failed statements | errors | duplicates | lost increments | created |"
        );
        println!("|---|---|--:|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    }
    let short = ["crate", "naive", "upsert"];
    for (i, strategy) in strategies.iter().enumerate() {
        if !args.strategies.iter().any(|s| s == short[i]) {
            continue;
        }
        let db = new_db(
            &format!("bench_contention_{}", short[i]),
            strategy.unique_indexes,
        );
        run_one(args, strategy, &db, connect, seed, audit);
    }
}

fn run_one<C, D>(
    args: &Args,
    strategy: &Strategy<C>,
    db: &D,
    connect: fn(&D, Option<&str>) -> C,
    seed: fn(&mut C, usize),
    audit: fn(&mut C) -> (usize, usize, i64),
) where
    C: Connection + Send,
    D: Sync,
{
    let isolation = args.isolation.as_deref();
    let mut setup = connect(db, isolation);
    seed(&mut setup, args.keys);
    let slots: Vec<AtomicU64> = (0..args.keys).map(|_| AtomicU64::new(0)).collect();
    let workers: Vec<(C, Counter)> = (0..args.workers)
        .map(|_| {
            let mut conn = connect(db, isolation);
            let counter = Counter::install(&mut conn);
            (conn, counter)
        })
        .collect();
    let barrier = Barrier::new(args.workers + 1);
    let (outs, elapsed) = std::thread::scope(|s| {
        let handles: Vec<_> = workers
            .into_iter()
            .enumerate()
            .map(|(w, (mut conn, counter))| {
                let calls = args.calls / args.workers + usize::from(w < args.calls % args.workers);
                let (barrier, slots) = (&barrier, &slots);
                s.spawn(move || {
                    let mut rng = Rng::new(args.seed ^ ((w as u64 + 1) << 32));
                    let mut out = WorkerOut {
                        latencies: Vec::with_capacity(calls),
                        ..WorkerOut::default()
                    };
                    barrier.wait();
                    for _ in 0..calls {
                        let slot = (rng.next() % args.keys as u64) as usize;
                        let generation = if rng.unit() < args.hit_ratio {
                            slots[slot].load(Ordering::SeqCst)
                        } else {
                            slots[slot].fetch_add(1, Ordering::SeqCst) + 1
                        };
                        let key = key(slot, generation);
                        let increment = rng.unit() < args.increments;
                        let op = if increment {
                            strategy.increment
                        } else {
                            strategy.get
                        };
                        let start = Instant::now();
                        let result = op(&mut conn, &key);
                        out.latencies.push(start.elapsed());
                        out.statements += counter.take();
                        out.failed_statements += counter.take_failed();
                        match result {
                            Ok((_, created)) => {
                                out.ok += 1;
                                out.created += usize::from(created);
                                out.ok_increments += usize::from(increment);
                            }
                            Err(e) => out.errors.push(e.to_string()),
                        }
                    }
                    out.failure_causes = counter.failure_causes();
                    out
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let outs: Vec<WorkerOut> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        (outs, start.elapsed())
    });

    let mut latencies: Vec<Duration> = outs
        .iter()
        .flat_map(|o| o.latencies.iter().copied())
        .collect();
    latencies.sort();
    let calls = latencies.len();
    let statements: usize = outs.iter().map(|o| o.statements).sum();
    let failed_statements: usize = outs.iter().map(|o| o.failed_statements).sum();
    let ok_increments: usize = outs.iter().map(|o| o.ok_increments).sum();
    let created: usize = outs.iter().map(|o| o.created).sum();
    let errors: Vec<&String> = outs.iter().flat_map(|o| o.errors.iter()).collect();
    let (_rows, duplicates, visits) = audit(&mut setup);
    let lost = ok_increments as i64 - visits;
    println!(
        "| {} | {} | {} | {} | {} | {:.0} | {} | {} | {:.2} | {} | {} | {} | {} | {} |",
        args.backend,
        isolation
            .map(str::to_lowercase)
            .unwrap_or_else(|| "default".into()),
        args.workers,
        args.keys,
        strategy.name,
        calls as f64 / elapsed.as_secs_f64(),
        fmt_duration(percentile(&latencies, 50.0)),
        fmt_duration(percentile(&latencies, 99.0)),
        statements as f64 / calls as f64,
        failed_statements,
        errors.len(),
        duplicates,
        lost,
        if strategy.name == "hand-written upsert" && args.increments > 0.0 {
            // The hand-written upserts cannot tell an insert from an update.
            "n/a".to_string()
        } else {
            created.to_string()
        },
    );
    if failed_statements > 0 {
        let c = outs.iter().fold([0; 3], |acc, o| {
            [0, 1, 2].map(|i| acc[i] + o.failure_causes[i])
        });
        eprintln!(
            "  {} ({} workers, {} keys): failed statements: {} duplicate key, {} deadlock or \
             serialization failure, {} other",
            strategy.name, args.workers, args.keys, c[0], c[1], c[2]
        );
    }
    let mut kinds: Vec<&str> = errors
        .iter()
        .map(|e| e.lines().next().unwrap_or(""))
        .collect();
    kinds.sort_unstable();
    kinds.dedup();
    for kind in kinds.iter().take(3) {
        eprintln!("  {} error: {kind}", strategy.name);
    }
}
