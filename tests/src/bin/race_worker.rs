//! One worker process of the multi-process race test (`tests/multiprocess.rs`).
//!
//! `race-worker <postgres|mysql>[-async] <schema-or-database> <keys> <start-file>`:
//! connects (with diesel-async's connection and the crate's async API for
//! `-async`), waits until `<start-file>` exists (so that every worker starts at
//! once), then for each key `0..keys` calls `get_or_create` on that key and
//! `update_or_create_with` on one shared counter row. Prints
//! `created=<n> counted=<n> errors=<n>` and the first errors, and exits
//! non-zero if any call failed.

use std::path::Path;

use diesel::prelude::*;
use diesel_get_or_create::prelude::*;
use diesel_get_or_create_tests::backend::AsConnRef;
use diesel_get_or_create_tests::call;
use diesel_get_or_create_tests::models::{names, User};
use diesel_get_or_create_tests::schema::users;

fn work<C: AsConnRef>(conn: &mut C, keys: usize) -> (usize, usize, Vec<String>) {
    let (mut created, mut counted, mut errors) = (0, 0, Vec::new());
    for k in 0..keys {
        let email = format!("key-{k}@procs.test");
        match call!(
            conn,
            User::get_or_create(users::email.key(&*email), names(&email, &email, "P"))
        ) {
            Ok((_, c)) => created += usize::from(c),
            Err(e) => errors.push(e.to_string()),
        }
        match call!(
            conn,
            User::update_or_create_with(
                users::email.key("counter@procs.test"),
                users::visits.eq(users::visits + 1),
                (names("counter", "counter", "C"), users::visits.eq(1)),
            )
        ) {
            Ok(_) => counted += 1,
            Err(e) => errors.push(e.to_string()),
        }
    }
    (created, counted, errors)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, backend, target, keys, start] = &args[..] else {
        eprintln!(
            "usage: race-worker <postgres|mysql>[-async] <schema-or-database> <keys> <start-file>"
        );
        std::process::exit(2);
    };
    let keys: usize = keys.parse().expect("keys is a number");
    let wait = |start: &str| {
        while !Path::new(start).exists() {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    };
    let (created, counted, errors) = match backend.as_str() {
        "postgres" => {
            let mut conn = diesel_get_or_create_tests::pg::connect_to(target);
            wait(start);
            work(&mut conn, keys)
        }
        "mysql" => {
            let mut conn = diesel_get_or_create_tests::my::connect_to(target);
            wait(start);
            work(&mut conn, keys)
        }
        #[cfg(feature = "async")]
        "postgres-async" => {
            let mut conn = diesel_get_or_create_tests::asyncs::postgres::connect_to(target);
            wait(start);
            work(&mut conn, keys)
        }
        #[cfg(feature = "async")]
        "mysql-async" => {
            let mut conn = diesel_get_or_create_tests::asyncs::mysql::connect_to(target);
            wait(start);
            work(&mut conn, keys)
        }
        other => panic!("unknown backend {other}"),
    };
    println!(
        "created={created} counted={counted} errors={}",
        errors.len()
    );
    for e in errors.iter().take(5) {
        println!("error: {e}");
    }
    std::process::exit(i32::from(!errors.is_empty()));
}
