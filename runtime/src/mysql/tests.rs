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

#[test]
fn update_or_create_standalone_existing_row_is_one_update_step() {
    let script = vec![
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
    assert_eq!(
        update_or_create::<Mysql>(STANDALONE, script),
        Ok(("ann", true))
    );
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
    assert_eq!(
        update_or_create::<Mysql>(STANDALONE, script),
        Ok(("winner", false))
    );
}

#[test]
fn update_or_create_in_a_transaction_reads_before_it_updates() {
    let script = vec![
        (SelectInTransaction, Row("ann")),
        (Update, Count(1)),
        (SelectForUpdate, Row("ann")),
    ];
    assert_eq!(
        update_or_create::<Mysql>(IN_TRANSACTION, script),
        Ok(("ann", false))
    );
    let script = vec![
        (SelectInTransaction, NoRow),
        (Insert, Count(1)),
        (SelectForUpdate, Row("ann")),
    ];
    assert_eq!(
        update_or_create::<Mysql>(IN_TRANSACTION, script),
        Ok(("ann", true))
    );
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
        update_or_create::<Mysql>(IN_TRANSACTION, script),
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
        update_or_create::<Mysql>(STANDALONE, script),
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
    assert_eq!(
        update_or_create::<Mysql>(STANDALONE, script),
        Ok(("ann", false))
    );
}

#[test]
fn update_or_create_deadlock_in_a_transaction_is_returned() {
    let script = vec![
        (SelectInTransaction, Row("ann")),
        (Update, Fail(deadlock())),
    ];
    assert_eq!(
        update_or_create::<Mysql>(IN_TRANSACTION, script),
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
    assert_eq!(
        update_or_create::<Mysql>(STANDALONE, script),
        Ok(("ann", false))
    );
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
    assert_eq!(
        update_or_create::<Mysql>(STANDALONE, script),
        Ok(("ann", false))
    );
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
    assert_eq!(
        update_or_create::<Mysql>(STANDALONE, script),
        Ok(("ann", false))
    );
}

#[test]
fn a_silently_rolled_back_caller_transaction_is_a_serialization_failure() {
    let script = vec![
        (SelectInTransaction, Row("ann")),
        (Update, Count(1)),
        (SelectForUpdate, Fail(silently_rolled_back())),
    ];
    assert_eq!(
        update_or_create::<Mysql>(IN_TRANSACTION, script),
        Err((SerializationFailure, false))
    );
}

#[test]
fn a_caller_transaction_rolled_back_before_the_call_fails_its_first_read() {
    // The caller's transaction was gone before the call: the guarded read
    // fails, so nothing runs in autocommit.
    let script = vec![(SelectInTransaction, Fail(silently_rolled_back()))];
    assert_eq!(
        update_or_create::<Mysql>(IN_TRANSACTION, script),
        Err((SerializationFailure, false))
    );
    // .. or between that read and the update: the guarded update fails.
    let script = vec![
        (SelectInTransaction, Row("ann")),
        (Update, Fail(silently_rolled_back())),
    ];
    assert_eq!(
        update_or_create::<Mysql>(IN_TRANSACTION, script),
        Err((SerializationFailure, false))
    );
}
