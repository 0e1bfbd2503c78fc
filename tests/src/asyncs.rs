//! The async connections of the suites (feature `async`): diesel-async's
//! `AsyncPgConnection`, `AsyncMysqlConnection` and
//! `SyncConnectionWrapper<SqliteConnection>`, plain and pooled (deadpool),
//! as the backends [`AsyncSqlite`], [`AsyncPostgres`] and [`AsyncMysql`] of
//! the shared suites.
//!
//! A test thread drives its async connection with
//! [`AsyncConn::run`](AsyncConn::run): the code is awaited on one runtime
//! shared by every async connection of the process, so the crate's calls go
//! through its async API and async driver, pauses are `tokio::time::sleep`,
//! and the callers of a race are as concurrent as the sync ones (one thread
//! each). The statement counts, the race sizes and the expected errors are
//! the sync backends' own: the async API must send the same statements.

use std::mem::ManuallyDrop;
use std::sync::OnceLock;

use diesel::result::Error;
use diesel::QueryResult;
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};
use diesel_async::{AsyncConnection, SimpleAsyncConnection};
use diesel_get_or_create::Unusable;

use crate::backend::{
    Isolation, Mode, RaceSizes, ServerBackend, Statements, TestBackend, TestDatabase,
};

/// diesel-async's SQLite connection.
pub type SqliteWrapper =
    diesel_async::sync_connection_wrapper::SyncConnectionWrapper<diesel::SqliteConnection>;

/// A connection from a deadpool pool of diesel-async connections.
pub type Object<C> = diesel_async::pooled_connection::deadpool::Object<C>;

/// A deadpool pool of diesel-async connections.
pub type Pool<C> = diesel_async::pooled_connection::deadpool::Pool<C>;

/// The runtime of every async connection of the process (two workers).
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime")
    })
}

/// An async connection a test thread drives to completion, call by call.
pub struct AsyncConn<C>(ManuallyDrop<C>);

impl<C> AsyncConn<C> {
    pub fn new(conn: C) -> Self {
        AsyncConn(ManuallyDrop::new(conn))
    }

    /// Await `f(connection)` on [`runtime`]; the calling thread waits.
    pub fn run<R>(&mut self, f: impl AsyncFnOnce(&mut C) -> R) -> R {
        runtime().block_on(f(&mut self.0))
    }
}

impl<C> Drop for AsyncConn<C> {
    fn drop(&mut self) {
        // A connection may hand its shutdown to the runtime.
        let _runtime = runtime().enter();
        // SAFETY: dropped once, here; never used again.
        unsafe { ManuallyDrop::drop(&mut self.0) }
    }
}

/// A connection to `url`, established on [`runtime`]; panics naming the
/// server if it is unreachable.
fn establish<C: AsyncConnection>(server: &str, url: &str, setup: &str) -> AsyncConn<C> {
    let mut conn = AsyncConn::new(
        runtime()
            .block_on(C::establish(url))
            .unwrap_or_else(|e| panic!("{server} is unreachable at {url} ({e})")),
    );
    if !setup.is_empty() {
        conn.run(async |c| c.batch_execute(setup).await).unwrap();
    }
    conn
}

/// A deadpool pool of up to `size` connections to `url` made by `config`
/// (a macro: the pool's bounds are per connection type).
macro_rules! pool {
    ($url:expr, $config:expr, $size:expr) => {{
        let manager = AsyncDieselConnectionManager::new_with_config($url, $config);
        let _runtime = runtime().enter();
        Pool::builder(manager)
            .max_size($size as usize)
            .build()
            .expect("a deadpool pool")
    }};
}

/// A connection from deadpool pool `$pool`.
macro_rules! checkout {
    ($pool:expr) => {
        AsyncConn::new(
            runtime()
                .block_on($pool.get())
                .expect("a pooled connection"),
        )
    };
}

/// Transactions opened through diesel-async's transaction manager.
pub mod txn {
    use diesel::QueryResult;
    use diesel_async::{AsyncConnection, TransactionManager};

    pub async fn begin<C: AsyncConnection>(conn: &mut C) -> QueryResult<()> {
        C::TransactionManager::begin_transaction(conn).await
    }

    pub async fn commit<C: AsyncConnection>(conn: &mut C) -> QueryResult<()> {
        C::TransactionManager::commit_transaction(conn).await
    }

    pub async fn rollback<C: AsyncConnection>(conn: &mut C) -> QueryResult<()> {
        C::TransactionManager::rollback_transaction(conn).await
    }
}

/// A sync backend's test database, for its async connections. Its name has
/// its own prefix, so that a sync and an async test of the same name never
/// share a schema or database.
pub struct AsyncDb<D>(pub D);

/// The settings of a connection at `isolation` (the sync backend's own).
fn isolation_sql(statement: &str, isolation: Isolation) -> String {
    format!("{statement} {}", isolation.sql())
}

/// A sync backend's constants, the async backend's own.
macro_rules! same_as {
    ($sync:ty, $name:literal) => {
        const NAME: &'static str = $name;
        const TAGS_DDL: &'static str = <$sync as TestBackend>::TAGS_DDL;
        const UNUSABLE_UNIQUE: (&'static str, Unusable) = <$sync as TestBackend>::UNUSABLE_UNIQUE;
        const EXPRESSION_UNIQUE: Option<&'static str> = <$sync as TestBackend>::EXPRESSION_UNIQUE;
        const LAZY_CREATE_VALUES_ON_UPDATE: bool =
            <$sync as TestBackend>::LAZY_CREATE_VALUES_ON_UPDATE;
        const LAZY_BATCH_CREATE_VALUES_ON_UPDATE: bool =
            <$sync as TestBackend>::LAZY_BATCH_CREATE_VALUES_ON_UPDATE;
        const STATEMENTS: Statements = <$sync as TestBackend>::STATEMENTS;
        const STATEMENTS_IN_TRANSACTION: Statements =
            <$sync as TestBackend>::STATEMENTS_IN_TRANSACTION;
        const RACES: RaceSizes = <$sync as TestBackend>::RACES;
        const NAIVE_ISOLATION: Isolation = <$sync as TestBackend>::NAIVE_ISOLATION;

        fn is_repeated_column_error(err: &Error) -> bool {
            <$sync as TestBackend>::is_repeated_column_error(err)
        }

        fn must_retry_transaction(err: &Error) -> bool {
            <$sync as TestBackend>::must_retry_transaction(err)
        }

        fn retrying_transaction<R>(
            conn: &mut Self::Conn,
            retries: &std::sync::atomic::AtomicUsize,
            op: impl Fn(&mut Self::Conn) -> QueryResult<R>,
        ) -> QueryResult<R> {
            crate::race::in_caller_transaction_by_hand(
                conn,
                retries,
                Self::must_retry_transaction,
                op,
            )
        }
    };
}

/// A sync server backend's observers, the async backend's own.
macro_rules! same_server_as {
    ($sync:ty) => {
        const LOST_RACE_CASES: &'static [(Isolation, Mode, usize)] =
            <$sync as ServerBackend>::LOST_RACE_CASES;
        const LOCK_ISOLATIONS: &'static [Isolation] = <$sync as ServerBackend>::LOCK_ISOLATIONS;
        type Admin = <$sync as ServerBackend>::Admin;

        fn admin(db: &Self::Db) -> Self::Admin {
            <$sync as ServerBackend>::admin(&db.0)
        }

        fn wait_until_blocked(observer: &mut Self::Admin, id: u64) {
            <$sync as ServerBackend>::wait_until_blocked(observer, id)
        }

        fn kill_session(admin: &mut Self::Admin, id: u64) {
            <$sync as ServerBackend>::kill_session(admin, id)
        }

        fn lock_prober(db: &Self::Db) -> Self::Admin {
            <$sync as ServerBackend>::lock_prober(&db.0)
        }

        fn locked_read(conn: &mut Self::Admin, email: &str) -> QueryResult<i32> {
            <$sync as ServerBackend>::locked_read(conn, email)
        }

        fn is_lock_refusal(err: &Error) -> bool {
            <$sync as ServerBackend>::is_lock_refusal(err)
        }
    };
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use super::*;
    use crate::sqlite::{Sqlite, TestDb};

    /// SQLite through diesel-async's `SyncConnectionWrapper`, for the suites.
    pub struct AsyncSqlite;

    impl TestDatabase for AsyncDb<TestDb> {
        type Conn = AsyncConn<SqliteWrapper>;

        fn new(name: &str) -> Self {
            AsyncDb(TestDb::new(&format!("async-{name}")))
        }

        fn connect(&self) -> Self::Conn {
            establish(
                "SQLite",
                self.0.path.to_str().unwrap(),
                crate::sqlite::CONNECTION_SETUP,
            )
        }

        fn connect_at(&self, isolation: Isolation) -> Self::Conn {
            assert_eq!(
                isolation,
                Isolation::Serializable,
                "SQLite has no other level"
            );
            self.connect()
        }
    }

    impl TestBackend for AsyncSqlite {
        const BATCH_MISS: crate::backend::Count =
            <crate::sqlite::Sqlite as TestBackend>::BATCH_MISS;
        const BATCH_MISS_IN_TRANSACTION: crate::backend::Count =
            <crate::sqlite::Sqlite as TestBackend>::BATCH_MISS_IN_TRANSACTION;
        const BATCH_UPDATE: (crate::backend::Count, crate::backend::Count) =
            <crate::sqlite::Sqlite as TestBackend>::BATCH_UPDATE;
        const BATCH_UPDATE_IN_TRANSACTION: (crate::backend::Count, crate::backend::Count) =
            <crate::sqlite::Sqlite as TestBackend>::BATCH_UPDATE_IN_TRANSACTION;
        const BATCH_EACH: (crate::backend::Count, crate::backend::Count) =
            <crate::sqlite::Sqlite as TestBackend>::BATCH_EACH;
        const BATCH_EACH_IN_TRANSACTION: (crate::backend::Count, crate::backend::Count) =
            <crate::sqlite::Sqlite as TestBackend>::BATCH_EACH_IN_TRANSACTION;
        same_as!(Sqlite, "sqlite-async");
        type Conn = AsyncConn<SqliteWrapper>;
        type Db = AsyncDb<TestDb>;
    }
}
#[cfg(feature = "sqlite")]
pub use sqlite::AsyncSqlite;

#[cfg(feature = "postgres")]
pub mod postgres {
    use super::*;
    use crate::pg::{Postgres, TestDb};
    use diesel_async::AsyncPgConnection;

    /// A new async connection whose tables are those of schema `schema`.
    pub fn connect_to(schema: &str) -> AsyncConn<AsyncPgConnection> {
        let setup = format!("SET search_path TO {schema}");
        establish("PostgreSQL", &crate::pg::url(), &setup)
    }

    /// PostgreSQL through diesel-async's `AsyncPgConnection`, for the suites.
    pub struct AsyncPostgres;

    impl TestDatabase for AsyncDb<TestDb> {
        type Conn = AsyncConn<AsyncPgConnection>;

        fn new(name: &str) -> Self {
            AsyncDb(TestDb::new(&format!("async_{name}")))
        }

        fn connect(&self) -> Self::Conn {
            connect_to(&self.0.schema)
        }

        fn connect_at(&self, isolation: Isolation) -> Self::Conn {
            let mut conn = self.connect();
            let sql = isolation_sql(
                "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL",
                isolation,
            );
            conn.run(async |c| c.batch_execute(&sql).await).unwrap();
            conn
        }
    }

    impl TestBackend for AsyncPostgres {
        const BATCH_MISS: crate::backend::Count = <crate::pg::Postgres as TestBackend>::BATCH_MISS;
        const BATCH_MISS_IN_TRANSACTION: crate::backend::Count =
            <crate::pg::Postgres as TestBackend>::BATCH_MISS_IN_TRANSACTION;
        const BATCH_UPDATE: (crate::backend::Count, crate::backend::Count) =
            <crate::pg::Postgres as TestBackend>::BATCH_UPDATE;
        const BATCH_UPDATE_IN_TRANSACTION: (crate::backend::Count, crate::backend::Count) =
            <crate::pg::Postgres as TestBackend>::BATCH_UPDATE_IN_TRANSACTION;
        const BATCH_EACH: (crate::backend::Count, crate::backend::Count) =
            <crate::pg::Postgres as TestBackend>::BATCH_EACH;
        const BATCH_EACH_IN_TRANSACTION: (crate::backend::Count, crate::backend::Count) =
            <crate::pg::Postgres as TestBackend>::BATCH_EACH_IN_TRANSACTION;
        same_as!(Postgres, "postgres-async");
        type Conn = AsyncConn<AsyncPgConnection>;
        type Db = AsyncDb<TestDb>;
    }

    impl ServerBackend for AsyncPostgres {
        same_server_as!(Postgres);
        type Pooled = AsyncConn<Object<AsyncPgConnection>>;
        type Pool = Pool<AsyncPgConnection>;

        /// A deadpool pool whose connections use this test's schema.
        fn pool(db: &Self::Db, size: u32) -> Self::Pool {
            let mut config = ManagerConfig::default();
            let search_path = format!("SET search_path TO {}", db.0.schema);
            config.custom_setup = Box::new(move |url| {
                let (url, search_path) = (url.to_owned(), search_path.clone());
                Box::pin(async move {
                    let mut conn = AsyncPgConnection::establish(&url).await?;
                    conn.batch_execute(&search_path)
                        .await
                        .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                    Ok(conn)
                })
            });
            pool!(crate::pg::url(), config, size)
        }

        fn checkout(pool: &Self::Pool) -> Self::Pooled {
            checkout!(pool)
        }

        fn session_id(conn: &mut Self::Conn) -> u64 {
            crate::pg::backend_pid(conn)
        }
    }
}
#[cfg(feature = "postgres")]
pub use postgres::AsyncPostgres;

#[cfg(feature = "mysql")]
pub mod mysql {
    use super::*;
    use crate::my::{Mysql, TestDb};
    use diesel_async::AsyncMysqlConnection;

    /// A new async connection to database `database` of the server.
    pub fn connect_to(database: &str) -> AsyncConn<AsyncMysqlConnection> {
        establish("MariaDB/MySQL", &crate::my::url_for(database), "")
    }

    /// MariaDB/MySQL through diesel-async's `AsyncMysqlConnection`, for the
    /// suites.
    pub struct AsyncMysql;

    impl TestDatabase for AsyncDb<TestDb> {
        type Conn = AsyncConn<AsyncMysqlConnection>;

        fn new(name: &str) -> Self {
            AsyncDb(TestDb::new(&format!("async_{name}")))
        }

        fn connect(&self) -> Self::Conn {
            connect_to(&self.0.database)
        }

        fn connect_at(&self, isolation: Isolation) -> Self::Conn {
            let mut conn = self.connect();
            let sql = isolation_sql("SET SESSION TRANSACTION ISOLATION LEVEL", isolation);
            conn.run(async |c| c.batch_execute(&sql).await).unwrap();
            conn
        }
    }

    impl TestBackend for AsyncMysql {
        const BATCH_MISS: crate::backend::Count = <crate::my::Mysql as TestBackend>::BATCH_MISS;
        const BATCH_MISS_IN_TRANSACTION: crate::backend::Count =
            <crate::my::Mysql as TestBackend>::BATCH_MISS_IN_TRANSACTION;
        const BATCH_UPDATE: (crate::backend::Count, crate::backend::Count) =
            <crate::my::Mysql as TestBackend>::BATCH_UPDATE;
        const BATCH_UPDATE_IN_TRANSACTION: (crate::backend::Count, crate::backend::Count) =
            <crate::my::Mysql as TestBackend>::BATCH_UPDATE_IN_TRANSACTION;
        const BATCH_EACH: (crate::backend::Count, crate::backend::Count) =
            <crate::my::Mysql as TestBackend>::BATCH_EACH;
        const BATCH_EACH_IN_TRANSACTION: (crate::backend::Count, crate::backend::Count) =
            <crate::my::Mysql as TestBackend>::BATCH_EACH_IN_TRANSACTION;
        same_as!(Mysql, "mariadb-async");
        type Conn = AsyncConn<AsyncMysqlConnection>;
        type Db = AsyncDb<TestDb>;
    }

    impl ServerBackend for AsyncMysql {
        same_server_as!(Mysql);
        type Pooled = AsyncConn<Object<AsyncMysqlConnection>>;
        type Pool = Pool<AsyncMysqlConnection>;

        /// A deadpool pool of connections to this test's database.
        fn pool(db: &Self::Db, size: u32) -> Self::Pool {
            pool!(
                crate::my::url_for(&db.0.database),
                ManagerConfig::default(),
                size
            )
        }

        fn checkout(pool: &Self::Pool) -> Self::Pooled {
            checkout!(pool)
        }

        fn session_id(conn: &mut Self::Conn) -> u64 {
            crate::my::connection_id_of(conn)
        }
    }
}
#[cfg(feature = "mysql")]
pub use mysql::AsyncMysql;
