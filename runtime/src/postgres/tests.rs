//! Every branch of the PostgreSQL algorithms, driven by a script: the steps
//! they ask for, in order, and their result.

use diesel::pg::Pg;
use diesel::result::DatabaseErrorKind::{
    CheckViolation, NotNullViolation, SerializationFailure, UniqueViolation, Unknown,
};

use crate::algorithm::{MAX_ATTEMPTS, MAX_RUNS};
use crate::driver::script::*;

const STANDALONE: bool = false;
const IN_TRANSACTION: bool = true;

fn deadlock() -> diesel::result::Error {
    db_error(Unknown, "deadlock detected")
}

#[test]
fn get_or_create_hit_is_one_select() {
    assert_eq!(
        get_or_create::<Pg>(STANDALONE, vec![(Select, Row("ann"))]),
        Ok(("ann", false))
    );
}

#[test]
fn get_or_create_miss_inserts_without_a_savepoint_when_standalone() {
    let script = vec![(Select, NoRow), (InsertReturning, Row("ann"))];
    assert_eq!(get_or_create::<Pg>(STANDALONE, script), Ok(("ann", true)));
}

#[test]
fn get_or_create_miss_inserts_in_a_savepoint_inside_a_transaction() {
    let script = vec![
        (Select, NoRow),
        (Begin, Done),
        (InsertReturning, Row("ann")),
        (Commit, Done),
    ];
    assert_eq!(
        get_or_create::<Pg>(IN_TRANSACTION, script),
        Ok(("ann", true))
    );
}

#[test]
fn get_or_create_lost_race_reads_the_winners_row() {
    let script = vec![
        (Select, NoRow),
        (InsertReturning, NoRow),
        (Select, Row("winner")),
    ];
    assert_eq!(
        get_or_create::<Pg>(STANDALONE, script),
        Ok(("winner", false))
    );
}

#[test]
fn get_or_create_inserts_again_after_the_row_vanished_and_gives_up_as_serialization_failure() {
    let mut script = vec![(Select, NoRow), (InsertReturning, NoRow), (Select, NoRow)];
    script.extend([(InsertReturning, Row("ann"))]);
    assert_eq!(get_or_create::<Pg>(STANDALONE, script), Ok(("ann", true)));

    let mut script = vec![(Select, NoRow)];
    for _ in 0..MAX_ATTEMPTS {
        script.extend([(InsertReturning, NoRow), (Select, NoRow)]);
    }
    assert_eq!(
        get_or_create::<Pg>(STANDALONE, script),
        Err((SerializationFailure, true)),
        "not NotFound: nothing was 'not found'"
    );
}

#[test]
fn get_or_create_duplicate_on_another_index_once_is_a_racing_insert() {
    let script = vec![
        (Select, NoRow),
        (InsertReturning, Fail(unique_violation())),
        (InsertReturning, NoRow),
        (Select, Row("winner")),
    ];
    assert_eq!(
        get_or_create::<Pg>(STANDALONE, script),
        Ok(("winner", false))
    );
}

#[test]
fn get_or_create_duplicate_on_another_index_twice_is_returned() {
    let script = vec![
        (Select, NoRow),
        (Begin, Done),
        (InsertReturning, Fail(unique_violation())),
        (Rollback, Done),
        (Begin, Done),
        (InsertReturning, Fail(unique_violation())),
        (Rollback, Done),
    ];
    assert_eq!(
        get_or_create::<Pg>(IN_TRANSACTION, script),
        Err((UniqueViolation, false))
    );
}

#[test]
fn get_or_create_serialization_failure_standalone_runs_again() {
    let script = vec![
        (Select, NoRow),
        (InsertReturning, Fail(serialization_failure())),
        (Pause, Done),
        (Select, Row("winner")),
    ];
    assert_eq!(
        get_or_create::<Pg>(STANDALONE, script),
        Ok(("winner", false))
    );
}

#[test]
fn get_or_create_serialization_failure_in_a_transaction_is_returned_after_the_rollback() {
    let script = vec![
        (Select, NoRow),
        (Begin, Done),
        (InsertReturning, Fail(serialization_failure())),
        (Rollback, Done),
    ];
    assert_eq!(
        get_or_create::<Pg>(IN_TRANSACTION, script),
        Err((SerializationFailure, false))
    );
}

#[test]
fn get_or_create_deadlock_standalone_runs_again() {
    let script = vec![
        (Select, Fail(deadlock())),
        (Pause, Done),
        (Select, Row("ann")),
    ];
    assert_eq!(get_or_create::<Pg>(STANDALONE, script), Ok(("ann", false)));
}

#[test]
fn get_or_create_returns_the_last_error_when_runs_run_out() {
    let mut script = vec![];
    for run in 1..=MAX_RUNS {
        script.push((Select, Fail(serialization_failure())));
        if run < MAX_RUNS {
            script.push((Pause, Done));
        }
    }
    assert_eq!(
        get_or_create::<Pg>(STANDALONE, script),
        Err((SerializationFailure, false))
    );
}

#[test]
fn get_or_create_other_errors_are_returned_at_once() {
    let script = vec![
        (Select, NoRow),
        (
            InsertReturning,
            Fail(db_error(NotNullViolation, "null value")),
        ),
    ];
    assert_eq!(
        get_or_create::<Pg>(STANDALONE, script),
        Err((NotNullViolation, false))
    );
    let script = vec![(Select, Fail(db_error(Unknown, "lock timeout")))];
    assert_eq!(
        get_or_create::<Pg>(STANDALONE, script),
        Err((Unknown, false))
    );
}

#[test]
fn update_or_create_is_one_upsert_standalone() {
    let script = vec![(Upsert, Upserted("ann", false))];
    assert_eq!(
        update_or_create::<Pg>(STANDALONE, script),
        Ok(("ann", false))
    );
    let script = vec![(Upsert, Upserted("ann", true))];
    assert_eq!(
        update_or_create::<Pg>(STANDALONE, script),
        Ok(("ann", true))
    );
}

#[test]
fn update_or_create_upserts_in_a_savepoint_inside_a_transaction() {
    let script = vec![
        (Begin, Done),
        (Upsert, Upserted("ann", true)),
        (Commit, Done),
    ];
    assert_eq!(
        update_or_create::<Pg>(IN_TRANSACTION, script),
        Ok(("ann", true))
    );
}

#[test]
fn update_or_create_with_an_empty_changeset_is_get_or_create() {
    assert_eq!(update_nothing::<Pg>(), (Ok(("ann", false)), vec![Select]));
}

#[test]
fn update_or_create_duplicate_on_another_index_once_upserts_again() {
    let script = vec![
        (Upsert, Fail(unique_violation())),
        (Upsert, Upserted("winner", false)),
    ];
    assert_eq!(
        update_or_create::<Pg>(STANDALONE, script),
        Ok(("winner", false))
    );
}

#[test]
fn update_or_create_duplicate_on_another_index_twice_is_returned() {
    let script = vec![
        (Upsert, Fail(unique_violation())),
        (Upsert, Fail(unique_violation())),
    ];
    assert_eq!(
        update_or_create::<Pg>(STANDALONE, script),
        Err((UniqueViolation, false))
    );
}

#[test]
fn update_or_create_not_null_violation_falls_back_to_the_update() {
    let script = vec![
        (Upsert, Fail(db_error(NotNullViolation, "null value"))),
        (UpdateReturning, Row("ann")),
    ];
    assert_eq!(
        update_or_create::<Pg>(STANDALONE, script),
        Ok(("ann", false))
    );
}

#[test]
fn update_or_create_fallback_without_a_row_returns_the_inserts_error() {
    let script = vec![
        (Upsert, Fail(db_error(NotNullViolation, "null value"))),
        (UpdateReturning, NoRow),
    ];
    assert_eq!(
        update_or_create::<Pg>(STANDALONE, script),
        Err((NotNullViolation, false))
    );
}

#[test]
fn update_or_create_check_violation_in_a_transaction_falls_back_in_a_second_savepoint() {
    let script = vec![
        (Begin, Done),
        (Upsert, Fail(db_error(CheckViolation, "violates check"))),
        (Rollback, Done),
        (Begin, Done),
        (UpdateReturning, Row("ann")),
        (Commit, Done),
    ];
    assert_eq!(
        update_or_create::<Pg>(IN_TRANSACTION, script),
        Ok(("ann", false))
    );
}

#[test]
fn update_or_create_serialization_failure_standalone_runs_again() {
    let script = vec![
        (Upsert, Fail(serialization_failure())),
        (Pause, Done),
        (Upsert, Fail(deadlock())),
        (Pause, Done),
        (Upsert, Upserted("ann", false)),
    ];
    assert_eq!(
        update_or_create::<Pg>(STANDALONE, script),
        Ok(("ann", false))
    );
}

#[test]
fn update_or_create_serialization_failure_in_a_transaction_is_returned() {
    let script = vec![
        (Begin, Done),
        (Upsert, Fail(serialization_failure())),
        (Rollback, Done),
    ];
    assert_eq!(
        update_or_create::<Pg>(IN_TRANSACTION, script),
        Err((SerializationFailure, false))
    );
}

#[test]
fn only_aborted_work_is_retryable() {
    use super::is_retryable;
    assert!(is_retryable(&serialization_failure()));
    assert!(is_retryable(&deadlock()));
    assert!(!is_retryable(&db_error(
        UniqueViolation,
        "deadlock detected"
    )));
    assert!(!is_retryable(&db_error(
        Unknown,
        "canceling statement due to lock timeout"
    )));
    assert!(!is_retryable(&diesel::result::Error::NotFound));
}

#[test]
fn update_or_create_falls_back_to_the_update_when_create_values_fail_for_any_reason() {
    for message in [
        "value too long for type character varying(5)",
        "invalid input syntax for type integer: \"x\"",
        "division by zero",
    ] {
        let script = vec![
            (Upsert, Fail(db_error(Unknown, message))),
            (UpdateReturning, Row("ann")),
        ];
        assert_eq!(
            update_or_create::<Pg>(STANDALONE, script),
            Ok(("ann", false)),
            "{message}"
        );
        let script = vec![
            (Upsert, Fail(db_error(Unknown, message))),
            (UpdateReturning, NoRow),
        ];
        assert_eq!(
            update_or_create::<Pg>(STANDALONE, script),
            Err((Unknown, false)),
            "{message}"
        );
    }
}

#[test]
fn update_or_create_does_not_fall_back_on_a_deadlock_or_a_foreign_key() {
    // A deadlock runs the call again instead.
    let script = vec![
        (Upsert, Fail(deadlock())),
        (Pause, Done),
        (Upsert, Upserted("ann", false)),
    ];
    assert_eq!(
        update_or_create::<Pg>(STANDALONE, script),
        Ok(("ann", false))
    );
    let fk = db_error(
        diesel::result::DatabaseErrorKind::ForeignKeyViolation,
        "violates foreign key constraint",
    );
    let script = vec![(Upsert, Fail(fk))];
    assert_eq!(
        update_or_create::<Pg>(STANDALONE, script),
        Err((
            diesel::result::DatabaseErrorKind::ForeignKeyViolation,
            false
        ))
    );
}
