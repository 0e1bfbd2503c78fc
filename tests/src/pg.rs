//! PostgreSQL test databases: one schema per test, on the server at
//! `GOC_PG_URL` (default `postgres://postgres@127.0.0.1:5432/test`).

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};
use diesel::result::Error;
use diesel_get_or_create::Unusable;

use crate::backend::{
    AsConnRef, Count, Isolation, Mode, RaceSizes, ServerBackend, Statements, TestBackend,
};
pub use crate::counter::StatementCounter;
use crate::schema::users;

/// A connection from a pool of [`ServerBackend::pool`].
pub type Pooled = PooledConnection<ConnectionManager<PgConnection>>;

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
            "PostgreSQL is unreachable at {url} ({e}). Run the tests under scripts/servers.sh \
             (`scripts/servers.sh cargo test ..`), which starts a throwaway server, or set \
             GOC_PG_URL to a server of yours."
        )
    })
}

/// A schema of its own for one test, with the test tables; dropped on drop.
pub struct TestDb {
    pub schema: String,
}

impl TestDb {
    pub fn new(name: &str) -> TestDb {
        let schema = crate::db_name(name);
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

crate::backend::test_database!(TestDb => PgConnection);

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

/// The server process id of `conn` (`pg_backend_pid()`).
pub fn backend_pid<C: AsConnRef>(conn: &mut C) -> u64 {
    let pid = crate::query!(conn, get_result::<i32>, diesel::select(pg_backend_pid())).unwrap();
    pid as u64
}

#[derive(QueryableByName)]
struct Waiting {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    waiting: bool,
}

/// PostgreSQL, for the shared suites.
pub struct Postgres;

impl TestBackend for Postgres {
    const NAME: &'static str = "postgres";
    type Conn = PgConnection;
    type Db = TestDb;

    const TAGS_DDL: &'static str = "CREATE TABLE tags (id SERIAL PRIMARY KEY, \
         name TEXT NOT NULL UNIQUE, uses INTEGER NOT NULL DEFAULT 0)";

    fn is_repeated_column_error(err: &Error) -> bool {
        err.to_string().contains("specified more than once")
    }

    const UNUSABLE_UNIQUE: (&'static str, Unusable) = crate::backend::PARTIAL_UNIQUE;
    const EXPRESSION_UNIQUE: Option<&'static str> = Some(crate::backend::LOWER_CODE_UNIQUE);

    /// The upsert carries the create values.
    const LAZY_CREATE_VALUES_ON_UPDATE: bool = true;
    const LAZY_BATCH_CREATE_VALUES_ON_UPDATE: bool = true;

    // The PostgreSQL column of the table in `diesel_get_or_create::guide::statements`
    // (runtime/src/guide/statements.md), asserted by suite::behaviour::statements_per_call.
    const STATEMENTS: Statements = Statements {
        miss: (2, "SELECT + INSERT .. ON CONFLICT DO NOTHING RETURNING"),
        hit: (1, "one SELECT"),
        update: (1, "one INSERT .. ON CONFLICT DO UPDATE RETURNING"),
        create: (1, "the same one statement"),
    };
    // Inside the caller's transaction each insert runs in a savepoint.
    const STATEMENTS_IN_TRANSACTION: Statements = Statements {
        miss: (4, "SELECT, SAVEPOINT, INSERT, RELEASE"),
        hit: (1, "one SELECT"),
        update: (3, "SAVEPOINT, INSERT .. DO UPDATE, RELEASE"),
        create: (3, "SAVEPOINT, INSERT .. DO UPDATE, RELEASE"),
    };
    const BATCH_MISS: Count = (
        2,
        "SELECT .. UNION ALL; INSERT .. ON CONFLICT DO NOTHING RETURNING",
    );
    const BATCH_MISS_IN_TRANSACTION: Count = (
        4,
        "SELECT .. UNION ALL; SAVEPOINT, INSERT .. ON CONFLICT DO NOTHING RETURNING, RELEASE",
    );
    const BATCH_UPDATE: (Count, Count) = (
        (1, "INSERT .. ON CONFLICT DO UPDATE RETURNING"),
        (1, "INSERT .. ON CONFLICT DO UPDATE RETURNING"),
    );
    const BATCH_EACH: (Count, Count) = Self::BATCH_UPDATE;
    const BATCH_EACH_IN_TRANSACTION: (Count, Count) = Self::BATCH_UPDATE_IN_TRANSACTION;
    const BATCH_UPDATE_IN_TRANSACTION: (Count, Count) = (
        (
            3,
            "SAVEPOINT, INSERT .. ON CONFLICT DO UPDATE RETURNING, RELEASE",
        ),
        (
            3,
            "SAVEPOINT, INSERT .. ON CONFLICT DO UPDATE RETURNING, RELEASE",
        ),
    );

    fn must_retry_transaction(err: &Error) -> bool {
        crate::race::is_serialization_failure(err)
    }

    crate::race::retrying_transaction_of_a_sync_connection!();

    const RACES: RaceSizes = crate::backend::SERVER_RACES;
    const NAIVE_ISOLATION: Isolation = Isolation::ReadCommitted;
}

impl ServerBackend for Postgres {
    const LOST_RACE_CASES: &'static [(Isolation, Mode, usize)] = &[
        // SELECT (miss), INSERT (waits, then returns no row), SELECT.
        (Isolation::ReadCommitted, Mode::Standalone, 3),
        // BEGIN, SELECT, SAVEPOINT, INSERT, RELEASE, SELECT, COMMIT.
        (Isolation::ReadCommitted, Mode::InTransaction, 7),
        // SELECT, INSERT (serialization failure), the call runs again: SELECT (hit).
        (Isolation::RepeatableRead, Mode::Standalone, 3),
        (Isolation::Serializable, Mode::Standalone, 3),
    ];

    /// At REPEATABLE READ and above, A cannot update a row committed after its
    /// snapshot (see `snapshot_taken_before_the_row_was_committed`).
    const LOCK_ISOLATIONS: &'static [Isolation] = &[Isolation::ReadCommitted];

    type Pooled = Pooled;
    type Pool = Pool<ConnectionManager<PgConnection>>;

    /// An r2d2 pool of connections whose tables are this test's.
    fn pool(db: &TestDb, size: u32) -> Self::Pool {
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
            .connection_customizer(Box::new(SearchPath(db.schema.clone())))
            .build(ConnectionManager::new(url()))
            .unwrap()
    }

    fn checkout(pool: &Self::Pool) -> Pooled {
        pool.get().unwrap()
    }

    fn session_id(conn: &mut PgConnection) -> u64 {
        backend_pid(conn)
    }

    type Admin = PgConnection;

    fn admin(db: &TestDb) -> PgConnection {
        db.connect()
    }

    /// Polls `pg_stat_activity`, up to 20 s.
    fn wait_until_blocked(observer: &mut PgConnection, pid: u64) {
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

    fn kill_session(admin: &mut PgConnection, id: u64) {
        diesel::sql_query("SELECT pg_terminate_backend($1)")
            .bind::<diesel::sql_types::Integer, _>(id as i32)
            .execute(admin)
            .unwrap();
    }

    fn lock_prober(db: &TestDb) -> PgConnection {
        db.connect()
    }

    /// `SELECT .. FOR UPDATE NOWAIT`: fails at once if the row is locked.
    fn locked_read(conn: &mut PgConnection, email: &str) -> QueryResult<i32> {
        users::table
            .filter(users::email.eq(email))
            .select(users::visits)
            .for_update()
            .no_wait()
            .get_result(conn)
    }

    fn is_lock_refusal(err: &Error) -> bool {
        err.to_string().contains("could not obtain lock")
    }
}
