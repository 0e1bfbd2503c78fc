//! The contract between the shared suites and the backends: what each backend
//! supplies, checked by the compiler.
//!
//! [`TestBackend`] is implemented once per backend (`sqlite::Sqlite`,
//! `pg::Postgres`, `my::Mysql`) and [`ServerBackend`] once per database server
//! (the interleavings need sessions that block, and can be killed). The suites
//! in [`crate::suite`] are generic functions over them.
//!
//! The crate's operations cannot be called through a generic connection: their
//! bounds are the runtime's per-backend traits, with a marker parameter that
//! only a concrete call infers. So the suites reach the concrete connection
//! through [`dispatch!`](crate::dispatch): it matches [`ConnRef`] and repeats
//! the code in one arm per connection type, each type-checked on its own
//! backend. A sync connection runs the sync code; an async one (feature
//! `async`: diesel-async's connections, plain and pooled, each an
//! [`AsyncConn`](crate::asyncs::AsyncConn)) runs the async code, awaited. The
//! suites call the crate with [`call!`](crate::call) and run their own queries
//! with [`query!`](crate::query), [`exec`](crate::exec) and [`crate::txn`]; so
//! one generic suite runs on both drivers of the crate.

use diesel::result::Error;
use diesel_get_or_create::Unusable;

/// A transaction isolation level a test runs at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    ReadCommitted,
    RepeatableRead,
    Serializable,
}

impl Isolation {
    /// The level as SQL spells it (and as the `RACE |` lines print it).
    pub fn sql(self) -> &'static str {
        match self {
            Isolation::ReadCommitted => "READ COMMITTED",
            Isolation::RepeatableRead => "REPEATABLE READ",
            Isolation::Serializable => "SERIALIZABLE",
        }
    }
}

/// Whether a call runs on its own or inside a transaction of the caller's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Standalone,
    InTransaction,
}

impl Mode {
    /// The mode as the `RACE |` lines print it.
    pub fn label(self) -> &'static str {
        match self {
            Mode::Standalone => "standalone",
            Mode::InTransaction => "in txn",
        }
    }
}

/// How many statements (round trips: `BEGIN`, `SAVEPOINT` .. included) one call
/// sends, and what they are.
pub type Count = (usize, &'static str);

/// The statements of each kind of call, on a backend.
#[derive(Debug, Clone, Copy)]
pub struct Statements {
    /// `get_or_create` of a missing key.
    pub miss: Count,
    /// `get_or_create` of an existing key.
    pub hit: Count,
    /// `update_or_create_with` of an existing key.
    pub update: Count,
    /// `update_or_create_with` of a missing key.
    pub create: Count,
}

/// How big the races of [`crate::suite::races`] are, on a backend: `(callers,
/// rounds)` on one missing key per round, and `(callers, calls each)` on one
/// counter.
#[derive(Debug, Clone, Copy)]
pub struct RaceSizes {
    /// Each runs for `get_or_create` and for `update_or_create`.
    pub missing_key: &'static [(usize, usize)],
    pub counter: &'static [(usize, usize)],
    /// The naive read-then-insert, which must fail at least one round.
    pub naive_missing_key: (usize, usize),
    /// The naive read-modify-write counter, which must lose an increment.
    pub naive_counter: (usize, usize),
}

/// The races of both servers: 3, 8 and 32 callers on a missing key, 32 x 200
/// increments of one counter; the naive strategies with 8 callers.
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub const SERVER_RACES: RaceSizes = RaceSizes {
    missing_key: &[(3, 20), (8, 10), (32, 4)],
    counter: &[(32, 200)],
    naive_missing_key: (8, 10),
    naive_counter: (8, 100),
};

/// A partial unique index on `gadgets (code)`, for the backends that have
/// partial indexes (SQLite, PostgreSQL): [`TestBackend::UNUSABLE_UNIQUE`].
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub const PARTIAL_UNIQUE: (&str, Unusable) = (
    "CREATE UNIQUE INDEX gadgets_code_partial ON gadgets (code) WHERE color IS NOT NULL",
    Unusable::Partial,
);

/// A unique index on `lower(code)`, for the backends that have expression
/// indexes (SQLite, PostgreSQL): [`TestBackend::EXPRESSION_UNIQUE`].
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub const LOWER_CODE_UNIQUE: &str =
    "CREATE UNIQUE INDEX gadgets_code_lower ON gadgets (lower(code))";

/// A fresh database (or schema, or file) of one test, with the test tables
/// ([`crate::schema`]), removed on drop.
pub trait TestDatabase: Sized + Sync {
    type Conn;

    /// A fresh database for the test `name` (unique among the tests of a
    /// target).
    fn new(name: &str) -> Self;

    /// A new connection to it.
    fn connect(&self) -> Self::Conn;

    /// A new connection to it whose standalone statements and transactions
    /// run at `isolation`.
    fn connect_at(&self, isolation: Isolation) -> Self::Conn;
}

/// `impl TestDatabase for $db` through the type's own `new`, `connect` and
/// `connect_at(&str)`, which the benchmarks also use.
macro_rules! test_database {
    ($db:ty => $conn:ty) => {
        impl $crate::backend::TestDatabase for $db {
            type Conn = $conn;

            fn new(name: &str) -> Self {
                <$db>::new(name)
            }

            fn connect(&self) -> $conn {
                <$db>::connect(self)
            }

            fn connect_at(&self, isolation: $crate::backend::Isolation) -> $conn {
                <$db>::connect_at(self, isolation.sql())
            }
        }
    };
}
pub(crate) use test_database;

/// What a backend supplies to the shared suites.
pub trait TestBackend: Sized + 'static {
    /// The backend's name in the `RACE |` lines.
    const NAME: &'static str;

    /// The backend's connection (sync, or async: [`crate::asyncs`]).
    type Conn: AsConnRef + Send + 'static;

    /// A fresh database (or schema, or file) of one test.
    type Db: TestDatabase<Conn = Self::Conn>;

    /// DDL of a table `tags` ([`crate::schema::tags`]): serial `id`, unique
    /// `name`, `uses` defaulting to 0.
    const TAGS_DDL: &'static str;

    /// Whether `err` is how the backend (or the crate, before sending the
    /// statement) refuses defaults that repeat a key column.
    fn is_repeated_column_error(err: &Error) -> bool;

    /// DDL of a unique index on `gadgets (code)` that must not count as the
    /// declared constraint, and the reason the check must give.
    const UNUSABLE_UNIQUE: (&'static str, Unusable);

    /// DDL of a unique index on an expression of `gadgets.code`, where the
    /// backend has expression indexes.
    const EXPRESSION_UNIQUE: Option<&'static str>;

    /// Whether `update_or_create_with` computes `lazy` create values when it
    /// updates (PostgreSQL, MySQL: their upsert carries them).
    const LAZY_CREATE_VALUES_ON_UPDATE: bool = false;

    /// Whether `update_or_create_all_with` computes `lazy` create values of
    /// keys it updates (PostgreSQL: its batch upsert carries them).
    const LAZY_BATCH_CREATE_VALUES_ON_UPDATE: bool = false;

    /// The statements each call sends, standalone. These counts, and the
    /// batch counts below, are the table documented in the crate's
    /// `diesel_get_or_create::guide::statements` page
    /// (`runtime/src/guide/statements.md`): change both together.
    const STATEMENTS: Statements;

    /// The statements each call sends inside a transaction of the caller's.
    const STATEMENTS_IN_TRANSACTION: Statements;

    /// The statements of a `get_or_create_all` of up to 500 missing keys,
    /// standalone and inside the caller's transaction (a batch of existing
    /// keys is one read).
    const BATCH_MISS: Count;
    const BATCH_MISS_IN_TRANSACTION: Count;
    /// Statements of `update_or_create_all_with` on 10 keys, standalone:
    /// (every key updated, every key created).
    const BATCH_UPDATE: (Count, Count);
    /// The same inside the caller's transaction.
    const BATCH_UPDATE_IN_TRANSACTION: (Count, Count);
    /// Statements of `update_or_create_all` (each key its own values) on 10
    /// keys, standalone: (every key updated, every key created).
    const BATCH_EACH: (Count, Count);
    /// The same inside the caller's transaction.
    const BATCH_EACH_IN_TRANSACTION: (Count, Count);

    /// Whether a caller whose transaction failed with `err` runs it again, as
    /// an application does.
    fn must_retry_transaction(err: &Error) -> bool;

    /// `op` in a transaction of the caller's, run again as an application
    /// does (`diesel_get_or_create::transaction` on a sync connection; see
    /// [`crate::race`]), counting the runs again in `retries`.
    fn retrying_transaction<R>(
        conn: &mut Self::Conn,
        retries: &std::sync::atomic::AtomicUsize,
        op: impl Fn(&mut Self::Conn) -> diesel::QueryResult<R>,
    ) -> diesel::QueryResult<R>;

    /// The sizes of the races.
    const RACES: RaceSizes;

    /// The isolation level the naive strategies race at.
    const NAIVE_ISOLATION: Isolation;
}

/// What a database server supplies besides: sessions that can be watched
/// while they wait for a lock, and killed; a locking read; pooled connections.
pub trait ServerBackend: TestBackend {
    /// `(isolation, mode, statements)`: the settings of the lost race, and how
    /// many statements the loser sends in each.
    const LOST_RACE_CASES: &'static [(Isolation, Mode, usize)];

    /// The isolation levels at which a row written by `update_or_create` stays
    /// locked until the writer's transaction ends.
    const LOCK_ISOLATIONS: &'static [Isolation];

    /// A pooled connection (r2d2; deadpool for the async connections).
    type Pooled: AsConnRef + Send;

    /// A pool of connections to a test database.
    type Pool: Sync;

    /// A pool of up to `size` connections to `db`.
    fn pool(db: &Self::Db, size: u32) -> Self::Pool;

    /// A connection from `pool`.
    fn checkout(pool: &Self::Pool) -> Self::Pooled;

    /// The connection's session id on the server.
    fn session_id(conn: &mut Self::Conn) -> u64;

    /// A (sync) connection that watches, kills and probes the connections
    /// under test.
    type Admin: AsConnRef + Send;

    /// A new [`Admin`](Self::Admin) connection to `db`.
    fn admin(db: &Self::Db) -> Self::Admin;

    /// Wait (polling the server) until session `id` waits for a lock.
    fn wait_until_blocked(observer: &mut Self::Admin, id: u64);

    /// End session `id` from another connection.
    fn kill_session(admin: &mut Self::Admin, id: u64);

    /// A connection for [`locked_read`](Self::locked_read).
    fn lock_prober(db: &Self::Db) -> Self::Admin;

    /// `visits` of the user `email`, read with a row lock; fails at once (or
    /// within about a second) if another transaction holds the row.
    fn locked_read(conn: &mut Self::Admin, email: &str) -> diesel::QueryResult<i32>;

    /// Whether `err` is [`locked_read`](Self::locked_read) refused by a lock.
    fn is_lock_refusal(err: &Error) -> bool;
}

/// A connection, as the one concrete type it is.
pub enum ConnRef<'a> {
    #[cfg(feature = "sqlite")]
    Sqlite(&'a mut diesel::SqliteConnection),
    #[cfg(feature = "postgres")]
    Pg(&'a mut diesel::PgConnection),
    #[cfg(feature = "postgres")]
    PgPooled(&'a mut crate::pg::Pooled),
    #[cfg(feature = "mysql")]
    Mysql(&'a mut diesel::MysqlConnection),
    #[cfg(feature = "mysql")]
    MysqlPooled(&'a mut crate::my::Pooled),
    #[cfg(all(feature = "async", feature = "sqlite"))]
    AsyncSqlite(&'a mut crate::asyncs::AsyncConn<crate::asyncs::SqliteWrapper>),
    #[cfg(all(feature = "async", feature = "postgres"))]
    AsyncPg(&'a mut crate::asyncs::AsyncConn<diesel_async::AsyncPgConnection>),
    #[cfg(all(feature = "async", feature = "postgres"))]
    AsyncPgPooled(
        &'a mut crate::asyncs::AsyncConn<crate::asyncs::Object<diesel_async::AsyncPgConnection>>,
    ),
    #[cfg(all(feature = "async", feature = "mysql"))]
    AsyncMysql(&'a mut crate::asyncs::AsyncConn<diesel_async::AsyncMysqlConnection>),
    #[cfg(all(feature = "async", feature = "mysql"))]
    AsyncMysqlPooled(
        &'a mut crate::asyncs::AsyncConn<crate::asyncs::Object<diesel_async::AsyncMysqlConnection>>,
    ),
}

/// A connection type that [`dispatch!`](crate::dispatch) can run code on.
pub trait AsConnRef {
    fn conn_ref(&mut self) -> ConnRef<'_>;
}

macro_rules! as_conn_ref {
    ($($feature:meta: $conn:ty => $variant:ident;)*) => {$(
        #[cfg($feature)]
        impl AsConnRef for $conn {
            fn conn_ref(&mut self) -> ConnRef<'_> {
                ConnRef::$variant(self)
            }
        }
    )*};
}

as_conn_ref! {
    feature = "sqlite": diesel::SqliteConnection => Sqlite;
    feature = "postgres": diesel::PgConnection => Pg;
    feature = "postgres": crate::pg::Pooled => PgPooled;
    feature = "mysql": diesel::MysqlConnection => Mysql;
    feature = "mysql": crate::my::Pooled => MysqlPooled;
    all(feature = "async", feature = "sqlite"):
        crate::asyncs::AsyncConn<crate::asyncs::SqliteWrapper> => AsyncSqlite;
    all(feature = "async", feature = "postgres"):
        crate::asyncs::AsyncConn<diesel_async::AsyncPgConnection> => AsyncPg;
    all(feature = "async", feature = "postgres"):
        crate::asyncs::AsyncConn<crate::asyncs::Object<diesel_async::AsyncPgConnection>> => AsyncPgPooled;
    all(feature = "async", feature = "mysql"):
        crate::asyncs::AsyncConn<diesel_async::AsyncMysqlConnection> => AsyncMysql;
    all(feature = "async", feature = "mysql"):
        crate::asyncs::AsyncConn<crate::asyncs::Object<diesel_async::AsyncMysqlConnection>> => AsyncMysqlPooled;
}

/// `dispatch!(conn, |c| sync_code, async |a| async_code)`: run `sync_code`
/// with `c` bound to `conn` as its concrete sync connection type, or
/// `async_code` (which may `.await`) with `a` bound to its concrete async
/// connection, on the connection's runtime. `conn` is a `&mut` of any
/// [`AsConnRef`] type; each arm is compiled for its own connection type, so
/// each backend's call is type-checked.
///
/// Every statement of the suites goes through here.
#[macro_export]
macro_rules! dispatch {
    ($conn:expr, |$c:ident| $sync:expr, async |$a:ident| $async:expr $(,)?) => {
        match $crate::backend::AsConnRef::conn_ref($conn) {
            #[cfg(feature = "sqlite")]
            $crate::backend::ConnRef::Sqlite($c) => $sync,
            #[cfg(feature = "postgres")]
            $crate::backend::ConnRef::Pg($c) => $sync,
            #[cfg(feature = "postgres")]
            $crate::backend::ConnRef::PgPooled($c) => $sync,
            #[cfg(feature = "mysql")]
            $crate::backend::ConnRef::Mysql($c) => $sync,
            #[cfg(feature = "mysql")]
            $crate::backend::ConnRef::MysqlPooled($c) => $sync,
            #[cfg(all(feature = "async", feature = "sqlite"))]
            $crate::backend::ConnRef::AsyncSqlite(conn) => conn.run(async |$a| $async),
            #[cfg(all(feature = "async", feature = "postgres"))]
            $crate::backend::ConnRef::AsyncPg(conn) => conn.run(async |$a| $async),
            #[cfg(all(feature = "async", feature = "postgres"))]
            $crate::backend::ConnRef::AsyncPgPooled(conn) => conn.run(async |$a| $async),
            #[cfg(all(feature = "async", feature = "mysql"))]
            $crate::backend::ConnRef::AsyncMysql(conn) => conn.run(async |$a| $async),
            #[cfg(all(feature = "async", feature = "mysql"))]
            $crate::backend::ConnRef::AsyncMysqlPooled(conn) => conn.run(async |$a| $async),
        }
    };
}

/// A call of the crate on `conn`, through its sync or its async API:
/// `call!(conn, User::get_or_create(key, defaults))` (the connection is the
/// first argument, added here), or `call!(conn, verify_all(&[..]))`. The
/// trait is named in full, so both APIs' traits can be in scope.
#[macro_export]
macro_rules! call {
    ($conn:expr, verify_all($($arg:expr),* $(,)?)) => {
        $crate::dispatch!(
            $conn,
            |c| ::diesel_get_or_create::verify_all(c, $($arg),*),
            async |a| ::diesel_get_or_create::asynchronous::verify_all(a, $($arg),*).await,
        )
    };
    ($conn:expr, $model:ident :: $op:ident ($($arg:expr),* $(,)?)) => {
        $crate::dispatch!(
            $conn,
            |c| <$model as ::diesel_get_or_create::GetOrCreate>::$op(c, $($arg),*),
            async |a| <$model as ::diesel_get_or_create::asynchronous::GetOrCreate>::$op(
                a, $($arg),*
            )
            .await,
        )
    };
}

/// `query!(conn, method, query)`: Diesel's `query.method(conn)` (`execute`,
/// `load`, `get_result`, `first`, ..), through `diesel::RunQueryDsl` or
/// `diesel_async::RunQueryDsl`; `method::<T>` names the loaded type.
#[macro_export]
macro_rules! query {
    ($conn:expr, $method:ident $(::<$t:ty>)?, $query:expr $(,)?) => {
        $crate::dispatch!(
            $conn,
            |c| ::diesel::RunQueryDsl::$method$(::<$t>)?($query, c),
            async |a| ::diesel_async::RunQueryDsl::$method$(::<$t>)?($query, a).await,
        )
    };
}
