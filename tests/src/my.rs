//! MariaDB/MySQL test databases: one database per test, on the server at
//! `GOC_MYSQL_URL` (default `mysql://root@127.0.0.1:3306/test`).

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, Pool};

pub use crate::counter::StatementCounter;

pub const SCHEMA: &str = "
    CREATE TABLE users (
        id INTEGER NOT NULL AUTO_INCREMENT PRIMARY KEY,
        email VARCHAR(191) NOT NULL UNIQUE,
        username VARCHAR(191) NOT NULL UNIQUE,
        first_name VARCHAR(191) NOT NULL,
        last_name VARCHAR(191) NOT NULL,
        visits INTEGER NOT NULL DEFAULT 7,
        nick VARCHAR(191),
        UNIQUE (first_name, last_name)
    ) ENGINE = InnoDB;
    CREATE TABLE memberships (
        org_id INTEGER NOT NULL,
        user_name VARCHAR(191) NOT NULL,
        role VARCHAR(191) NOT NULL,
        seat INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (org_id, user_name)
    ) ENGINE = InnoDB;
    CREATE TABLE devices (
        id INTEGER NOT NULL AUTO_INCREMENT PRIMARY KEY,
        vendor VARCHAR(191) NOT NULL,
        serial BIGINT NOT NULL,
        label VARCHAR(191) UNIQUE,
        pings INTEGER NOT NULL DEFAULT 0,
        UNIQUE (vendor, serial)
    ) ENGINE = InnoDB;";

pub fn url() -> String {
    std::env::var("GOC_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into())
}

/// `url` with its database replaced by `database`.
fn url_for(database: &str) -> String {
    let url = url();
    let base = match url.rfind('/') {
        Some(i) if i > "mysql://".len() => &url[..i],
        _ => url.as_str(),
    };
    format!("{base}/{database}")
}

fn establish(url: &str) -> MysqlConnection {
    MysqlConnection::establish(url).unwrap_or_else(|e| {
        panic!(
            "MariaDB/MySQL is unreachable at {url} ({e}). Run scripts/test.sh, which starts or \
             installs it, or set GOC_MYSQL_URL."
        )
    })
}

/// A connection to the server's database from the URL.
pub fn admin() -> MysqlConnection {
    establish(&url())
}

/// A database of its own for one test, with the test tables; dropped on drop.
pub struct TestDb {
    pub database: String,
}

impl TestDb {
    pub fn new(name: &str) -> TestDb {
        let database = format!(
            "goc_{}",
            name.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
        );
        admin()
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {database}; CREATE DATABASE {database}"
            ))
            .unwrap();
        let db = TestDb { database };
        db.connect().batch_execute(SCHEMA).unwrap();
        db
    }

    /// A new connection whose tables are this test's.
    pub fn connect(&self) -> MysqlConnection {
        connect_to(&self.database)
    }

    /// A new connection whose transactions run at `isolation`
    /// (`REPEATABLE READ` or `READ COMMITTED`).
    pub fn connect_at(&self, isolation: &str) -> MysqlConnection {
        let mut conn = self.connect();
        conn.batch_execute(&format!(
            "SET SESSION TRANSACTION ISOLATION LEVEL {isolation}"
        ))
        .unwrap();
        conn
    }
}

impl TestDb {
    /// An r2d2 pool of connections to this test's database.
    pub fn pool(&self, size: u32) -> Pool<ConnectionManager<MysqlConnection>> {
        Pool::builder()
            .max_size(size)
            .build(ConnectionManager::new(url_for(&self.database)))
            .unwrap()
    }
}

/// A new connection to database `database` of the server.
pub fn connect_to(database: &str) -> MysqlConnection {
    establish(&url_for(database))
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = admin().batch_execute(&format!("DROP DATABASE IF EXISTS {}", self.database));
        }
    }
}

diesel::define_sql_function! {
    /// `CONNECTION_ID()`: this connection's thread id on the server.
    #[sql_name = "CONNECTION_ID"]
    fn connection_id() -> Unsigned<BigInt>;
}

/// This connection's id on the server (for `KILL`).
pub fn thread_id(conn: &mut MysqlConnection) -> u64 {
    diesel::select(connection_id()).get_result(conn).unwrap()
}

#[derive(QueryableByName)]
struct Waiting {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

#[derive(Debug, QueryableByName)]
#[allow(dead_code)]
struct Trx {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
    #[diesel(sql_type = diesel::sql_types::Text)]
    state: String,
}

/// Wait (polling, up to 22 s) until connection `id` waits for a row lock.
pub fn wait_until_blocked(observer: &mut MysqlConnection, id: u64) {
    // InnoDB refreshes INNODB_TRX only when it was not read for 0.1 s: poll slower.
    for _ in 0..150 {
        let w: Waiting = diesel::sql_query(
            "SELECT COUNT(*) AS n FROM information_schema.INNODB_TRX \
             WHERE trx_mysql_thread_id = ? AND trx_state = 'LOCK WAIT'",
        )
        .bind::<diesel::sql_types::Unsigned<diesel::sql_types::BigInt>, _>(id)
        .get_result(observer)
        .unwrap();
        if w.n > 0 {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(150));
    }
    let rows: Vec<Trx> = diesel::sql_query(
        "SELECT CAST(ID AS SIGNED) AS id, CONCAT_WS(' / ', COMMAND, STATE, INFO) AS state \
         FROM information_schema.PROCESSLIST",
    )
    .load(observer)
    .unwrap();
    panic!("connection {id} never waited for a lock; transactions: {rows:?}");
}
