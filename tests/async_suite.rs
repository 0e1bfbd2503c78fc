//! The shared suites (behaviour, constraint check, interleavings, races at
//! every isolation level, standalone and inside the callers' transactions) on
//! diesel-async's connections, through the crate's async API: the same
//! generic code as the sync suites, instantiated on the async backends of
//! `diesel_get_or_create_tests::asyncs`. Each call sends exactly the
//! statements the sync API sends (asserted, text included).

use diesel_get_or_create_tests::suite::behaviour::{statements_per_call, StatementLogs};

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

mod sqlite {
    use super::*;
    use diesel_get_or_create_tests::asyncs::AsyncSqlite;
    use diesel_get_or_create_tests::sqlite::Sqlite;

    diesel_get_or_create_tests::suite_tests!(AsyncSqlite, behaviour);
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
}

mod postgres {
    use super::*;
    use diesel_get_or_create_tests::asyncs::AsyncPostgres;
    use diesel_get_or_create_tests::pg::Postgres;

    diesel_get_or_create_tests::suite_tests!(AsyncPostgres, behaviour);
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
}

mod mysql {
    use super::*;
    use diesel_get_or_create_tests::asyncs::AsyncMysql;
    use diesel_get_or_create_tests::my::Mysql;

    diesel_get_or_create_tests::suite_tests!(AsyncMysql, behaviour);
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
}
