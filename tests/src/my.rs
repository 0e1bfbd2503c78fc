//! MariaDB/MySQL test databases: one database per test, on the server at
//! `GOC_MYSQL_URL` (default `mysql://root@127.0.0.1:3306/test`).

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, Pool, PooledConnection};
use diesel::result::Error;
use diesel_get_or_create::Unusable;

use crate::backend::{Count, Isolation, Mode, RaceSizes, ServerBackend, Statements, TestBackend};
pub use crate::counter::StatementCounter;
use crate::schema::users;

/// A connection from a pool of [`ServerBackend::pool`].
pub type Pooled = PooledConnection<ConnectionManager<MysqlConnection>>;

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
pub fn url_for(database: &str) -> String {
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
            "MariaDB/MySQL is unreachable at {url} ({e}). Run the tests under scripts/servers.sh \
             (`scripts/servers.sh cargo test ..`), which starts a throwaway server, or set \
             GOC_MYSQL_URL to a server of yours."
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
        let database = crate::db_name(name);
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

crate::backend::test_database!(TestDb => MysqlConnection);

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

/// The thread id of `conn` on the server (`CONNECTION_ID()`, for `KILL`).
pub fn connection_id_of<C: crate::backend::AsConnRef>(conn: &mut C) -> u64 {
    // As a signed number: the query compiles for every connection type.
    let id = diesel::dsl::sql::<diesel::sql_types::BigInt>("CAST(CONNECTION_ID() AS SIGNED)");
    let id = crate::query!(conn, get_result::<i64>, diesel::select(id)).unwrap();
    id as u64
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

/// MariaDB/MySQL, for the shared suites.
pub struct Mysql;

impl TestBackend for Mysql {
    const NAME: &'static str = "mariadb";
    type Conn = MysqlConnection;
    type Db = TestDb;

    const TAGS_DDL: &'static str =
        "CREATE TABLE tags (id INTEGER NOT NULL AUTO_INCREMENT PRIMARY KEY, \
         name VARCHAR(191) NOT NULL UNIQUE, uses INTEGER NOT NULL DEFAULT 0)";

    fn is_repeated_column_error(err: &Error) -> bool {
        err.to_string().contains("specified twice")
    }

    /// MySQL has no partial indexes; a prefix index is its index that enforces
    /// something other than the declared constraint.
    const UNUSABLE_UNIQUE: (&'static str, Unusable) = (
        "CREATE UNIQUE INDEX gadgets_code_prefix ON gadgets (code(4))",
        Unusable::Prefix,
    );
    /// MariaDB has no expression (functional) indexes.
    const EXPRESSION_UNIQUE: Option<&'static str> = None;

    /// The upsert carries the create values.
    const LAZY_CREATE_VALUES_ON_UPDATE: bool = true;

    // The MySQL / MariaDB column of the table in `diesel_get_or_create::guide::statements`
    // (runtime/src/guide/statements.md), asserted by suite::behaviour::statements_per_call.
    const STATEMENTS: Statements = Statements {
        miss: (3, "SELECT, INSERT, SELECT (no RETURNING)"),
        hit: (1, "one SELECT"),
        update: (
            4,
            "BEGIN, INSERT .. ON DUPLICATE KEY UPDATE, SELECT .. FOR UPDATE, COMMIT",
        ),
        create: (
            4,
            "BEGIN, INSERT .. ON DUPLICATE KEY UPDATE, SELECT .. FOR UPDATE, COMMIT",
        ),
    };
    const STATEMENTS_IN_TRANSACTION: Statements = Statements {
        miss: (3, "SELECT, INSERT, SELECT"),
        hit: (1, "one SELECT"),
        update: (2, "INSERT .. ON DUPLICATE KEY UPDATE, SELECT .. FOR UPDATE"),
        create: (2, "INSERT .. ON DUPLICATE KEY UPDATE, SELECT .. FOR UPDATE"),
    };
    const BATCH_MISS: Count = (3, "SELECT .. UNION ALL; INSERT; SELECT .. UNION ALL");
    const BATCH_MISS_IN_TRANSACTION: Count = (3, "the same three");
    const BATCH_UPDATE: (Count, Count) = (
        (
            5,
            "SELECT; BEGIN, UPDATE, SELECT .. LOCK IN SHARE MODE, COMMIT",
        ),
        (5, "SELECT (no row); BEGIN, INSERT, SELECT, COMMIT"),
    );
    const BATCH_EACH: (Count, Count) = (
        (
            6,
            "SELECT; BEGIN, SELECT .. FOR UPDATE, INSERT .. ON DUPLICATE KEY UPDATE, \
             SELECT .. LOCK IN SHARE MODE, COMMIT",
        ),
        (5, "SELECT (no row); BEGIN, INSERT, SELECT, COMMIT"),
    );
    const BATCH_EACH_IN_TRANSACTION: (Count, Count) = (
        (
            4,
            "SELECT; SELECT .. FOR UPDATE, INSERT .. ON DUPLICATE KEY UPDATE, SELECT .. LOCK IN SHARE MODE",
        ),
        (3, "SELECT (no row); INSERT; SELECT"),
    );
    const BATCH_UPDATE_IN_TRANSACTION: (Count, Count) = (
        (3, "SELECT; UPDATE, SELECT .. LOCK IN SHARE MODE"),
        (3, "SELECT (no row); INSERT; SELECT"),
    );

    fn must_retry_transaction(err: &Error) -> bool {
        crate::race::is_serialization_failure(err)
    }

    crate::race::retrying_transaction_of_a_sync_connection!();

    const RACES: RaceSizes = crate::backend::SERVER_RACES;
    const NAIVE_ISOLATION: Isolation = Isolation::RepeatableRead;
}

impl ServerBackend for Mysql {
    /// SELECT (miss), INSERT (waits, then a duplicate), SELECT .. LOCK IN SHARE
    /// MODE; inside a transaction also BEGIN and COMMIT.
    const LOST_RACE_CASES: &'static [(Isolation, Mode, usize)] = &[
        (Isolation::RepeatableRead, Mode::Standalone, 3),
        (Isolation::RepeatableRead, Mode::InTransaction, 5),
        (Isolation::ReadCommitted, Mode::Standalone, 3),
        (Isolation::ReadCommitted, Mode::InTransaction, 5),
    ];

    const LOCK_ISOLATIONS: &'static [Isolation] =
        &[Isolation::RepeatableRead, Isolation::ReadCommitted];

    type Pooled = Pooled;
    type Pool = Pool<ConnectionManager<MysqlConnection>>;

    /// An r2d2 pool of connections to this test's database.
    fn pool(db: &TestDb, size: u32) -> Self::Pool {
        Pool::builder()
            .max_size(size)
            .build(ConnectionManager::new(url_for(&db.database)))
            .unwrap()
    }

    fn checkout(pool: &Self::Pool) -> Pooled {
        pool.get().unwrap()
    }

    fn session_id(conn: &mut MysqlConnection) -> u64 {
        connection_id_of(conn)
    }

    type Admin = MysqlConnection;

    fn admin(db: &TestDb) -> MysqlConnection {
        db.connect()
    }

    /// Polls `INNODB_TRX`, up to 22 s.
    fn wait_until_blocked(observer: &mut MysqlConnection, id: u64) {
        // InnoDB refreshes INNODB_TRX only when it was not read for 0.1 s: poll
        // slower, and one test at a time. Two tests polling at once (they run in
        // parallel) keep the cache fresh-looking and stale, and neither sees its
        // connection wait (seen in CI: both gave up after 22 s).
        static ONE_READER: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _only_reader = ONE_READER.lock().unwrap_or_else(|e| e.into_inner());
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

    fn kill_session(admin: &mut MysqlConnection, id: u64) {
        admin.batch_execute(&format!("KILL {id}")).unwrap();
    }

    /// A connection that gives up waiting for a row lock after 1 s.
    fn lock_prober(db: &TestDb) -> MysqlConnection {
        let mut c = db.connect();
        c.batch_execute("SET SESSION innodb_lock_wait_timeout = 1")
            .unwrap();
        c
    }

    fn locked_read(conn: &mut MysqlConnection, email: &str) -> QueryResult<i32> {
        users::table
            .filter(users::email.eq(email))
            .select(users::visits)
            .for_update()
            .get_result(conn)
    }

    fn is_lock_refusal(err: &Error) -> bool {
        err.to_string().contains("Lock wait timeout")
    }
}
