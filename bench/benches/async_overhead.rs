//! Overhead of the async API (feature `async`) against hand-written
//! diesel-async, per backend: the same three groups as `overhead.rs` (hit,
//! miss, update), on one diesel-async connection per backend, in one run.
//!
//! Each round times a batch of the crate's calls and a batch of the
//! hand-written calls back to back, on the same connection; the paired
//! ratio is the median over rounds of `crate / hand-written` per call. It
//! prints one table row per group. Under `cargo test` (no `--bench`) every
//! operation runs a few times, as a smoke test.
//!
//! `cargo bench -p diesel-get-or-create-bench --all-features --bench async_overhead`

use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error};
use diesel_async::{AsyncConnection, RunQueryDsl, SimpleAsyncConnection};
use diesel_get_or_create::asynchronous::prelude::*;
use diesel_get_or_create_bench::seeded_key;
use diesel_get_or_create_bench::stats::median;
use diesel_get_or_create_tests::models::{names, User};
use diesel_get_or_create_tests::schema::users;

/// Rows seeded in every table: the hit and update groups cycle through them.
const SEEDED: usize = 1000;
/// Rounds of the interleaved comparison.
const ROUNDS: usize = 31;
/// Time of one batch.
const BATCH: Duration = Duration::from_millis(30);

fn bench_mode() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// The operations compared on async connection type `$conn`, with the
/// hand-written get and increment of its backend.
macro_rules! async_ops {
    ($m:ident, $conn:ty, hand_get: $hand_get:item, hand_increment: $hand_increment:item) => {
        mod $m {
            use super::*;

            pub type Conn = $conn;

            pub async fn crate_get(conn: &mut Conn, key: &str) -> QueryResult<(User, bool)> {
                User::get_or_create(
                    conn,
                    users::email.key(key),
                    (names(key, key, "B"), users::visits.eq(0)),
                )
                .await
            }

            pub async fn crate_increment(conn: &mut Conn, key: &str) -> QueryResult<(User, bool)> {
                User::update_or_create_with(
                    conn,
                    users::email.key(key),
                    users::visits.eq(users::visits + 1),
                    (names(key, key, "B"), users::visits.eq(1)),
                )
                .await
            }

            pub async fn hand_hit(conn: &mut Conn, key: &str) -> QueryResult<User> {
                users::table
                    .filter(users::email.eq(key))
                    .select(User::as_select())
                    .first(conn)
                    .await
            }

            $hand_get

            $hand_increment
        }
    };
}

/// `INSERT .. ON CONFLICT (email) DO NOTHING RETURNING`, then a `SELECT` if
/// another caller had the key; and `INSERT .. ON CONFLICT (email) DO UPDATE
/// SET visits = visits + 1 RETURNING`.
macro_rules! returning_ops {
    ($m:ident, $conn:ty) => {
        async_ops!(
            $m,
            $conn,
            hand_get: pub async fn hand_get(conn: &mut Conn, key: &str) -> QueryResult<(User, bool)> {
                let inserted = diesel::insert_into(users::table)
                    .values((users::email.eq(key), names(key, key, "B"), users::visits.eq(0)))
                    .on_conflict(users::email)
                    .do_nothing()
                    .returning(User::as_select())
                    .get_result(conn)
                    .await
                    .optional()?;
                match inserted {
                    Some(user) => Ok((user, true)),
                    None => Ok((hand_hit(conn, key).await?, false)),
                }
            },
            hand_increment: pub async fn hand_increment(conn: &mut Conn, key: &str) -> QueryResult<(User, bool)> {
                diesel::insert_into(users::table)
                    .values((users::email.eq(key), names(key, key, "B"), users::visits.eq(1)))
                    .on_conflict(users::email)
                    .do_update()
                    .set(users::visits.eq(users::visits + 1))
                    .returning(User::as_select())
                    .get_result(conn)
                    .await
                    .map(|user| (user, false))
            }
        );
    };
}

#[cfg(feature = "sqlite")]
returning_ops!(
    sqlite,
    diesel_async::sync_connection_wrapper::SyncConnectionWrapper<SqliteConnection>
);
#[cfg(feature = "postgres")]
returning_ops!(pg, diesel_async::AsyncPgConnection);
#[cfg(feature = "mysql")]
async_ops!(
    my,
    diesel_async::AsyncMysqlConnection,
    // `INSERT`, then `SELECT` the row (whether the insert created it or
    // failed on the key's unique index).
    hand_get: pub async fn hand_get(conn: &mut Conn, key: &str) -> QueryResult<(User, bool)> {
        let inserted = diesel::insert_into(users::table)
            .values((users::email.eq(key), names(key, key, "B"), users::visits.eq(0)))
            .execute(conn)
            .await;
        match inserted {
            Ok(_) => Ok((hand_hit(conn, key).await?, true)),
            Err(Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
                Ok((hand_hit(conn, key).await?, false))
            }
            Err(e) => Err(e),
        }
    },
    // `INSERT .. ON DUPLICATE KEY UPDATE visits = visits + 1`, then `SELECT`.
    hand_increment: pub async fn hand_increment(conn: &mut Conn, key: &str) -> QueryResult<(User, bool)> {
        diesel::insert_into(users::table)
            .values((users::email.eq(key), names(key, key, "B"), users::visits.eq(1)))
            .on_conflict(diesel::dsl::DuplicatedKeys)
            .do_update()
            .set(users::visits.eq(users::visits + 1))
            .execute(conn)
            .await?;
        Ok((hand_hit(conn, key).await?, false))
    }
);

/// Which key a call uses: a seeded one (cycling) or a new one each time.
#[derive(Clone, Copy)]
enum Keys {
    Seeded,
    Fresh(&'static str),
}

/// The statement each side runs after every [`CHECKPOINT_EVERY`] calls, on
/// SQLite, whose timed connection has automatic checkpoints off: both sides
/// pay for the same WAL checkpoints (see `sqlite::checkpoint_on_schedule` in
/// the bench crate; without it only the crate's miss ran them).
const CHECKPOINT: &str = "PRAGMA wal_checkpoint(PASSIVE)";
const CHECKPOINT_EVERY: usize = 256;

/// Time `calls` calls of `op` from key number `*next` on, in µs per call;
/// with `$checkpoint`, the [`CHECKPOINT`] schedule.
macro_rules! time_batch {
    ($conn:expr, $op:path, $keys:expr, $next:expr, $calls:expr, $checkpoint:expr) => {{
        let start = Instant::now();
        for _ in 0..$calls {
            let key = match $keys {
                Keys::Seeded => seeded_key(*$next % SEEDED),
                Keys::Fresh(side) => format!("{side}-new-{}@x.io", *$next),
            };
            *$next += 1;
            let _ = std::hint::black_box($op($conn, &key).await.unwrap());
            if $checkpoint && *$next % CHECKPOINT_EVERY == 0 {
                $conn.batch_execute(CHECKPOINT).await.unwrap();
            }
        }
        start.elapsed().as_secs_f64() * 1e6 / $calls as f64
    }};
}

/// Compare `$ours` with `$theirs` and print the group's row.
macro_rules! group {
    ($name:expr, $conn:expr, $ours:path, $theirs:path, $keys:expr, $label:expr, $checkpoint:expr) => {{
        let (ours_keys, theirs_keys) = match $keys {
            Keys::Seeded => (Keys::Seeded, Keys::Seeded),
            Keys::Fresh(_) => (Keys::Fresh("crate"), Keys::Fresh("hand")),
        };
        let (mut next_ours, mut next_theirs) = (0usize, 0usize);
        // Size a batch from a short warm-up of both sides.
        let warm =
            time_batch!($conn, $ours, ours_keys, &mut next_ours, 20, $checkpoint).max(time_batch!(
                $conn,
                $theirs,
                theirs_keys,
                &mut next_theirs,
                20,
                $checkpoint
            ));
        if bench_mode() {
            let calls = ((BATCH.as_secs_f64() * 1e6 / warm) as usize).max(5);
            let (mut ratios, mut ours, mut theirs) = (Vec::new(), Vec::new(), Vec::new());
            for round in 0..ROUNDS {
                // In alternating order, as `overhead.rs` does.
                let (a, b) = if round % 2 == 0 {
                    let a =
                        time_batch!($conn, $ours, ours_keys, &mut next_ours, calls, $checkpoint);
                    (
                        a,
                        time_batch!(
                            $conn,
                            $theirs,
                            theirs_keys,
                            &mut next_theirs,
                            calls,
                            $checkpoint
                        ),
                    )
                } else {
                    let b = time_batch!(
                        $conn,
                        $theirs,
                        theirs_keys,
                        &mut next_theirs,
                        calls,
                        $checkpoint
                    );
                    (
                        time_batch!($conn, $ours, ours_keys, &mut next_ours, calls, $checkpoint),
                        b,
                    )
                };
                ratios.push(a / b);
                ours.push(a);
                theirs.push(b);
            }
            println!(
                "| async {} (vs {}) | {:.1} µs | {:.1} µs | {:.3} |",
                $name,
                $label,
                median(&ours).unwrap_or(f64::NAN),
                median(&theirs).unwrap_or(f64::NAN),
                median(&ratios).unwrap_or(f64::NAN)
            );
        }
    }};
}

macro_rules! backend {
    ($name:literal, $m:ident, $conn:expr, checkpoints $checkpoint:expr) => {{
        let mut conn = $conn;
        group!(
            concat!($name, "/hit"),
            &mut conn,
            $m::crate_get,
            hand_hit_pair,
            Keys::Seeded,
            "filter().first()",
            $checkpoint
        );
        group!(
            concat!($name, "/miss"),
            &mut conn,
            $m::crate_get,
            $m::hand_get,
            Keys::Fresh(""),
            "insert-first",
            $checkpoint
        );
        group!(
            concat!($name, "/update"),
            &mut conn,
            $m::crate_increment,
            $m::hand_increment,
            Keys::Seeded,
            "upsert",
            $checkpoint
        );
    }};
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if bench_mode() {
        println!("| benchmark | crate (median) | hand-written (median) | paired ratio |");
        println!("|---|--:|--:|--:|");
    }
    #[cfg(feature = "sqlite")]
    {
        use diesel_get_or_create_bench::sqlite as s;
        let db = s::Db::new("bench_async_overhead", true);
        s::seed(&mut db.connect(None), SEEDED);
        let mut conn = sqlite::Conn::establish(db.path()).await.unwrap();
        conn.batch_execute(
            "PRAGMA busy_timeout = 30000; PRAGMA synchronous = NORMAL; \
             PRAGMA wal_autocheckpoint = 0;",
        )
        .await
        .unwrap();
        async fn hand_hit_pair(c: &mut sqlite::Conn, k: &str) -> QueryResult<User> {
            sqlite::hand_hit(c, k).await
        }
        backend!("sqlite", sqlite, conn, checkpoints true);
    }
    #[cfg(feature = "postgres")]
    {
        use diesel_get_or_create_bench::pg as p;
        let db = p::Db::new("bench_async_overhead", true);
        p::seed(&mut db.connect(None), SEEDED);
        let mut conn = pg::Conn::establish(&diesel_get_or_create_tests::pg::url())
            .await
            .unwrap();
        conn.batch_execute(&format!("SET search_path TO {}", db.schema()))
            .await
            .unwrap();
        async fn hand_hit_pair(c: &mut pg::Conn, k: &str) -> QueryResult<User> {
            pg::hand_hit(c, k).await
        }
        backend!("postgres", pg, conn, checkpoints false);
    }
    #[cfg(feature = "mysql")]
    {
        use diesel_get_or_create_bench::my as q;
        let db = q::Db::new("bench_async_overhead", true);
        q::seed(&mut db.connect(None), SEEDED);
        let conn = my::Conn::establish(&diesel_get_or_create_tests::my::url_for(db.database()))
            .await
            .unwrap();
        async fn hand_hit_pair(c: &mut my::Conn, k: &str) -> QueryResult<User> {
            my::hand_hit(c, k).await
        }
        backend!("mariadb", my, conn, checkpoints false);
    }
}
