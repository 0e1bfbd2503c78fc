//! diesel-get-or-create in an async web service: diesel-async, a deadpool
//! pool, many concurrent tokio tasks. Runs on embedded SQLite (through
//! diesel-async's `SyncConnectionWrapper`), so it needs no set-up.
//!
//! `cargo run --example async_web`
//!
//! It does by one call what two of the largest Diesel applications write by
//! hand:
//! * crates.io's `Keyword::find_or_create_all`: make sure every keyword of a
//!   published crate exists, and count the crates that use it;
//! * Lemmy's `Instance::read_or_create`: the row of a federated instance,
//!   created by whichever request sees the domain first.
//!
//! 64 "publish" requests run at once, over 8 pooled connections; each
//! creates or finds its instance and its keywords and bumps their counters.
//! Exits non-zero if any row is duplicated, any count is off, or any request
//! failed.

use std::collections::BTreeMap;
use std::process::ExitCode;

use diesel::prelude::*;
use diesel_async::pooled_connection::deadpool::Pool;
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncConnection, RunQueryDsl, SimpleAsyncConnection};
use diesel_get_or_create::asynchronous::prelude::*;

diesel::table! {
    keywords (id) {
        id -> Integer,
        keyword -> Text,
        crates_cnt -> Integer,
    }
}

diesel::table! {
    instances (id) {
        id -> Integer,
        domain -> Text,
    }
}

/// crates.io's keyword: unique by its text, with a count of crates.
#[derive(Debug, Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = keywords)]
pub struct Keyword {
    pub id: i32,
    #[unique]
    pub keyword: String,
    pub crates_cnt: i32,
}

/// Lemmy's federated instance: unique by its domain.
#[derive(Debug, Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = instances)]
pub struct Instance {
    pub id: i32,
    #[unique]
    pub domain: String,
}

type Conn = SyncConnectionWrapper<SqliteConnection>;

const SCHEMA: &str = "
    PRAGMA journal_mode = WAL;
    CREATE TABLE keywords (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        keyword TEXT NOT NULL UNIQUE,
        crates_cnt INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE instances (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        domain TEXT NOT NULL UNIQUE
    );";

const REQUESTS: usize = 64;
const DOMAINS: [&str; 3] = ["lemmy.world", "lemmy.ml", "beehaw.org"];
const KEYWORDS: [&str; 6] = ["async", "database", "orm", "sql", "web", "cli"];

/// The keywords of request `i`'s crate: three of them, overlapping with
/// other requests'.
fn keywords_of(i: usize) -> [&'static str; 3] {
    [0, 1, 3].map(|k| KEYWORDS[(i + k) % KEYWORDS.len()])
}

/// One "publish" request: the crate's instance, then each keyword, found or
/// created, with its count bumped.
async fn publish(pool: &Pool<Conn>, i: usize) -> QueryResult<(i32, Vec<i32>)> {
    let mut conn = pool
        .get()
        .await
        .map_err(|e| diesel::result::Error::QueryBuilderError(e.into()))?;
    let domain = DOMAINS[i % DOMAINS.len()];
    let (instance, _) =
        Instance::get_or_create(&mut conn, instances::domain.key(domain), ()).await?;
    let mut ids = Vec::new();
    for keyword in keywords_of(i) {
        let (row, _) = Keyword::update_or_create_with(
            &mut conn,
            keywords::keyword.key(keyword),
            keywords::crates_cnt.eq(keywords::crates_cnt + 1),
            keywords::crates_cnt.eq(1),
        )
        .await?;
        ids.push(row.id);
    }
    Ok((instance.id, ids))
}

async fn run(path: &str) -> Result<(), Box<dyn std::error::Error>> {
    let mut setup = Conn::establish(path).await?;
    setup.batch_execute(SCHEMA).await?;

    // Every pooled connection waits for the writer instead of failing.
    let mut config = ManagerConfig::default();
    config.custom_setup = Box::new(|url| {
        let url = url.to_owned();
        Box::pin(async move {
            let mut conn = Conn::establish(&url).await?;
            conn.batch_execute("PRAGMA busy_timeout = 10000;")
                .await
                .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
            Ok(conn)
        })
    });
    let manager = AsyncDieselConnectionManager::<Conn>::new_with_config(path, config);
    let pool = Pool::builder(manager).max_size(8).build()?;

    // All requests at once, each in its own task (the futures are `Send`).
    let tasks: Vec<_> = (0..REQUESTS)
        .map(|i| {
            let pool = pool.clone();
            tokio::spawn(async move { publish(&pool, i).await })
        })
        .collect();
    let mut failed = 0;
    for task in tasks {
        if let Err(e) = task.await? {
            eprintln!("a request failed: {e}");
            failed += 1;
        }
    }

    let instances: Vec<Instance> = instances::table
        .select(Instance::as_select())
        .load(&mut setup)
        .await?;
    let keywords: Vec<Keyword> = keywords::table
        .select(Keyword::as_select())
        .order(keywords::keyword)
        .load(&mut setup)
        .await?;
    let mut expected: BTreeMap<&str, i32> = BTreeMap::new();
    for i in 0..REQUESTS {
        for keyword in keywords_of(i) {
            *expected.entry(keyword).or_default() += 1;
        }
    }
    println!("{REQUESTS} concurrent publish requests over 8 pooled connections:");
    println!(
        "  instances: {} rows for {} domains",
        instances.len(),
        DOMAINS.len()
    );
    for keyword in &keywords {
        println!(
            "  keyword {:<9} -> 1 row, crates_cnt = {:>2} (expected {})",
            keyword.keyword,
            keyword.crates_cnt,
            expected.get(keyword.keyword.as_str()).copied().unwrap_or(0)
        );
    }
    let counts: BTreeMap<&str, i32> = keywords
        .iter()
        .map(|k| (k.keyword.as_str(), k.crates_cnt))
        .collect();
    if failed > 0 {
        return Err(format!("{failed} requests failed").into());
    }
    if instances.len() != DOMAINS.len() {
        return Err(format!(
            "{} instance rows for {} domains",
            instances.len(),
            DOMAINS.len()
        )
        .into());
    }
    if counts != expected {
        return Err(format!("keyword counts {counts:?}, expected {expected:?}").into());
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let path = std::env::temp_dir().join(format!(
        "diesel-get-or-create-async-web-{}.sqlite",
        std::process::id()
    ));
    let path_str = path.to_str().expect("temporary path is UTF-8").to_owned();
    let result = run(&path_str).await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{path_str}{suffix}"));
    }
    match result {
        Ok(()) => {
            println!("async_web: all checks passed");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("async_web: {e}");
            ExitCode::FAILURE
        }
    }
}
