//! diesel-get-or-create on embedded SQLite: no set-up needed.
//!
//! `cargo run --example quickstart`
//!
//! Creates a database file in the temporary directory, then shows
//! `get_or_create` creating and finding a row, an `update_or_create_with`
//! counter, and 8 threads racing to create the same row. Exits non-zero if
//! anything is not as it should be.

use std::process::ExitCode;
use std::sync::{Arc, Barrier};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel_get_or_create::prelude::*;

diesel::table! {
    users (id) {
        id -> Integer,
        email -> Text,
        first_name -> Text,
        last_name -> Text,
        visits -> Integer,
    }
}

#[derive(Debug, Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = users)]
#[unique_together(first_name, last_name)]
pub struct User {
    pub id: i32,
    #[unique]
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub visits: i32,
}

const SCHEMA: &str = "
    CREATE TABLE users (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        email TEXT NOT NULL UNIQUE,
        first_name TEXT NOT NULL,
        last_name TEXT NOT NULL,
        visits INTEGER NOT NULL DEFAULT 0,
        UNIQUE (first_name, last_name)
    );";

fn connect(path: &str) -> QueryResult<SqliteConnection> {
    let mut conn = SqliteConnection::establish(path)
        .map_err(|e| diesel::result::Error::QueryBuilderError(e.into()))?;
    // Writers from other connections queue for up to 10 s instead of failing.
    conn.batch_execute("PRAGMA busy_timeout = 10000;")?;
    Ok(conn)
}

fn run(path: &str) -> Result<(), Box<dyn std::error::Error>> {
    let mut conn = connect(path)?;
    conn.batch_execute("PRAGMA journal_mode = WAL;")?;
    conn.batch_execute(SCHEMA)?;

    // 1. get_or_create: the first call inserts, the second finds.
    let defaults = (
        users::first_name.eq("Ann"),
        users::last_name.eq("Lee"),
        users::visits.eq(0),
    );
    let (ann, created) = User::get_or_create(&mut conn, users::email.key("ann@x.io"), defaults)?;
    println!(
        "get_or_create(email = ann@x.io)      -> id {}, created = {created}",
        ann.id
    );
    check(created, "the first get_or_create creates the row")?;
    let (again, created) = User::get_or_create(&mut conn, users::email.key("ann@x.io"), defaults)?;
    println!(
        "get_or_create(email = ann@x.io)      -> id {}, created = {created}",
        again.id
    );
    check(
        !created && again.id == ann.id,
        "the second get_or_create finds it",
    )?;

    // The composite constraint, with its columns in either order.
    let (by_name, created) = User::get_or_create(
        &mut conn,
        (users::last_name.key("Lee"), users::first_name.key("Ann")),
        users::email.eq("not-used@x.io"),
    )?;
    println!(
        "get_or_create(last_name, first_name) -> id {}, created = {created}",
        by_name.id
    );
    check(
        !created && by_name.id == ann.id,
        "the composite key finds the same row",
    )?;

    // 2. A counter: update if the row exists, create it otherwise.
    for _ in 0..3 {
        let (bob, created) = User::update_or_create_with(
            &mut conn,
            users::email.key("bob@x.io"),
            users::visits.eq(users::visits + 1),
            (
                users::first_name.eq("Bob"),
                users::last_name.eq("Ray"),
                users::visits.eq(1),
            ),
        )?;
        println!(
            "update_or_create_with(bob, visits + 1) -> visits = {}, created = {created}",
            bob.visits
        );
    }
    let visits: i32 = users::table
        .filter(users::email.eq("bob@x.io"))
        .select(users::visits)
        .first(&mut conn)?;
    check(visits == 3, "three calls count three visits")?;

    // 3. A race: 8 threads, each with its own connection, on one new key.
    const THREADS: usize = 8;
    let barrier = Arc::new(Barrier::new(THREADS));
    let mut handles = Vec::new();
    for _ in 0..THREADS {
        let mut conn = connect(path)?;
        let barrier = barrier.clone();
        handles.push(std::thread::spawn(move || {
            barrier.wait();
            User::get_or_create(
                &mut conn,
                users::email.key("carl@x.io"),
                (users::first_name.eq("Carl"), users::last_name.eq("Oz")),
            )
            .map(|(user, created)| (user.id, created))
        }));
    }
    let mut creators = 0;
    let mut ids = Vec::new();
    for handle in handles {
        let (id, created) = handle.join().expect("thread panicked")?;
        creators += usize::from(created);
        ids.push(id);
    }
    ids.sort();
    ids.dedup();
    let rows: i64 = users::table
        .filter(users::email.eq("carl@x.io"))
        .count()
        .get_result(&mut conn)?;
    println!(
        "{THREADS} threads raced on carl@x.io    -> {rows} row, {creators} creator, ids {ids:?}"
    );
    check(
        rows == 1 && creators == 1 && ids.len() == 1,
        "the race leaves one row, one creator",
    )?;
    Ok(())
}

fn check(ok: bool, what: &str) -> Result<(), Box<dyn std::error::Error>> {
    if ok {
        Ok(())
    } else {
        Err(format!("FAILED: {what}").into())
    }
}

fn main() -> ExitCode {
    let path = std::env::temp_dir().join(format!(
        "diesel-get-or-create-quickstart-{}.sqlite",
        std::process::id()
    ));
    let path_str = path.to_str().expect("temporary path is UTF-8").to_owned();
    let result = run(&path_str);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{path_str}{suffix}"));
    }
    match result {
        Ok(()) => {
            println!("quickstart: all checks passed");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("quickstart: {e}");
            ExitCode::FAILURE
        }
    }
}
