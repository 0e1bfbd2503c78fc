//! The shared suites (behaviour, constraint check, interleavings, races at
//! every isolation level, standalone and inside the callers' transactions) on
//! diesel-async's connections, through the crate's async API: the same
//! generic code as the sync suites, instantiated on the async backends of
//! `diesel_get_or_create_tests::asyncs`. Each call sends exactly the
//! statements the sync API sends (asserted, text included).

use diesel::ExpressionMethods;
use diesel_get_or_create::KeyExpressionMethods;
use diesel_get_or_create_tests::backend::{TestBackend, TestDatabase};
use diesel_get_or_create_tests::counter::StatementCounter;
use diesel_get_or_create_tests::models::{names, User, UserDefaults};
use diesel_get_or_create_tests::schema::users;
use diesel_get_or_create_tests::suite::behaviour::{statements_per_call, StatementLogs};
use diesel_get_or_create_tests::{assert_unique_violation, call_all, txn};

/// The async API sends the statements of the sync API, in the same words.
/// (Compared without their binds: SQLite's wrapper prints its own copies of
/// them, `String("ann@x.io")` for `"ann@x.io"`.)
fn assert_same_statements(sync: StatementLogs, asynchronous: StatementLogs) {
    let sql = |log: Vec<String>| -> Vec<String> {
        log.into_iter()
            .map(|s| s.split(" -- binds:").next().unwrap().to_owned())
            .collect()
    };
    assert_eq!(sql(asynchronous.miss), sql(sync.miss), "miss");
    assert_eq!(sql(asynchronous.hit), sql(sync.hit), "hit");
    assert_eq!(sql(asynchronous.update), sql(sync.update), "update");
    assert_eq!(sql(asynchronous.create), sql(sync.create), "create");
}

/// The statements of `get_or_create_all` on backend `B`, per case, as sent:
/// missing keys (one multi-row `INSERT`), the same keys found, missing keys
/// whose defaults have an `Option` field (SQLite: one `INSERT` per row, in a
/// transaction), a conflict on another unique column in each of those two
/// forms, and missing keys inside the caller's transaction; then of
/// `update_or_create_all_with` (`visits + 1`): every key existing, every key
/// missing, and inside the caller's transaction both.
fn batch_statements<B: TestBackend>() -> Vec<(&'static str, Vec<String>)> {
    let db = B::Db::new("batch_statement_text");
    let mut conn = db.connect();
    let counter = StatementCounter::install(&mut conn);
    let tuples = |keys: &[&'static str], taken: &'static str| {
        keys.iter()
            .map(move |&e| {
                let username = if e.starts_with('x') { taken } else { e };
                (users::email.key(e), names(username, e, "B"))
            })
            .collect::<Vec<_>>()
    };
    let structs = |keys: &[&'static str], taken: &'static str| {
        keys.iter()
            .map(move |&e| {
                let username = if e.starts_with('x') { taken } else { e };
                let defaults = UserDefaults {
                    username,
                    first_name: e,
                    last_name: "B",
                    visits: None,
                };
                (users::email.key(e), defaults)
            })
            .collect::<Vec<_>>()
    };
    let bump = || users::visits.eq(users::visits + 1);
    let creates = |keys: &[&'static str]| {
        keys.iter()
            .map(|&e| (users::email.key(e), (names(e, e, "B"), users::visits.eq(1))))
            .collect::<Vec<_>>()
    };
    let mut logs = Vec::new();
    let mut log = |case: &'static str| {
        logs.push((case, counter.statements()));
        counter.take();
    };
    counter.take();
    let rows = call_all!(&mut conn, User, tuples(&["a1", "a2", "a3"], "")).unwrap();
    assert!(rows.iter().all(|(_, created)| *created));
    log("miss");
    let rows = call_all!(&mut conn, User, tuples(&["a3", "a1"], "")).unwrap();
    assert!(rows.iter().all(|(_, created)| !*created));
    log("hit");
    let rows = call_all!(&mut conn, User, structs(&["b1", "b2"], "")).unwrap();
    assert!(rows.iter().all(|(_, created)| *created));
    log("miss, defaults with an Option field");
    let err = call_all!(&mut conn, User, tuples(&["c1", "x1"], "a1")).unwrap_err();
    assert_unique_violation(&err);
    log("conflict on another unique column");
    let err = call_all!(&mut conn, User, structs(&["d1", "x2"], "a2")).unwrap_err();
    assert_unique_violation(&err);
    log("conflict on another unique column, defaults with an Option field");
    let rows = call_all!(&mut conn, User, update_with: bump(), creates(&["a3", "a1"])).unwrap();
    assert!(rows.iter().all(|(_, created)| !*created));
    log("update, every key exists");
    let rows = call_all!(&mut conn, User, update_with: bump(), creates(&["f1", "f2"])).unwrap();
    assert!(rows
        .iter()
        .all(|(user, created)| *created && user.visits == 1));
    log("update, every key missing");
    txn::begin(&mut conn);
    counter.take();
    let rows = call_all!(&mut conn, User, tuples(&["e1", "e2"], "")).unwrap();
    assert!(rows.iter().all(|(_, created)| *created));
    log("miss in a transaction");
    let rows =
        call_all!(&mut conn, User, update_with: bump(), creates(&["g1", "e1", "f1"])).unwrap();
    let got: Vec<(bool, i32)> = rows.iter().map(|(u, c)| (*c, u.visits)).collect();
    assert_eq!(got[0], (true, 1));
    assert_eq!(got[2], (false, 2));
    assert!(!got[1].0);
    log("update in a transaction, one key missing");
    txn::rollback(&mut conn);
    logs
}

/// The async `get_or_create_all` sends the statements of the sync one, in
/// the same words (compared without their binds, as above).
fn assert_same_batch_statements<S: TestBackend, A: TestBackend>() {
    let sql = |log: &[String]| -> Vec<String> {
        log.iter()
            .map(|s| s.split(" -- binds:").next().unwrap().to_owned())
            .collect()
    };
    let (sync, asynchronous) = (batch_statements::<S>(), batch_statements::<A>());
    for ((case, sync), (_, asynchronous)) in sync.iter().zip(&asynchronous) {
        assert!(!sync.is_empty(), "{case}");
        assert_eq!(sql(asynchronous), sql(sync), "{case}");
    }
}

mod sqlite {
    use super::*;
    use diesel_get_or_create_tests::asyncs::AsyncSqlite;
    use diesel_get_or_create_tests::sqlite::Sqlite;

    diesel_get_or_create_tests::suite_tests!(AsyncSqlite, behaviour);
    diesel_get_or_create_tests::suite_tests!(AsyncSqlite, batch);
    diesel_get_or_create_tests::suite_tests!(AsyncSqlite, batch_update);
    diesel_get_or_create_tests::suite_tests!(AsyncSqlite, constraints);
    diesel_get_or_create_tests::suite_tests!(AsyncSqlite, constraints: [drift_an_expression_index_does_not_count]);
    diesel_get_or_create_tests::race_tests! {
        AsyncSqlite;
        standalone: Serializable, Standalone;
        in_transaction: Serializable, InTransaction;
    }

    #[test]
    fn statements_per_call_are_the_sync_apis() {
        assert_same_statements(
            statements_per_call::<Sqlite>(),
            statements_per_call::<AsyncSqlite>(),
        );
    }

    #[test]
    fn batch_statements_are_the_sync_apis() {
        assert_same_batch_statements::<Sqlite, AsyncSqlite>();
    }
}

mod postgres {
    use super::*;
    use diesel_get_or_create_tests::asyncs::AsyncPostgres;
    use diesel_get_or_create_tests::pg::Postgres;

    diesel_get_or_create_tests::suite_tests!(AsyncPostgres, behaviour);
    diesel_get_or_create_tests::suite_tests!(AsyncPostgres, batch);
    diesel_get_or_create_tests::suite_tests!(AsyncPostgres, batch_update);
    diesel_get_or_create_tests::suite_tests!(AsyncPostgres, constraints);
    diesel_get_or_create_tests::suite_tests!(AsyncPostgres, constraints: [drift_an_expression_index_does_not_count]);
    diesel_get_or_create_tests::suite_tests!(AsyncPostgres, interleavings);
    diesel_get_or_create_tests::race_tests! {
        AsyncPostgres;
        read_committed_standalone: ReadCommitted, Standalone;
        read_committed_in_transaction: ReadCommitted, InTransaction;
        repeatable_read_standalone: RepeatableRead, Standalone;
        repeatable_read_in_transaction: RepeatableRead, InTransaction;
        serializable_standalone: Serializable, Standalone;
        serializable_in_transaction: Serializable, InTransaction;
    }

    #[test]
    fn statements_per_call_are_the_sync_apis() {
        assert_same_statements(
            statements_per_call::<Postgres>(),
            statements_per_call::<AsyncPostgres>(),
        );
    }

    #[test]
    fn batch_statements_are_the_sync_apis() {
        assert_same_batch_statements::<Postgres, AsyncPostgres>();
    }
}

mod mysql {
    use super::*;
    use diesel_get_or_create_tests::asyncs::AsyncMysql;
    use diesel_get_or_create_tests::my::Mysql;

    diesel_get_or_create_tests::suite_tests!(AsyncMysql, behaviour);
    diesel_get_or_create_tests::suite_tests!(AsyncMysql, batch);
    diesel_get_or_create_tests::suite_tests!(AsyncMysql, batch_update);
    diesel_get_or_create_tests::suite_tests!(AsyncMysql, constraints);
    diesel_get_or_create_tests::suite_tests!(AsyncMysql, interleavings);
    diesel_get_or_create_tests::race_tests! {
        AsyncMysql;
        repeatable_read_standalone: RepeatableRead, Standalone;
        repeatable_read_in_transaction: RepeatableRead, InTransaction;
        read_committed_standalone: ReadCommitted, Standalone;
        read_committed_in_transaction: ReadCommitted, InTransaction;
    }

    #[test]
    fn statements_per_call_are_the_sync_apis() {
        assert_same_statements(
            statements_per_call::<Mysql>(),
            statements_per_call::<AsyncMysql>(),
        );
    }

    #[test]
    fn batch_statements_are_the_sync_apis() {
        assert_same_batch_statements::<Mysql, AsyncMysql>();
    }
}
