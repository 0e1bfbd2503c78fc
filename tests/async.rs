//! The async API (feature `async`) on diesel-async connections of every
//! backend: statements per call (the sync API's table, asserted), races of
//! tasks on one missing key and on one counter at every isolation level,
//! standalone and inside the callers' transactions, races of tasks'
//! `get_or_create_all` and `update_or_create_all_with` on the same keys,
//! pooled connections in `tokio::spawn` (the futures are `Send`), a call
//! cancelled between two statements, and the constraint check.

use std::sync::Arc;
use std::time::Duration;

use diesel::prelude::*;
use diesel::result::Error;
use diesel_async::pooled_connection::deadpool::Pool;
use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use diesel_async::{AsyncConnection, SimpleAsyncConnection};
use diesel_get_or_create::asynchronous::prelude::*;
use diesel_get_or_create_tests::backend::TestBackend;
use diesel_get_or_create_tests::counter::StatementCounter;
use diesel_get_or_create_tests::models::*;
use diesel_get_or_create_tests::race::report;
use diesel_get_or_create_tests::schema::*;
use tokio::sync::Barrier;

/// The suite, for one backend: `$conn` is its async connection, `$connect`
/// opens one to test database `$db` at `$isolation` (`None`: the server's
/// default), and `$url` is the URL a pool connects with.
macro_rules! async_suite {
    (
        $module:ident: $backend:ty, $conn:ty, isolations $isolations:expr,
        connect |$db:ident, $isolation:ident| $connect:expr,
        manager |$udb:ident| $manager:expr
    ) => {
        mod $module {
            use super::*;

            type B = $backend;
            type Conn = $conn;
            type Db = <B as TestBackend>::Db;

            const NAME: &str = concat!(stringify!($module), "-async");

            async fn connect($db: &Db, $isolation: Option<&str>) -> Conn {
                $connect
            }

            fn manager($udb: &Db) -> AsyncDieselConnectionManager<Conn> {
                $manager
            }

            async fn get(conn: &mut Conn, key: &str) -> QueryResult<(User, bool)> {
                User::get_or_create(conn, users::email.key(key), names(key, key, "R")).await
            }

            async fn bump(conn: &mut Conn, key: &str) -> QueryResult<(User, bool)> {
                User::update_or_create_with(
                    conn,
                    users::email.key(key),
                    users::visits.eq(users::visits + 1),
                    (names(key, key, "R"), users::visits.eq(1)),
                )
                .await
            }

            /// `op` on `conn`, inside a transaction of the caller's when
            /// `in_transaction`, run again while the backend says the
            /// transaction must be retried: the result and the retries.
            async fn call(
                conn: &mut Conn,
                in_transaction: bool,
                bump_it: bool,
                key: &str,
            ) -> (QueryResult<(User, bool)>, usize) {
                let mut retries = 0;
                loop {
                    let result = if !in_transaction {
                        if bump_it {
                            bump(conn, key).await
                        } else {
                            get(conn, key).await
                        }
                    } else {
                        conn.transaction(async |c| {
                            if bump_it {
                                bump(c, key).await
                            } else {
                                get(c, key).await
                            }
                        })
                        .await
                    };
                    match result {
                        Err(e) if in_transaction && B::must_retry_transaction(&e) => retries += 1,
                        result => return (result, retries),
                    }
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn statements_per_call_are_the_sync_apis() {
                let db = Db::new(concat!("async_statements_", stringify!($module)));
                let mut conn = connect(&db, None).await;
                let counter = StatementCounter::default();
                conn.set_instrumentation(counter.clone());

                let s = B::STATEMENTS;
                assert!(get(&mut conn, "ann@x.io").await.unwrap().1);
                assert_eq!(counter.take(), s.miss.0, "miss: {}", s.miss.1);
                assert!(!get(&mut conn, "ann@x.io").await.unwrap().1);
                assert_eq!(counter.take(), s.hit.0, "hit: {}", s.hit.1);
                let (user, created) = bump(&mut conn, "ann@x.io").await.unwrap();
                assert_eq!((created, user.visits), (false, 8));
                assert_eq!(counter.take(), s.update.0, "update: {}", s.update.1);
                let (user, created) = bump(&mut conn, "bob@x.io").await.unwrap();
                assert_eq!((created, user.visits), (true, 1));
                assert_eq!(counter.take(), s.create.0, "create: {}", s.create.1);

                let t = B::STATEMENTS_IN_TRANSACTION;
                let counted = counter.clone();
                conn.transaction(async |c| {
                    counted.take(); // BEGIN
                    assert!(get(c, "carl@x.io").await?.1);
                    assert_eq!(
                        counted.take(),
                        t.miss.0,
                        "miss in a transaction: {}",
                        t.miss.1
                    );
                    assert!(!get(c, "carl@x.io").await?.1);
                    assert_eq!(counted.take(), t.hit.0, "hit in a transaction: {}", t.hit.1);
                    assert!(!bump(c, "carl@x.io").await?.1);
                    assert_eq!(
                        counted.take(),
                        t.update.0,
                        "update in a transaction: {}",
                        t.update.1
                    );
                    assert!(bump(c, "dora@x.io").await?.1);
                    assert_eq!(
                        counted.take(),
                        t.create.0,
                        "create in a transaction: {}",
                        t.create.1
                    );
                    Ok::<_, Error>(())
                })
                .await
                .unwrap();

                let emails: Vec<String> = users::table
                    .select(users::email)
                    .order(users::email)
                    .load(&mut db.connect())
                    .unwrap();
                assert_eq!(emails, ["ann@x.io", "bob@x.io", "carl@x.io", "dora@x.io"]);
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn the_constraint_check_runs_on_async_connections() {
                let db = Db::new(concat!("async_verify_", stringify!($module)));
                let mut conn = connect(&db, None).await;
                let report = User::verify_constraints(&mut conn).await.unwrap();
                assert!(report.is_ok(), "{report}");
                let report = diesel_get_or_create::asynchronous::verify_all(
                    &mut conn,
                    &[
                        <User as diesel_get_or_create::GetOrCreate>::constraints(),
                        <Device as diesel_get_or_create::GetOrCreate>::constraints(),
                    ],
                )
                .await
                .unwrap();
                assert_eq!(report.models.len(), 2);
                // A model whose table is missing fails the check.
                let err = Tag::verify_constraints(&mut conn).await.unwrap_err();
                assert!(err.to_string().contains("tags"), "{err}");
            }

            /// `callers` tasks, each with its own connection, released
            /// together on one missing key per round.
            async fn race(
                isolation: &str,
                in_transaction: bool,
                bump_it: bool,
                callers: usize,
                rounds: usize,
            ) {
                let db = Db::new(&format!(
                    "async_race_{}_{}_{}_{}_{}",
                    stringify!($module),
                    isolation.replace(' ', "_"),
                    in_transaction,
                    bump_it,
                    callers
                ));
                let mut conns = Vec::new();
                for _ in 0..callers {
                    conns.push(connect(&db, Some(isolation)).await);
                }
                let (mut errors, mut retries) = (0, 0);
                for round in 0..rounds {
                    let key = format!("race-{round}@x.io");
                    let barrier = Arc::new(Barrier::new(callers));
                    let tasks: Vec<_> = conns
                        .drain(..)
                        .map(|mut conn| {
                            let (barrier, key) = (barrier.clone(), key.clone());
                            tokio::spawn(async move {
                                barrier.wait().await;
                                let outcome = call(&mut conn, in_transaction, bump_it, &key).await;
                                (conn, outcome)
                            })
                        })
                        .collect();
                    let mut outcomes = Vec::new();
                    for task in tasks {
                        let (conn, (result, r)) = task.await.unwrap();
                        conns.push(conn);
                        retries += r;
                        match result {
                            Ok((user, created)) => outcomes.push((user.id, created, user.visits)),
                            Err(e) => {
                                errors += 1;
                                eprintln!("{NAME} {isolation} round {round}: {e}");
                            }
                        }
                    }
                    let rows: i64 = users::table
                        .filter(users::email.eq(&key))
                        .count()
                        .get_result(&mut db.connect())
                        .unwrap();
                    assert_eq!(rows, 1, "round {round}: one row for the key");
                    assert_eq!(
                        outcomes.iter().filter(|o| o.1).count(),
                        1,
                        "round {round}: one creator"
                    );
                    assert!(
                        outcomes.iter().all(|o| o.0 == outcomes[0].0),
                        "round {round}: one id"
                    );
                    if bump_it {
                        let visits: i32 = users::table
                            .filter(users::email.eq(&key))
                            .select(users::visits)
                            .get_result(&mut db.connect())
                            .unwrap();
                        assert_eq!(
                            visits as usize, callers,
                            "round {round}: every update applied"
                        );
                    }
                }
                let mode = if in_transaction {
                    "in txn"
                } else {
                    "standalone"
                };
                let scenario = if bump_it {
                    "update_or_create, missing key"
                } else {
                    "get_or_create, missing key"
                };
                report(
                    NAME,
                    isolation,
                    mode,
                    scenario,
                    callers,
                    callers * rounds,
                    rounds as i64,
                    errors,
                    retries,
                    0,
                    0,
                    0,
                );
                assert_eq!(errors, 0, "no caller sees an error");
            }

            /// 32 tasks x 200 `update_or_create_with(visits + 1)` on one key.
            async fn counter(isolation: &'static str, in_transaction: bool) {
                let db = Db::new(&format!(
                    "async_counter_{}_{}_{}",
                    stringify!($module),
                    isolation.replace(' ', "_"),
                    in_transaction
                ));
                let (callers, calls) = (32, 200);
                let barrier = Arc::new(Barrier::new(callers));
                let mut tasks = Vec::new();
                for _ in 0..callers {
                    let mut conn = connect(&db, Some(isolation)).await;
                    let barrier = barrier.clone();
                    tasks.push(tokio::spawn(async move {
                        barrier.wait().await;
                        let (mut errors, mut retries) = (0, 0);
                        for _ in 0..calls {
                            let (result, r) =
                                call(&mut conn, in_transaction, true, "counter@x.io").await;
                            retries += r;
                            if let Err(e) = result {
                                errors += 1;
                                eprintln!("{NAME} {isolation} counter: {e}");
                            }
                        }
                        (errors, retries)
                    }));
                }
                let (mut errors, mut retries) = (0, 0);
                for task in tasks {
                    let (e, r) = task.await.unwrap();
                    errors += e;
                    retries += r;
                }
                let visits: i32 = users::table
                    .filter(users::email.eq("counter@x.io"))
                    .select(users::visits)
                    .get_result(&mut db.connect())
                    .unwrap();
                let mode = if in_transaction {
                    "in txn"
                } else {
                    "standalone"
                };
                report(
                    NAME,
                    isolation,
                    mode,
                    "update_or_create counter",
                    callers,
                    callers * calls,
                    1,
                    errors,
                    retries,
                    0,
                    0,
                    0,
                );
                assert_eq!(errors, 0);
                assert_eq!(visits as usize, callers * calls, "no increment lost");
            }

            /// `get_or_create_all` of `keys`, or with `update`
            /// `update_or_create_all_with` (`visits + 1`, or created with 1).
            async fn batch(
                conn: &mut Conn,
                update: bool,
                keys: &[String],
            ) -> QueryResult<Vec<(User, bool)>> {
                if update {
                    let items = keys.iter().map(|e| {
                        let create = (names(e, e, "R"), users::visits.eq(1));
                        (users::email.key(e.as_str()), create)
                    });
                    let bump = users::visits.eq(users::visits + 1);
                    User::update_or_create_all_with(conn, items, bump).await
                } else {
                    let items = keys
                        .iter()
                        .map(|e| (users::email.key(e.as_str()), names(e, e, "R")));
                    User::get_or_create_all(conn, items).await
                }
            }

            /// [`batch`], as `call` runs one key: the result and the
            /// retries.
            async fn call_all(
                conn: &mut Conn,
                in_transaction: bool,
                update: bool,
                keys: &[String],
            ) -> (QueryResult<Vec<(User, bool)>>, usize) {
                let mut retries = 0;
                loop {
                    let result = if in_transaction {
                        conn.transaction(async |c| batch(c, update, keys).await)
                            .await
                    } else {
                        batch(conn, update, keys).await
                    };
                    match result {
                        Err(e) if in_transaction && B::must_retry_transaction(&e) => retries += 1,
                        result => return (result, retries),
                    }
                }
            }

            /// `batch_races::CALLERS` tasks, each with its own connection,
            /// released together on the same `batch_races::KEYS` missing
            /// keys, each in an order of its own, for `batch_races::ROUNDS`
            /// rounds of fresh keys: one row per key, created by exactly one
            /// caller, every caller gets every key's row in its order, and no
            /// caller sees an error. With `update` (see
            /// `batch_races::batch_update_race`), each key also ends with one
            /// visit per caller (no update lost), and the callers got its row
            /// with visits 1, 2, .. once each (each call returned exactly the
            /// row it wrote). The statements the servers aborted (serialization
            /// failures, deadlocks) and those sent are counted by each
            /// connection.
            async fn batch_race(isolation: &str, in_transaction: bool, update: bool) {
                use diesel_get_or_create_tests::suite::batch_races::{
                    shuffled, CALLERS, KEYS, ROUNDS,
                };
                use std::collections::{BTreeMap, BTreeSet};

                let db = Db::new(&format!(
                    "async_batch_race_{}_{}_{}_{}",
                    stringify!($module),
                    isolation.replace(' ', "_"),
                    in_transaction,
                    update
                ));
                let mut conns = Vec::new();
                let mut counters = Vec::new();
                for _ in 0..CALLERS {
                    let mut conn = connect(&db, Some(isolation)).await;
                    let counter = StatementCounter::default();
                    conn.set_instrumentation(counter.clone());
                    conns.push(conn);
                    counters.push(counter);
                }
                let (mut retries, mut rows) = (0, 0);
                for round in 0..ROUNDS {
                    let keys: Vec<String> = (0..KEYS)
                        .map(|i| format!("batch-{round}-{i}@x.io"))
                        .collect();
                    let barrier = Arc::new(Barrier::new(CALLERS));
                    let tasks: Vec<_> = conns
                        .drain(..)
                        .enumerate()
                        .map(|(caller, mut conn)| {
                            let (barrier, order) =
                                (barrier.clone(), shuffled(&keys, caller, round));
                            tokio::spawn(async move {
                                barrier.wait().await;
                                let outcome =
                                    call_all(&mut conn, in_transaction, update, &order).await;
                                (conn, order, outcome)
                            })
                        })
                        .collect();
                    let mut errors = Vec::new();
                    let mut creators: BTreeMap<String, usize> = BTreeMap::new();
                    let mut ids: BTreeMap<String, BTreeSet<i32>> = BTreeMap::new();
                    let mut returned: BTreeMap<String, Vec<i32>> = BTreeMap::new();
                    for task in tasks {
                        let (conn, order, (result, r)) = task.await.unwrap();
                        conns.push(conn);
                        retries += r;
                        match result {
                            Ok(got) => {
                                assert_eq!(got.len(), KEYS, "round {round}: a row per key");
                                for ((user, created), key) in got.into_iter().zip(order) {
                                    assert_eq!(user.email, key, "round {round}: input order");
                                    *creators.entry(key.clone()).or_default() +=
                                        usize::from(created);
                                    returned.entry(key.clone()).or_default().push(user.visits);
                                    ids.entry(key).or_default().insert(user.id);
                                }
                            }
                            Err(e) => errors.push(e.to_string()),
                        }
                    }
                    assert_eq!(
                        errors,
                        Vec::<String>::new(),
                        "round {round}: no caller sees an error"
                    );
                    let stored: BTreeMap<String, i32> = users::table
                        .filter(users::email.eq_any(&keys))
                        .select((users::email, users::visits))
                        .load::<(String, i32)>(&mut db.connect())
                        .unwrap()
                        .into_iter()
                        .collect();
                    rows += stored.len() as i64;
                    assert_eq!(stored.len(), KEYS, "round {round}: one row per key");
                    assert!(
                        creators.values().all(|&n| n == 1) && creators.len() == KEYS,
                        "round {round}: each key created exactly once: {creators:?}"
                    );
                    assert!(
                        ids.values().all(|ids| ids.len() == 1),
                        "round {round}: every caller got the same row for a key"
                    );
                    if update {
                        let expected: Vec<i32> = (1..=CALLERS as i32).collect();
                        let wrong: Vec<_> = returned
                            .iter_mut()
                            .filter_map(|(key, got)| {
                                got.sort_unstable();
                                let stored = stored.get(key).copied();
                                (*got != expected || stored != Some(CALLERS as i32))
                                    .then(|| (key.clone(), got.clone(), stored))
                            })
                            .collect();
                        assert!(
                            wrong.is_empty(),
                            "round {round}: {} of {KEYS} keys whose callers did not get visits \
                             1..={CALLERS} once each, or whose row does not have {CALLERS} \
                             visits (first: {:?})",
                            wrong.len(),
                            wrong.first()
                        );
                    }
                }
                let mode = if in_transaction {
                    "in txn"
                } else {
                    "standalone"
                };
                let scenario = if update {
                    "update_or_create_all, same"
                } else {
                    "get_or_create_all, same keys"
                };
                let aborted: Vec<usize> = counters.iter().map(|c| c.aborts()).collect();
                let deadlocks: usize = counters.iter().map(|c| c.deadlocks()).sum();
                report(
                    NAME,
                    isolation,
                    mode,
                    scenario,
                    CALLERS,
                    CALLERS * ROUNDS,
                    rows,
                    0,
                    retries,
                    aborted.iter().sum(),
                    aborted.iter().copied().max().unwrap_or(0),
                    deadlocks,
                );
                // diesel-async's PostgreSQL connection reports a failed load
                // after its finish event: its aborted loads are not counted
                // above, but a standalone call's runs again show here.
                let statements: usize = counters.iter().map(|c| c.take()).sum();
                eprintln!(
                    "      {NAME} {isolation} {mode} {scenario}: {statements} statements \
                     for {} calls",
                    CALLERS * ROUNDS
                );
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn batch_races_at_every_isolation_level() {
                for isolation in $isolations {
                    for in_transaction in [false, true] {
                        batch_race(isolation, in_transaction, false).await;
                    }
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn batch_update_races_at_every_isolation_level() {
                for isolation in $isolations {
                    for in_transaction in [false, true] {
                        batch_race(isolation, in_transaction, true).await;
                    }
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn races_and_counters_at_every_isolation_level() {
                for isolation in $isolations {
                    for in_transaction in [false, true] {
                        for bump_it in [false, true] {
                            for (callers, rounds) in [(3, 10), (8, 6), (32, 3)] {
                                race(isolation, in_transaction, bump_it, callers, rounds).await;
                            }
                        }
                        counter(isolation, in_transaction).await;
                    }
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn pooled_connections_in_spawned_tasks() {
                let db = Db::new(concat!("async_pooled_", stringify!($module)));
                let pool = Pool::builder(manager(&db)).max_size(8).build().unwrap();
                let barrier = Arc::new(Barrier::new(16));
                let tasks: Vec<_> = (0..16)
                    .map(|_| {
                        let (pool, barrier) = (pool.clone(), barrier.clone());
                        // `tokio::spawn` requires the future to be `Send`.
                        tokio::spawn(async move {
                            barrier.wait().await;
                            let mut conn = pool.get().await.unwrap();
                            let (user, created) = User::get_or_create(
                                &mut conn,
                                users::email.key("pooled@x.io"),
                                names("pooled", "Pooled", "P"),
                            )
                            .await
                            .unwrap();
                            (user.id, created)
                        })
                    })
                    .collect();
                let mut outcomes = Vec::new();
                for task in tasks {
                    outcomes.push(task.await.unwrap());
                }
                assert_eq!(outcomes.iter().filter(|o| o.1).count(), 1, "one creator");
                assert!(outcomes.iter().all(|o| o.0 == outcomes[0].0), "one row");
            }
        }
    };
}

async_suite! {
    postgres: diesel_get_or_create_tests::pg::Postgres, diesel_async::AsyncPgConnection,
    isolations ["READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE"],
    connect |db, isolation| {
        let mut conn = diesel_async::AsyncPgConnection::establish(&diesel_get_or_create_tests::pg::url())
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL is unreachable at {}: {e}", diesel_get_or_create_tests::pg::url()));
        conn.batch_execute(&format!("SET search_path TO {}", db.schema)).await.unwrap();
        if let Some(isolation) = isolation {
            conn.batch_execute(&format!("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL {isolation}"))
                .await
                .unwrap();
        }
        conn
    },
    manager |db| AsyncDieselConnectionManager::new(format!(
        "{}?options=-csearch_path%3D{}",
        diesel_get_or_create_tests::pg::url(),
        db.schema
    ))
}

async_suite! {
    mysql: diesel_get_or_create_tests::my::Mysql, diesel_async::AsyncMysqlConnection,
    isolations ["REPEATABLE READ", "READ COMMITTED"],
    connect |db, isolation| {
        let url = diesel_get_or_create_tests::my::url_for(&db.database);
        let mut conn = diesel_async::AsyncMysqlConnection::establish(&url)
            .await
            .unwrap_or_else(|e| panic!("MariaDB is unreachable at {url}: {e}"));
        if let Some(isolation) = isolation {
            conn.batch_execute(&format!("SET SESSION TRANSACTION ISOLATION LEVEL {isolation}"))
                .await
                .unwrap();
        }
        conn
    },
    manager |db| AsyncDieselConnectionManager::new(diesel_get_or_create_tests::my::url_for(&db.database))
}

type AsyncSqlite = diesel_async::sync_connection_wrapper::SyncConnectionWrapper<SqliteConnection>;

async_suite! {
    sqlite: diesel_get_or_create_tests::sqlite::Sqlite, AsyncSqlite,
    isolations ["SERIALIZABLE"],
    connect |db, _isolation| {
        let mut conn = AsyncSqlite::establish(db.path.to_str().unwrap()).await.unwrap();
        conn.batch_execute("PRAGMA busy_timeout = 30000; PRAGMA synchronous = NORMAL;")
            .await
            .unwrap();
        conn
    },
    manager |db| {
        // Each pooled connection waits for the writer instead of failing.
        let mut config = diesel_async::pooled_connection::ManagerConfig::default();
        config.custom_setup = Box::new(|url| {
            let url = url.to_owned();
            Box::pin(async move {
                let mut conn = AsyncSqlite::establish(&url).await?;
                conn.batch_execute("PRAGMA busy_timeout = 30000;")
                    .await
                    .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                Ok(conn)
            })
        });
        AsyncDieselConnectionManager::new_with_config(db.path.to_str().unwrap(), config)
    }
}

/// A standalone MySQL `update_or_create_with` runs `BEGIN; UPDATE; SELECT ..
/// FOR UPDATE; COMMIT`. Dropped while its `UPDATE` waits for a row lock (a
/// request timeout), it leaves its transaction open and uncommitted: the
/// connection says so (a pool discards it), and no change is ever committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_cancelled_between_two_statements_commits_nothing() {
    use diesel_async::pooled_connection::PoolableConnection;
    use diesel_async::TransactionManager;
    use diesel_get_or_create_tests::my::TestDb;

    let db = TestDb::new("async_cancelled");
    let url = diesel_get_or_create_tests::my::url_for(&db.database);
    let mut conn = diesel_async::AsyncMysqlConnection::establish(&url)
        .await
        .unwrap();
    User::get_or_create(
        &mut conn,
        users::email.key("ann@x.io"),
        names("ann", "Ann", "Lee"),
    )
    .await
    .unwrap();

    // Another connection holds the row's lock.
    let mut holder = db.connect();
    diesel_get_or_create_tests::txn::begin(&mut holder);
    let visits: i32 = users::table
        .filter(users::email.eq("ann@x.io"))
        .select(users::visits)
        .for_update()
        .get_result(&mut holder)
        .unwrap();

    let call = User::update_or_create_with(
        &mut conn,
        users::email.key("ann@x.io"),
        users::visits.eq(users::visits + 1),
        users::visits.eq(1),
    );
    let timed_out = tokio::time::timeout(Duration::from_millis(500), call).await;
    assert!(
        timed_out.is_err(),
        "the call waits for the lock, and is dropped"
    );

    let status = <diesel_async::AsyncMysqlConnection as AsyncConnection>::TransactionManager::transaction_manager_status_mut(&mut conn);
    assert_eq!(
        status.transaction_depth().unwrap().map(|d| d.get()),
        Some(1),
        "the dropped call's transaction is still open on the connection"
    );
    assert!(conn.is_broken(), "a pool would discard this connection");

    diesel_get_or_create_tests::txn::commit(&mut holder);
    drop(conn);
    let after: i32 = users::table
        .filter(users::email.eq("ann@x.io"))
        .select(users::visits)
        .get_result(&mut db.connect())
        .unwrap();
    assert_eq!(after, visits, "nothing of the dropped call was committed");
}
