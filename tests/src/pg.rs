//! PostgreSQL test databases: one schema per test, on the server at
//! `GOC_PG_URL` (default `postgres://postgres@127.0.0.1:5432/test`).

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool};

pub use crate::counter::StatementCounter;

pub const SCHEMA: &str = "
    CREATE TABLE users (
        id SERIAL PRIMARY KEY,
        email TEXT NOT NULL UNIQUE,
        username TEXT NOT NULL UNIQUE,
        first_name TEXT NOT NULL,
        last_name TEXT NOT NULL,
        visits INTEGER NOT NULL DEFAULT 7,
        nick TEXT,
        UNIQUE (first_name, last_name)
    );
    CREATE TABLE memberships (
        org_id INTEGER NOT NULL,
        user_name TEXT NOT NULL,
        role TEXT NOT NULL,
        seat INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (org_id, user_name)
    );
    CREATE TABLE devices (
        id SERIAL PRIMARY KEY,
        vendor TEXT NOT NULL,
        serial BIGINT NOT NULL,
        label TEXT UNIQUE,
        pings INTEGER NOT NULL DEFAULT 0,
        UNIQUE (vendor, serial)
    );";

pub fn url() -> String {
    std::env::var("GOC_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A connection to the server itself; panics, naming the server, if it is unreachable.
pub fn admin() -> PgConnection {
    let url = url();
    PgConnection::establish(&url).unwrap_or_else(|e| {
        panic!(
            "PostgreSQL is unreachable at {url} ({e}). Run scripts/test.sh, which starts or \
             installs it, or set GOC_PG_URL."
        )
    })
}

/// A schema of its own for one test, with the test tables; dropped on drop.
pub struct TestDb {
    pub schema: String,
}

impl TestDb {
    pub fn new(name: &str) -> TestDb {
        let schema = format!(
            "goc_{}",
            name.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
        );
        let mut conn = admin();
        conn.batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}; \
             SET search_path TO {schema}; {SCHEMA}"
        ))
        .unwrap();
        TestDb { schema }
    }

    /// A new connection whose tables are this test's.
    pub fn connect(&self) -> PgConnection {
        connect_to(&self.schema)
    }

    /// A new connection whose standalone statements and transactions run at `isolation`
    /// (`READ COMMITTED`, `REPEATABLE READ` or `SERIALIZABLE`).
    pub fn connect_at(&self, isolation: &str) -> PgConnection {
        let mut conn = self.connect();
        conn.batch_execute(&format!(
            "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL {isolation}"
        ))
        .unwrap();
        conn
    }
}

impl TestDb {
    /// An r2d2 pool of connections whose tables are this test's.
    pub fn pool(&self, size: u32) -> Pool<ConnectionManager<PgConnection>> {
        #[derive(Debug)]
        struct SearchPath(String);
        impl CustomizeConnection<PgConnection, diesel::r2d2::Error> for SearchPath {
            fn on_acquire(&self, conn: &mut PgConnection) -> Result<(), diesel::r2d2::Error> {
                conn.batch_execute(&format!("SET search_path TO {}", self.0))
                    .map_err(diesel::r2d2::Error::QueryError)
            }
        }
        Pool::builder()
            .max_size(size)
            .connection_customizer(Box::new(SearchPath(self.schema.clone())))
            .build(ConnectionManager::new(url()))
            .unwrap()
    }
}

/// A new connection whose tables are those of schema `schema`.
pub fn connect_to(schema: &str) -> PgConnection {
    let mut conn = admin();
    conn.batch_execute(&format!("SET search_path TO {schema}"))
        .unwrap();
    conn
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ =
                admin().batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema));
        }
    }
}

diesel::define_sql_function! {
    /// `pg_backend_pid()`: the server process of this connection.
    fn pg_backend_pid() -> Integer;
}

/// This connection's server process id.
pub fn backend_pid(conn: &mut PgConnection) -> i32 {
    diesel::select(pg_backend_pid()).get_result(conn).unwrap()
}

#[derive(QueryableByName)]
struct Waiting {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    waiting: bool,
}

/// Wait (polling, up to 20 s) until server process `pid` is blocked on a lock.
pub fn wait_until_blocked(observer: &mut PgConnection, pid: u64) {
    let pid = i32::try_from(pid).expect("a PostgreSQL backend pid");
    for _ in 0..2000 {
        let w: Waiting = diesel::sql_query(
            "SELECT coalesce(bool_or(wait_event_type = 'Lock'), false) AS waiting \
             FROM pg_stat_activity WHERE pid = $1",
        )
        .bind::<diesel::sql_types::Integer, _>(pid)
        .get_result(observer)
        .unwrap();
        if w.waiting {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("backend {pid} never blocked on a lock");
}
