//! Every branch of the MySQL/MariaDB algorithms, driven by a script: the
//! steps they ask for, in order, and their result.

use diesel::mysql::Mysql;
use diesel::result::DatabaseErrorKind::{SerializationFailure, UniqueViolation, Unknown};

use crate::algorithm::MAX_ATTEMPTS;
use crate::driver::script::*;

const STANDALONE: bool = false;
const IN_TRANSACTION: bool = true;

/// Sync Diesel reports MySQL's deadlock (1213) as a serialization failure.
fn deadlock() -> diesel::result::Error {
    serialization_failure()
}

#[test]
fn get_or_create_hit_is_one_select() {
    for in_transaction in [STANDALONE, IN_TRANSACTION] {
        let script = vec![(Select, Row("ann"))];
        assert_eq!(
            get_or_create::<Mysql>(in_transaction, script),
            Ok(("ann", false))
        );
    }
}

#[test]
fn get_or_create_miss_inserts_then_reads_the_row() {
    for in_transaction in [STANDALONE, IN_TRANSACTION] {
        let script = vec![(Select, NoRow), (Insert, Count(1)), (Select, Row("ann"))];
        assert_eq!(
            get_or_create::<Mysql>(in_transaction, script),
            Ok(("ann", true))
        );
    }
}

#[test]
fn get_or_create_lost_race_reads_the_winners_row_with_a_shared_lock() {
    for in_transaction in [STANDALONE, IN_TRANSACTION] {
        let script = vec![
            (Select, NoRow),
            (Insert, Fail(unique_violation())),
            (SelectShare, Row("winner")),
        ];
        assert_eq!(
            get_or_create::<Mysql>(in_transaction, script),
            Ok(("winner", false))
        );
    }
}

#[test]
fn get_or_create_duplicate_on_another_index_twice_is_returned() {
    let script = vec![
        (Select, NoRow),
        (Insert, Fail(unique_violation())),
        (SelectShare, NoRow),
        (Insert, Fail(unique_violation())),
        (SelectShare, NoRow),
    ];
    assert_eq!(
        get_or_create::<Mysql>(STANDALONE, script),
        Err((UniqueViolation, false))
    );
}

#[test]
fn get_or_create_duplicate_on_another_index_once_is_a_racing_insert() {
    let script = vec![
        (Select, NoRow),
        (Insert, Fail(unique_violation())),
        (SelectShare, NoRow),
        (Insert, Fail(unique_violation())),
        (SelectShare, Row("winner")),
    ];
    assert_eq!(
        get_or_create::<Mysql>(STANDALONE, script),
        Ok(("winner", false))
    );
}

#[test]
fn get_or_create_inserts_again_after_its_row_vanished_and_gives_up_as_serialization_failure() {
    let script = vec![
        (Select, NoRow),
        (Insert, Count(1)),
        (Select, NoRow),
        (Insert, Count(1)),
        (Select, Row("ann")),
    ];
    assert_eq!(
        get_or_create::<Mysql>(STANDALONE, script),
        Ok(("ann", true))
    );

    let mut script = vec![(Select, NoRow)];
    for _ in 0..MAX_ATTEMPTS {
        script.extend([(Insert, Count(1)), (Select, NoRow)]);
    }
    assert_eq!(
        get_or_create::<Mysql>(STANDALONE, script),
        Err((SerializationFailure, true))
    );
}

#[test]
fn get_or_create_deadlock_standalone_runs_again() {
    let script = vec![
        (Select, NoRow),
        (Insert, Fail(deadlock())),
        (Pause, Done),
        (Select, Row("winner")),
    ];
    assert_eq!(
        get_or_create::<Mysql>(STANDALONE, script),
        Ok(("winner", false))
    );
}

#[test]
fn get_or_create_deadlock_in_a_transaction_is_returned() {
    let script = vec![(Select, NoRow), (Insert, Fail(deadlock()))];
    assert_eq!(
        get_or_create::<Mysql>(IN_TRANSACTION, script),
        Err((SerializationFailure, false))
    );
}

// --- update_or_create: the upsert -----------------------------------------------------

#[test]
fn update_or_create_standalone_is_the_upsert_and_its_read_in_a_transaction() {
    for created in [false, true] {
        let script = vec![
            (Begin, Done),
            (
                InsertOnDuplicateKeyUpdate,
                Count(if created { 1 } else { 2 }),
            ),
            (SelectUpserted, Upserted("ann", created)),
            (Commit, Done),
        ];
        assert_eq!(
            update_or_create::<Mysql>(STANDALONE, script),
            Ok(("ann", created))
        );
    }
}

#[test]
fn update_or_create_in_a_transaction_is_the_upsert_and_its_read() {
    for created in [false, true] {
        // An update that changes nothing counts 1 row, as an insert does
        // (Diesel's CLIENT_FOUND_ROWS): the flag comes from the read.
        let script = vec![
            (InsertOnDuplicateKeyUpdate, Count(1)),
            (SelectUpserted, Upserted("ann", created)),
        ];
        assert_eq!(
            update_or_create::<Mysql>(IN_TRANSACTION, script),
            Ok(("ann", created))
        );
    }
}

#[test]
fn update_or_create_upsert_deadlock_standalone_rolls_back_and_runs_again() {
    let script = vec![
        (Begin, Done),
        (InsertOnDuplicateKeyUpdate, Fail(deadlock())),
        (Rollback, Done),
        (Pause, Done),
        (Begin, Done),
        (InsertOnDuplicateKeyUpdate, Count(2)),
        (SelectUpserted, Upserted("ann", false)),
        (Commit, Done),
    ];
    assert_eq!(
        update_or_create::<Mysql>(STANDALONE, script),
        Ok(("ann", false))
    );
}

#[test]
fn update_or_create_upsert_deadlock_in_a_transaction_is_returned() {
    for error in [deadlock(), unknown_deadlock()] {
        let script = vec![(InsertOnDuplicateKeyUpdate, Fail(error))];
        assert_eq!(
            update_or_create::<Mysql>(IN_TRANSACTION, script),
            Err((SerializationFailure, false))
        );
    }
}

#[test]
fn update_or_create_upsert_deadlock_at_commit_runs_again() {
    let script = vec![
        (Begin, Done),
        (InsertOnDuplicateKeyUpdate, Count(1)),
        (SelectUpserted, Upserted("ann", true)),
        (Commit, Fail(unknown_deadlock())),
        (Pause, Done),
        (Begin, Done),
        (InsertOnDuplicateKeyUpdate, Count(2)),
        (SelectUpserted, Upserted("ann", false)),
        (Commit, Done),
    ];
    assert_eq!(
        update_or_create::<Mysql>(STANDALONE, script),
        Ok(("ann", false))
    );
}

#[test]
fn update_or_create_upsert_silently_rolled_back_runs_again_or_is_returned() {
    let script = vec![
        (Begin, Done),
        (InsertOnDuplicateKeyUpdate, Count(1)),
        (SelectUpserted, Fail(silently_rolled_back())),
        (Rollback, Done),
        (Pause, Done),
        (Begin, Done),
        (InsertOnDuplicateKeyUpdate, Count(1)),
        (SelectUpserted, Upserted("ann", true)),
        (Commit, Done),
    ];
    assert_eq!(
        update_or_create::<Mysql>(STANDALONE, script),
        Ok(("ann", true))
    );
    let script = vec![
        (InsertOnDuplicateKeyUpdate, Count(2)),
        (SelectUpserted, Fail(silently_rolled_back())),
    ];
    assert_eq!(
        update_or_create::<Mysql>(IN_TRANSACTION, script),
        Err((SerializationFailure, false))
    );
}

/// The upsert met a row with another key (a duplicate in another unique
/// index), or ran outside any transaction: its key check failed it (1242).
fn key_check_failed() -> diesel::result::Error {
    db_error(Unknown, "Subquery returns more than 1 row")
}

#[test]
fn update_or_create_upsert_key_check_failure_falls_back_to_the_portable_steps() {
    // A duplicate in another unique index, no row for the key: the portable
    // steps insert, and return the duplicate.
    let script = vec![
        (InsertOnDuplicateKeyUpdate, Fail(key_check_failed())),
        (SelectInTransaction, NoRow),
        (Insert, Fail(unique_violation())),
        (Update, Count(0)),
        (Insert, Fail(unique_violation())),
    ];
    assert_eq!(
        update_or_create::<Mysql>(IN_TRANSACTION, script),
        Err((UniqueViolation, false))
    );
    // The caller's transaction is gone: the portable steps' guarded read
    // says so.
    let script = vec![
        (InsertOnDuplicateKeyUpdate, Fail(key_check_failed())),
        (SelectInTransaction, Fail(silently_rolled_back())),
    ];
    assert_eq!(
        update_or_create::<Mysql>(IN_TRANSACTION, script),
        Err((SerializationFailure, false))
    );
}

#[test]
fn update_or_create_create_values_that_fail_the_upsert_update_the_existing_row() {
    for error in [
        db_error(Unknown, "Data too long for column 'nick' at row 1"),
        db_error(Unknown, "Out of range value for column 'visits' at row 1"),
        db_error(
            Unknown,
            "Incorrect integer value: 'x' for column `test`.`t`.`visits` at row 1",
        ),
        db_error(Unknown, "Division by 0"),
        db_error(Unknown, "Column 'email' specified twice"),
        db_error(
            diesel::result::DatabaseErrorKind::ForeignKeyViolation,
            "Cannot add or update a child row: a foreign key constraint fails",
        ),
        db_error(
            diesel::result::DatabaseErrorKind::NotNullViolation,
            "Column 'nick' cannot be null",
        ),
        db_error(
            diesel::result::DatabaseErrorKind::CheckViolation,
            "CONSTRAINT `visits_positive` failed",
        ),
    ] {
        let script = vec![
            (Begin, Done),
            (InsertOnDuplicateKeyUpdate, Fail(error)),
            (Rollback, Done),
            (Begin, Done),
            (Update, Count(1)),
            (SelectForUpdate, Row("ann")),
            (Commit, Done),
        ];
        assert_eq!(
            update_or_create::<Mysql>(STANDALONE, script),
            Ok(("ann", false))
        );
    }
}

#[test]
fn update_or_create_upsert_lock_wait_timeout_is_returned() {
    let timeout = db_error(
        Unknown,
        "Lock wait timeout exceeded; try restarting transaction",
    );
    let script = vec![(InsertOnDuplicateKeyUpdate, Fail(timeout))];
    assert_eq!(
        update_or_create::<Mysql>(IN_TRANSACTION, script),
        Err((Unknown, false))
    );
}

#[test]
fn update_or_create_upsert_connection_errors_do_not_fall_back() {
    for message in [
        "Server has gone away",
        "Lost connection to server during query",
        "WSREP has not yet prepared node for application use",
    ] {
        let script = vec![
            (Begin, Done),
            (InsertOnDuplicateKeyUpdate, Fail(db_error(Unknown, message))),
            (Rollback, Done),
        ];
        assert_eq!(
            update_or_create::<Mysql>(STANDALONE, script),
            Err((Unknown, false)),
            "{message}"
        );
    }
}

#[test]
fn update_or_create_upsert_row_gone_falls_back() {
    let script = vec![
        (InsertOnDuplicateKeyUpdate, Count(1)),
        (SelectUpserted, NoRow),
        (SelectInTransaction, Row("ann")),
        (Update, Count(1)),
        (SelectForUpdate, Row("ann")),
    ];
    assert_eq!(
        update_or_create::<Mysql>(IN_TRANSACTION, script),
        Ok(("ann", false))
    );
}

// --- update_or_create: the portable steps the upsert falls back to ----------------------

/// `script`, played through `update_or_create` after the upsert of every run
/// fell back (its key check failed).
fn portable(in_transaction: bool, script: Vec<(Step, Reply)>) -> Outcome {
    let fall_back = || {
        if in_transaction {
            vec![(InsertOnDuplicateKeyUpdate, Fail(key_check_failed()))]
        } else {
            vec![
                (Begin, Done),
                (InsertOnDuplicateKeyUpdate, Fail(key_check_failed())),
                (Rollback, Done),
            ]
        }
    };
    let mut full = fall_back();
    for (step, reply) in script {
        let pause = step == Pause;
        full.push((step, reply));
        if pause {
            full.extend(fall_back());
        }
    }
    update_or_create::<Mysql>(in_transaction, full)
}

#[test]
fn update_or_create_standalone_existing_row_is_one_update_step() {
    let script = vec![
        (Begin, Done),
        (Update, Count(1)),
        (SelectForUpdate, Row("ann")),
        (Commit, Done),
    ];
    assert_eq!(portable(STANDALONE, script), Ok(("ann", false)));
}

#[test]
fn update_or_create_standalone_missing_row_commits_the_update_step_then_inserts() {
    let script = vec![
        (Begin, Done),
        (Update, Count(0)),
        (Commit, Done),
        (Begin, Done),
        (Insert, Count(1)),
        (SelectForUpdate, Row("ann")),
        (Commit, Done),
    ];
    assert_eq!(portable(STANDALONE, script), Ok(("ann", true)));
}

#[test]
fn update_or_create_standalone_lost_race_updates_the_winners_row() {
    let script = vec![
        (Begin, Done),
        (Update, Count(0)),
        (Commit, Done),
        (Begin, Done),
        (Insert, Fail(unique_violation())),
        (Commit, Done),
        (Begin, Done),
        (Update, Count(1)),
        (SelectForUpdate, Row("winner")),
        (Commit, Done),
    ];
    assert_eq!(portable(STANDALONE, script), Ok(("winner", false)));
}

#[test]
fn update_or_create_in_a_transaction_reads_before_it_updates() {
    let script = vec![
        (SelectInTransaction, Row("ann")),
        (Update, Count(1)),
        (SelectForUpdate, Row("ann")),
    ];
    assert_eq!(portable(IN_TRANSACTION, script), Ok(("ann", false)));
    let script = vec![
        (SelectInTransaction, NoRow),
        (Insert, Count(1)),
        (SelectForUpdate, Row("ann")),
    ];
    assert_eq!(portable(IN_TRANSACTION, script), Ok(("ann", true)));
}

#[test]
fn update_or_create_in_a_transaction_duplicate_on_another_index_twice_is_returned() {
    let script = vec![
        (SelectInTransaction, NoRow),
        (Insert, Fail(unique_violation())),
        (Update, Count(0)),
        (Insert, Fail(unique_violation())),
    ];
    assert_eq!(
        portable(IN_TRANSACTION, script),
        Err((UniqueViolation, false))
    );
}

#[test]
fn update_or_create_row_deleted_between_update_and_insert_steps_gives_up_as_serialization_failure()
{
    // Standalone: every update step matches nothing and every insert step
    // writes a row that is gone before its locking read (its own step's
    // transaction holds it, so only a faulty server could do this), 16 times.
    let mut script = vec![];
    for _ in 0..MAX_ATTEMPTS {
        script.extend([
            (Begin, Done),
            (Update, Count(0)),
            (Commit, Done),
            (Begin, Done),
            (Insert, Count(1)),
            (SelectForUpdate, NoRow),
            (Commit, Done),
        ]);
    }
    assert_eq!(
        portable(STANDALONE, script),
        Err((SerializationFailure, true))
    );
}

#[test]
fn update_or_create_deadlock_standalone_rolls_back_and_runs_again() {
    let script = vec![
        (Begin, Done),
        (Update, Fail(deadlock())),
        (Rollback, Done),
        (Pause, Done),
        (Begin, Done),
        (Update, Count(1)),
        (SelectForUpdate, Row("ann")),
        (Commit, Done),
    ];
    assert_eq!(portable(STANDALONE, script), Ok(("ann", false)));
}

#[test]
fn update_or_create_deadlock_in_a_transaction_is_returned() {
    let script = vec![
        (SelectInTransaction, Row("ann")),
        (Update, Fail(deadlock())),
    ];
    assert_eq!(
        portable(IN_TRANSACTION, script),
        Err((SerializationFailure, false))
    );
}

#[test]
fn update_or_create_with_an_empty_changeset_is_get_or_create() {
    assert_eq!(
        update_nothing::<Mysql>(),
        (Ok(("ann", false)), vec![Select])
    );
}

#[test]
fn only_deadlocks_are_retryable() {
    use super::is_retryable;
    assert!(is_retryable(&deadlock()));
    assert!(!is_retryable(&unique_violation()));
    assert!(!is_retryable(&db_error(
        Unknown,
        "Lock wait timeout exceeded"
    )));
    // Unnormalized, as the retrying transaction reads the caller's errors.
    assert!(is_retryable(&unknown_deadlock()));
    assert!(is_retryable(&db_error(
        Unknown,
        "Deadlock: wsrep aborted transaction"
    )));
    // A Galera node out of the primary component (1047): running again on
    // the same node does not help, and nothing says the work was undone.
    assert!(!is_retryable(&db_error(
        Unknown,
        "WSREP has not yet prepared node for application use"
    )));
    assert!(!is_retryable(&db_error(Unknown, "Server has gone away")));
}

/// diesel-async, and sync Diesel's text protocol (`COMMIT`), report MySQL's
/// deadlock as `Unknown` with the server's message.
fn unknown_deadlock() -> diesel::result::Error {
    db_error(
        Unknown,
        "Deadlock found when trying to get lock; try restarting transaction",
    )
}

#[test]
fn a_deadlock_reported_as_unknown_is_retried_standalone() {
    let script = vec![
        (Begin, Done),
        (Update, Count(1)),
        (SelectForUpdate, Row("ann")),
        (Commit, Fail(unknown_deadlock())),
        (Pause, Done),
        (Begin, Done),
        (Update, Count(1)),
        (SelectForUpdate, Row("ann")),
        (Commit, Done),
    ];
    assert_eq!(portable(STANDALONE, script), Ok(("ann", false)));
}

#[test]
fn a_deadlock_reported_as_unknown_is_a_serialization_failure_in_a_transaction() {
    let script = vec![(Select, NoRow), (Insert, Fail(unknown_deadlock()))];
    assert_eq!(
        get_or_create::<Mysql>(IN_TRANSACTION, script),
        Err((SerializationFailure, false))
    );
    let galera = db_error(Unknown, "Deadlock: wsrep aborted transaction");
    let script = vec![(Select, Fail(galera))];
    assert_eq!(
        get_or_create::<Mysql>(IN_TRANSACTION, script),
        Err((SerializationFailure, false))
    );
    // Other errors keep their kind.
    let timeout = db_error(
        Unknown,
        "Lock wait timeout exceeded; try restarting transaction",
    );
    let script = vec![(Select, Fail(timeout))];
    assert_eq!(
        get_or_create::<Mysql>(IN_TRANSACTION, script),
        Err((Unknown, false))
    );
}

/// A transaction the server rolled back without reporting it (Galera): the
/// `FOR UPDATE` read's guard fails, and the call does not return the row
/// that read found outside any transaction.
fn silently_rolled_back() -> diesel::result::Error {
    super::guarded(db_error(Unknown, "Subquery returns more than 1 row"))
}

#[test]
fn the_guard_reads_as_a_rolled_back_transaction_and_only_it() {
    use diesel::result::Error;
    assert!(matches!(
        silently_rolled_back(),
        Error::DatabaseError(SerializationFailure, info) if info.message().contains("rolled this transaction back")
    ));
    assert!(matches!(
        super::guarded(unique_violation()),
        Error::DatabaseError(UniqueViolation, _)
    ));
    assert!(matches!(
        super::guarded(db_error(Unknown, "Lock wait timeout exceeded")),
        Error::DatabaseError(Unknown, _)
    ));
}

#[test]
fn a_silently_rolled_back_update_step_runs_again_standalone() {
    let script = vec![
        (Begin, Done),
        (Update, Count(1)),
        (SelectForUpdate, Fail(silently_rolled_back())),
        (Rollback, Done),
        (Pause, Done),
        (Begin, Done),
        (Update, Count(1)),
        (SelectForUpdate, Row("ann")),
        (Commit, Done),
    ];
    assert_eq!(portable(STANDALONE, script), Ok(("ann", false)));
}

#[test]
fn a_silently_rolled_back_insert_step_runs_again_standalone() {
    let script = vec![
        (Begin, Done),
        (Update, Count(0)),
        (Commit, Done),
        (Begin, Done),
        (Insert, Count(1)),
        (SelectForUpdate, Fail(silently_rolled_back())),
        (Rollback, Done),
        (Pause, Done),
        (Begin, Done),
        (Update, Count(1)),
        (SelectForUpdate, Row("ann")),
        (Commit, Done),
    ];
    assert_eq!(portable(STANDALONE, script), Ok(("ann", false)));
}

#[test]
fn a_silently_rolled_back_caller_transaction_is_a_serialization_failure() {
    let script = vec![
        (SelectInTransaction, Row("ann")),
        (Update, Count(1)),
        (SelectForUpdate, Fail(silently_rolled_back())),
    ];
    assert_eq!(
        portable(IN_TRANSACTION, script),
        Err((SerializationFailure, false))
    );
}

#[test]
fn a_caller_transaction_rolled_back_before_the_call_fails_its_first_read() {
    // The caller's transaction was gone before the call: the guarded read
    // fails, so nothing runs in autocommit.
    let script = vec![(SelectInTransaction, Fail(silently_rolled_back()))];
    assert_eq!(
        portable(IN_TRANSACTION, script),
        Err((SerializationFailure, false))
    );
    // .. or between that read and the update: the guarded update fails.
    let script = vec![
        (SelectInTransaction, Row("ann")),
        (Update, Fail(silently_rolled_back())),
    ];
    assert_eq!(
        portable(IN_TRANSACTION, script),
        Err((SerializationFailure, false))
    );
}
