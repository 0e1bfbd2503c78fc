//! A miss, alone, for a profiler: `profile-miss <crate|hand> <calls>` runs
//! `get_or_create` (`crate`) or the hand-written insert-first upsert
//! (`hand`) on `calls` new keys of a fresh SQLite WAL database, and prints
//! the time per call. Run it under `valgrind --tool=callgrind` or `perf
//! record` to see where a miss spends its time (BENCHMARKS.md, "SQLite miss").

use std::time::Instant;

use diesel_get_or_create_bench::sqlite as m;

#[derive(diesel::QueryableByName)]
struct Checkpoint {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    busy: i32,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    log: i32,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    checkpointed: i32,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, side, calls] = &args[..] else {
        eprintln!("usage: profile-miss <crate|hand> <calls>");
        std::process::exit(2);
    };
    let calls: usize = calls.parse().expect("calls is a number");
    let db = m::Db::new("profile_miss", true);
    let mut conn = db.connect(None);
    let op = match side.as_str() {
        "crate" => |c: &mut m::Conn, k: &str| m::crate_get(c, k).map(|(_, created)| created),
        "hand" => |c: &mut m::Conn, k: &str| m::hand_get(c, k).map(|(_, created)| created),
        other => panic!("unknown side {other}"),
    };
    let started = Instant::now();
    for i in 0..calls {
        let created = op(&mut conn, &format!("{side}-{i}@profile.test")).unwrap();
        assert!(created);
    }
    let per_call = started.elapsed() / calls as u32;
    println!("{side}: {calls} misses, {per_call:?} per call");
    // What the auto-checkpoints did: the WAL's size in pages and how many of
    // them a checkpoint could copy back now (`PRAGMA wal_checkpoint`).
    let checkpoint: Checkpoint = diesel::RunQueryDsl::get_result(
        diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)"),
        &mut conn,
    )
    .unwrap();
    println!(
        "{side}: WAL {} pages, {} checkpointed now, busy {}",
        checkpoint.log, checkpoint.checkpointed, checkpoint.busy
    );
}
