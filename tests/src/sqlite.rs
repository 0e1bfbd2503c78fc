//! SQLite test databases: one WAL database file per test.

use crate::backend::{Count, Isolation, RaceSizes, Statements};
pub use crate::counter::StatementCounter;
use diesel::prelude::*;
use diesel::result::Error;
use diesel_get_or_create::Unusable;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

pub const SCHEMA: &str = "
    CREATE TABLE users (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
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
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        vendor TEXT NOT NULL,
        serial BIGINT NOT NULL,
        label TEXT UNIQUE,
        pings INTEGER NOT NULL DEFAULT 0,
        UNIQUE (vendor, serial)
    );";

/// A fresh database file, removed (with its WAL files) on drop.
pub struct TestDb {
    pub path: PathBuf,
}

impl TestDb {
    pub fn new(name: &str) -> TestDb {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "dgoc-{name}-{}-{}.sqlite",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        remove(&path);
        let db = TestDb { path };
        let mut conn = db.connect();
        // WAL is a property of the file: set it once, before any other
        // connection exists (switching it needs an exclusive lock).
        diesel::connection::SimpleConnection::batch_execute(
            &mut conn,
            "PRAGMA journal_mode = WAL;",
        )
        .unwrap();
        diesel::connection::SimpleConnection::batch_execute(&mut conn, SCHEMA).unwrap();
        db
    }

    /// A new connection to the (WAL) database file, with a busy timeout,
    /// so writers queue instead of failing.
    pub fn connect(&self) -> SqliteConnection {
        connect(&self.path)
    }

    /// A new connection; SQLite has one isolation level (its transactions
    /// are serializable), which is the only `isolation` accepted.
    pub fn connect_at(&self, isolation: &str) -> SqliteConnection {
        assert_eq!(isolation, "SERIALIZABLE", "SQLite has no other level");
        self.connect()
    }
}

crate::backend::test_database!(TestDb => SqliteConnection);

/// What every test connection runs first: writers queue (up to 30 s)
/// instead of failing.
pub const CONNECTION_SETUP: &str = "PRAGMA busy_timeout = 30000; PRAGMA synchronous = NORMAL;";

pub fn connect(path: &Path) -> SqliteConnection {
    let mut conn = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    diesel::connection::SimpleConnection::batch_execute(&mut conn, CONNECTION_SETUP).unwrap();
    conn
}

fn remove(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        remove(&self.path);
    }
}

/// SQLite, for the shared suites.
pub struct Sqlite;

impl crate::backend::TestBackend for Sqlite {
    const NAME: &'static str = "sqlite";
    type Conn = SqliteConnection;
    type Db = TestDb;

    const TAGS_DDL: &'static str = "CREATE TABLE tags (id INTEGER PRIMARY KEY AUTOINCREMENT, \
         name TEXT NOT NULL UNIQUE, uses INTEGER NOT NULL DEFAULT 0)";

    /// SQLite would accept a repeated column (keeping the first value): the
    /// crate refuses it before the statement is sent.
    fn is_repeated_column_error(err: &Error) -> bool {
        matches!(err, Error::QueryBuilderError(_))
            && err.to_string().contains("column `email` is given twice")
    }

    const UNUSABLE_UNIQUE: (&'static str, Unusable) = crate::backend::PARTIAL_UNIQUE;
    const EXPRESSION_UNIQUE: Option<&'static str> = Some(crate::backend::LOWER_CODE_UNIQUE);

    // The SQLite column of the table in `diesel_get_or_create::guide::statements`
    // (runtime/src/guide/statements.md), asserted by suite::behaviour::statements_per_call.
    const STATEMENTS: Statements = Statements {
        miss: (2, "SELECT + INSERT .. ON CONFLICT DO NOTHING RETURNING"),
        hit: (1, "one SELECT"),
        update: (1, "one UPDATE .. RETURNING"),
        create: (2, "UPDATE (no row) + INSERT .. RETURNING"),
    };
    /// The same: the crate opens no savepoint on SQLite.
    const STATEMENTS_IN_TRANSACTION: Statements = Self::STATEMENTS;
    const BATCH_MISS: Count = (3, "SELECT .. UNION ALL; INSERT; SELECT .. UNION ALL");
    const BATCH_MISS_IN_TRANSACTION: Count = (3, "the same three");
    const BATCH_UPDATE: (Count, Count) = (
        (1, "UPDATE .. RETURNING"),
        (
            5,
            "UPDATE .. RETURNING (no row); BEGIN, INSERT, SELECT .. UNION ALL, COMMIT",
        ),
    );
    const BATCH_EACH: (Count, Count) = (
        (
            5,
            "BEGIN, UPDATE SET <key> = <key> WHERE 0 (the write lock), SELECT .. UNION ALL, \
             INSERT .. ON CONFLICT DO UPDATE RETURNING, COMMIT",
        ),
        (
            8,
            "BEGIN, UPDATE .. WHERE 0, SELECT (no row), COMMIT; BEGIN, INSERT, SELECT .. UNION ALL, COMMIT",
        ),
    );
    const BATCH_EACH_IN_TRANSACTION: (Count, Count) = (
        (
            3,
            "UPDATE .. WHERE 0, SELECT .. UNION ALL, INSERT .. ON CONFLICT DO UPDATE RETURNING",
        ),
        (
            4,
            "UPDATE .. WHERE 0, SELECT (no row); INSERT; SELECT .. UNION ALL",
        ),
    );
    const BATCH_UPDATE_IN_TRANSACTION: (Count, Count) = (
        (1, "UPDATE .. RETURNING"),
        (
            3,
            "UPDATE .. RETURNING (no row); INSERT; SELECT .. UNION ALL",
        ),
    );

    /// A transaction that read before another connection committed cannot
    /// write (`SQLITE_BUSY_SNAPSHOT`, which waits for nothing): it must start
    /// again, as a serialization failure must on a server.
    fn must_retry_transaction(err: &Error) -> bool {
        crate::race::is_serialization_failure(err)
            || matches!(err, Error::DatabaseError(_, info) if info.message() == "database is locked")
    }

    crate::race::retrying_transaction_of_a_sync_connection!();

    const RACES: RaceSizes = RaceSizes {
        missing_key: &[(3, 20), (8, 10), (16, 30), (32, 4)],
        counter: &[(16, 100), (32, 200)],
        naive_missing_key: (16, 30),
        naive_counter: (16, 100),
    };
    const NAIVE_ISOLATION: Isolation = Isolation::Serializable;
}
