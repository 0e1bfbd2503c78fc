//! Several OS processes, each with its own connection (the way web servers
//! run workers), race on the same keys: one row per key, one creator per
//! key, every increment of a shared counter kept, zero errors. With feature
//! `async`, half the processes use diesel-async and the crate's async API.

use std::process::Command;

use diesel::prelude::*;
use diesel_get_or_create_tests::schema::users;

macro_rules! outcome {
    ($conn:expr) => {
        || {
            let rows: i64 = users::table
                .filter(users::email.like("key-%@procs.test"))
                .count()
                .get_result($conn)
                .unwrap();
            let visits: Option<i32> = users::table
                .filter(users::email.eq("counter@procs.test"))
                .select(users::visits)
                .first($conn)
                .optional()
                .unwrap();
            (rows, visits)
        }
    };
}

const PROCESSES: usize = 8;
const KEYS: usize = 100;

/// The workers' backend arguments: `backend`, or with feature `async` half
/// `backend` and half `backend-async`.
fn workers(backend: &str) -> Vec<String> {
    (0..PROCESSES)
        .map(|i| {
            if cfg!(feature = "async") && i % 2 == 1 {
                format!("{backend}-async")
            } else {
                backend.to_owned()
            }
        })
        .collect()
}

/// Start the workers, release them together, and check what they did.
/// `outcome()` returns the rows with a worker key and the counter's value.
fn race(backend: &str, target: &str, outcome: impl FnOnce() -> (i64, Option<i32>)) {
    let start = std::env::temp_dir().join(format!("goc-start-{backend}-{}", std::process::id()));
    let _ = std::fs::remove_file(&start);
    let kinds = workers(backend);
    let workers: Vec<_> = kinds
        .iter()
        .map(|kind| {
            Command::new(env!("CARGO_BIN_EXE_race-worker"))
                .args([kind, target, &KEYS.to_string(), start.to_str().unwrap()])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("start a worker")
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(500)); // let them connect
    std::fs::write(&start, b"go").unwrap();
    let (mut created, mut failed) = (0, Vec::new());
    for w in workers {
        let out = w.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        created += text
            .split_whitespace()
            .find_map(|f| f.strip_prefix("created="))
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or_else(|| panic!("worker output: {text}"));
        if !out.status.success() {
            failed.push(text);
        }
    }
    let _ = std::fs::remove_file(&start);
    let (rows, visits) = outcome();
    eprintln_direct(&format!(
        "RACE | {backend:<8} | default         | processes  | get_or_create+counter      | processes {PROCESSES} ({} async) | calls {} | key rows {rows} | creators {created} | counter {visits:?} | failed workers {}",
        kinds.iter().filter(|k| k.ends_with("-async")).count(),
        2 * PROCESSES * KEYS,
        failed.len()
    ));
    assert!(failed.is_empty(), "{failed:#?}");
    assert_eq!(rows, KEYS as i64, "one row per key");
    assert_eq!(created, KEYS, "one creator per key");
    assert_eq!(visits, Some((PROCESSES * KEYS) as i32), "no lost increment");
}

fn eprintln_direct(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

#[test]
fn processes_race_on_postgres() {
    let db = diesel_get_or_create_tests::pg::TestDb::new("procs");
    let mut conn = db.connect();
    race("postgres", &db.schema, outcome!(&mut conn));
}

#[test]
fn processes_race_on_mysql() {
    let db = diesel_get_or_create_tests::my::TestDb::new("procs");
    let mut conn = db.connect();
    race("mysql", &db.database, outcome!(&mut conn));
}
