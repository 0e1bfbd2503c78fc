//! Every branch of the batch algorithm, without a server: a scripted driver
//! answers each statement, and the statements run are asserted in order.

use std::collections::VecDeque;
use std::time::Duration;

use diesel::result::{DatabaseErrorKind, Error};
use diesel::QueryResult;

use super::{BatchAlgorithms, BatchIo, BatchUpdateAlgorithms, Found, UpdateBatchIo};
use crate::algorithm::{backoff_cap_us, StaticInfo, MAX_ATTEMPTS};

/// A statement the batch algorithm asks for, with its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// `SELECT .. UNION ALL ..` of these keys (plain)
    Read(Vec<usize>),
    /// The same with `LOCK IN SHARE MODE` (MySQL)
    ReadShared(Vec<usize>),
    /// Plain multi-row `INSERT` (MySQL, SQLite)
    Insert(Vec<usize>),
    /// `INSERT .. ON CONFLICT DO NOTHING RETURNING` (PostgreSQL)
    InsertReturning(Vec<usize>),
    /// `UPDATE .. WHERE <keys>` (MySQL)
    Update(Vec<usize>),
    /// `UPDATE .. WHERE <keys> RETURNING` (PostgreSQL, SQLite)
    UpdateReturning(Vec<usize>),
    /// `INSERT .. ON CONFLICT DO UPDATE .. RETURNING` (PostgreSQL)
    Upsert(Vec<usize>),
    /// `SELECT .. FOR UPDATE` (MySQL), `UPDATE SET <key> = <key> ..
    /// RETURNING` (SQLite)
    LockRows(Vec<usize>),
    /// The upsert of existing rows (MySQL, SQLite)
    UpsertRows(Vec<usize>),
    Begin,
    Commit,
    Rollback,
    Pause,
}
use Step::*;

/// What a scripted statement returns.
#[derive(Debug)]
enum Reply {
    Rows(Vec<(usize, &'static str)>),
    /// Rows of an upsert, and whether it inserted each.
    Upserted(Vec<(usize, &'static str, bool)>),
    Count(usize),
    Done,
    Fail(Error),
}
use Reply::*;

struct Script {
    keys: usize,
    in_transaction: bool,
    /// Whether the changeset of `update_or_create_all_with` is empty.
    noop: bool,
    script: VecDeque<(Step, Reply)>,
    log: Vec<Step>,
    runs: u32,
}

impl Script {
    fn new(keys: usize, in_transaction: bool, script: Vec<(Step, Reply)>) -> Self {
        Script {
            keys,
            in_transaction,
            noop: false,
            script: script.into(),
            log: Vec::new(),
            runs: 1,
        }
    }

    fn next(&mut self, step: Step) -> Reply {
        self.log.push(step.clone());
        match self.script.pop_front() {
            Some((expected, reply)) if expected == step => reply,
            other => panic!(
                "step {step:?}, the script expects {other:?}; steps so far: {:?}",
                self.log
            ),
        }
    }

    fn rows(&mut self, step: Step) -> QueryResult<Vec<(usize, &'static str)>> {
        match self.next(step) {
            Rows(rows) => Ok(rows),
            Fail(error) => Err(error),
            reply => panic!("a read cannot reply {reply:?}"),
        }
    }

    fn done(&mut self, step: Step) -> QueryResult<()> {
        match self.next(step) {
            Done => Ok(()),
            Fail(error) => Err(error),
            reply => panic!("{reply:?}"),
        }
    }

    /// Run backend `DB`'s algorithm to the script's end.
    fn play<DB: BatchAlgorithms<Script>>(
        mut self,
    ) -> (QueryResult<Found<&'static str>>, Vec<Step>) {
        let result = crate::driver::sync::block_on(DB::get_or_create_all(&mut self));
        self.finish(result)
    }

    /// Run backend `DB`'s `update_or_create_all_with` to the script's end.
    fn play_update<DB: BatchUpdateAlgorithms<Script>>(
        mut self,
    ) -> (QueryResult<Found<&'static str>>, Vec<Step>) {
        let result =
            crate::driver::sync::block_on(super::update_or_create_all_with::<DB, _>(&mut self));
        self.finish(result)
    }

    /// Run backend `DB`'s `update_or_create_all` to the script's end.
    fn play_each<DB: BatchUpdateAlgorithms<Script>>(
        mut self,
    ) -> (QueryResult<Found<&'static str>>, Vec<Step>) {
        let result =
            crate::driver::sync::block_on(super::update_or_create_each::<DB, _>(&mut self));
        self.finish(result)
    }

    fn finish(
        self,
        result: QueryResult<Found<&'static str>>,
    ) -> (QueryResult<Found<&'static str>>, Vec<Step>) {
        assert!(
            self.script.is_empty(),
            "stopped before the script's end; steps: {:?}, left: {:?}",
            self.log,
            self.script
        );
        (result, self.log)
    }
}

impl BatchIo for Script {
    type Row = &'static str;

    fn in_transaction(&mut self) -> QueryResult<bool> {
        Ok(self.in_transaction)
    }

    fn len(&self) -> usize {
        self.keys
    }

    async fn read(
        &mut self,
        which: &[usize],
        lock: bool,
    ) -> QueryResult<Vec<(usize, &'static str)>> {
        let step = if lock {
            ReadShared(which.to_vec())
        } else {
            Read(which.to_vec())
        };
        self.rows(step)
    }

    async fn insert(&mut self, which: &[usize]) -> QueryResult<usize> {
        match self.next(Insert(which.to_vec())) {
            Count(n) => Ok(n),
            Fail(error) => Err(error),
            reply => panic!("{reply:?}"),
        }
    }

    async fn begin(&mut self) -> QueryResult<()> {
        self.done(Begin)
    }

    async fn commit(&mut self) -> QueryResult<()> {
        self.done(Commit)
    }

    async fn rollback(&mut self) -> QueryResult<()> {
        self.done(Rollback)
    }

    async fn pause(&mut self, pause: Duration) {
        assert!(pause.as_micros() as u64 <= backoff_cap_us(self.runs));
        self.runs += 1;
        self.done(Pause).unwrap();
    }
}

impl UpdateBatchIo for Script {
    fn update_is_noop(&self) -> QueryResult<bool> {
        Ok(self.noop)
    }

    async fn update(&mut self, which: &[usize]) -> QueryResult<usize> {
        match self.next(Update(which.to_vec())) {
            Count(n) => Ok(n),
            Fail(error) => Err(error),
            reply => panic!("{reply:?}"),
        }
    }
}

#[cfg(any(feature = "postgres", feature = "sqlite"))]
impl super::UpdateReturningBatchIo for Script {
    async fn update_returning(
        &mut self,
        which: &[usize],
    ) -> QueryResult<Vec<(usize, &'static str)>> {
        self.rows(UpdateReturning(which.to_vec()))
    }
}

impl super::UpsertRowsBatchIo for Script {
    async fn lock_rows(&mut self, which: &[usize]) -> QueryResult<Vec<(usize, &'static str)>> {
        self.rows(LockRows(which.to_vec()))
    }

    async fn upsert_rows(
        &mut self,
        which: &[usize],
    ) -> QueryResult<Option<Vec<(usize, &'static str)>>> {
        match self.next(UpsertRows(which.to_vec())) {
            Done => Ok(None),
            Rows(rows) => Ok(Some(rows)),
            Fail(error) => Err(error),
            reply => panic!("an upsert cannot reply {reply:?}"),
        }
    }
}

#[cfg(feature = "postgres")]
impl super::UpsertBatchIo for Script {
    async fn upsert(&mut self, which: &[usize]) -> QueryResult<Vec<(usize, (&'static str, bool))>> {
        match self.next(Upsert(which.to_vec())) {
            Upserted(rows) => Ok(rows.into_iter().map(|(i, r, c)| (i, (r, c))).collect()),
            Fail(error) => Err(error),
            reply => panic!("an upsert cannot reply {reply:?}"),
        }
    }
}

#[cfg(feature = "postgres")]
impl super::ReturningBatchIo for Script {
    async fn insert_returning(
        &mut self,
        which: &[usize],
    ) -> QueryResult<Vec<(usize, &'static str)>> {
        self.rows(InsertReturning(which.to_vec()))
    }
}

fn error(kind: DatabaseErrorKind, message: &'static str) -> Error {
    Error::DatabaseError(
        kind,
        Box::new(StaticInfo {
            message,
            hint: None,
        }),
    )
}

fn duplicate() -> Error {
    error(DatabaseErrorKind::UniqueViolation, "duplicate key")
}

fn serialization_failure() -> Error {
    error(
        DatabaseErrorKind::SerializationFailure,
        "could not serialize access",
    )
}

fn rows(rows: &[(usize, &'static str)]) -> Reply {
    Rows(rows.to_vec())
}

fn ok(found: QueryResult<Found<&'static str>>) -> Vec<(&'static str, bool)> {
    found
        .unwrap()
        .into_iter()
        .map(|f| f.expect("every key has a row"))
        .collect()
}

fn v(keys: &[usize]) -> Vec<usize> {
    keys.to_vec()
}

#[cfg(feature = "postgres")]
mod postgres {
    use diesel::pg::Pg;

    use super::*;

    #[test]
    fn every_key_exists_one_read() {
        let (found, steps) = Script::new(
            2,
            false,
            vec![(Read(v(&[0, 1])), rows(&[(1, "b"), (0, "a")]))],
        )
        .play::<Pg>();
        assert_eq!(ok(found), [("a", false), ("b", false)]);
        assert_eq!(steps.len(), 1);
    }

    #[test]
    fn missing_keys_one_insert_returning_the_created_rows() {
        let (found, _) = Script::new(
            3,
            false,
            vec![
                (Read(v(&[0, 1, 2])), rows(&[(1, "b")])),
                (InsertReturning(v(&[0, 2])), rows(&[(0, "a"), (2, "c")])),
            ],
        )
        .play::<Pg>();
        assert_eq!(ok(found), [("a", true), ("b", false), ("c", true)]);
    }

    #[test]
    fn a_key_a_concurrent_caller_committed_is_read_not_created() {
        let (found, _) = Script::new(
            2,
            false,
            vec![
                (Read(v(&[0, 1])), rows(&[])),
                (InsertReturning(v(&[0, 1])), rows(&[(1, "b")])),
                (Read(v(&[0])), rows(&[(0, "a")])),
            ],
        )
        .play::<Pg>();
        assert_eq!(ok(found), [("a", false), ("b", true)]);
    }

    #[test]
    fn inside_a_transaction_the_insert_runs_in_a_savepoint() {
        let (found, _) = Script::new(
            1,
            true,
            vec![
                (Read(v(&[0])), rows(&[])),
                (Begin, Done),
                (InsertReturning(v(&[0])), rows(&[(0, "a")])),
                (Commit, Done),
            ],
        )
        .play::<Pg>();
        assert_eq!(ok(found), [("a", true)]);
    }

    #[test]
    fn a_serialization_failure_runs_again_standalone_keeping_the_rows_found() {
        let (found, _) = Script::new(
            2,
            false,
            vec![
                (Read(v(&[0, 1])), rows(&[(0, "a")])),
                (InsertReturning(v(&[1])), Fail(serialization_failure())),
                (Pause, Done),
                // The second run reads only the keys still missing.
                (Read(v(&[1])), rows(&[(1, "b")])),
            ],
        )
        .play::<Pg>();
        assert_eq!(ok(found), [("a", false), ("b", false)]);
    }

    #[test]
    fn a_serialization_failure_in_a_transaction_is_returned_after_the_savepoint_rolls_back() {
        let (found, _) = Script::new(
            1,
            true,
            vec![
                (Read(v(&[0])), rows(&[])),
                (Begin, Done),
                (InsertReturning(v(&[0])), Fail(serialization_failure())),
                (Rollback, Done),
            ],
        )
        .play::<Pg>();
        assert!(matches!(
            found,
            Err(Error::DatabaseError(
                DatabaseErrorKind::SerializationFailure,
                _
            ))
        ));
    }

    #[test]
    fn a_duplicate_on_another_index_is_returned_unless_a_read_explains_it() {
        // Explained: a concurrent caller committed key 0 (with the same
        // value of another unique column); the next attempt inserts key 1.
        let (found, _) = Script::new(
            2,
            false,
            vec![
                (Read(v(&[0, 1])), rows(&[])),
                (InsertReturning(v(&[0, 1])), Fail(duplicate())),
                (Read(v(&[0, 1])), rows(&[(0, "a")])),
                (InsertReturning(v(&[1])), rows(&[(1, "b")])),
            ],
        )
        .play::<Pg>();
        assert_eq!(ok(found), [("a", false), ("b", true)]);
        // Not explained: the insert runs once more (at REPEATABLE READ it
        // now fails with a serialization failure if a concurrent caller
        // committed the key after the snapshot); a second one is returned.
        let (found, _) = Script::new(
            1,
            false,
            vec![
                (Read(v(&[0])), rows(&[])),
                (InsertReturning(v(&[0])), Fail(duplicate())),
                (Read(v(&[0])), rows(&[])),
                (InsertReturning(v(&[0])), Fail(duplicate())),
                (Read(v(&[0])), rows(&[])),
            ],
        )
        .play::<Pg>();
        assert!(matches!(
            found,
            Err(Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _))
        ));
    }

    #[test]
    fn an_unexplained_duplicate_then_a_serialization_failure_is_that_failure() {
        let (found, _) = Script::new(
            1,
            true,
            vec![
                (Read(v(&[0])), rows(&[])),
                (Begin, Done),
                (InsertReturning(v(&[0])), Fail(duplicate())),
                (Rollback, Done),
                (Read(v(&[0])), rows(&[])),
                (Begin, Done),
                (InsertReturning(v(&[0])), Fail(serialization_failure())),
                (Rollback, Done),
            ],
        )
        .play::<Pg>();
        assert!(matches!(
            found,
            Err(Error::DatabaseError(
                DatabaseErrorKind::SerializationFailure,
                _
            ))
        ));
    }

    #[test]
    fn a_key_deleted_after_every_conflict_gives_up_after_the_attempts() {
        let mut script = vec![(Read(v(&[0])), rows(&[]))];
        for _ in 0..MAX_ATTEMPTS {
            script.push((InsertReturning(v(&[0])), rows(&[])));
            script.push((Read(v(&[0])), rows(&[])));
        }
        let (found, _) = Script::new(1, false, script).play::<Pg>();
        let Err(Error::DatabaseError(DatabaseErrorKind::SerializationFailure, info)) = found else {
            panic!("{found:?}")
        };
        assert!(info.message().contains("gave up"));
    }
}

/// MySQL and SQLite share the plain-insert steps; MySQL's reads after a
/// duplicate lock.
#[cfg(any(feature = "mysql", feature = "sqlite"))]
macro_rules! plain_insert_tests {
    ($module:ident, $db:ty, $after_duplicate:ident) => {
        mod $module {
            use super::*;

            #[test]
            fn missing_keys_one_insert_then_one_read() {
                let (found, steps) = Script::new(
                    3,
                    false,
                    vec![
                        (Read(v(&[0, 1, 2])), rows(&[(1, "b")])),
                        (Insert(v(&[0, 2])), Count(2)),
                        (Read(v(&[0, 2])), rows(&[(2, "c"), (0, "a")])),
                    ],
                )
                .play::<$db>();
                assert_eq!(ok(found), [("a", true), ("b", false), ("c", true)]);
                assert_eq!(steps.len(), 3);
            }

            #[test]
            fn a_duplicate_reads_what_others_committed_and_inserts_the_rest() {
                let (found, _) = Script::new(
                    2,
                    false,
                    vec![
                        (Read(v(&[0, 1])), rows(&[])),
                        (Insert(v(&[0, 1])), Fail(duplicate())),
                        ($after_duplicate(v(&[0, 1])), rows(&[(0, "a")])),
                        (Insert(v(&[1])), Count(1)),
                        (Read(v(&[1])), rows(&[(1, "b")])),
                    ],
                )
                .play::<$db>();
                assert_eq!(ok(found), [("a", false), ("b", true)]);
            }

            #[test]
            fn an_unexplained_duplicate_goes_one_key_at_a_time() {
                // Key 0 and key 1 are equal for the column's collation: the
                // first is created, the second finds it. Key 2 collides on
                // another unique column: its error is returned.
                let (found, _) = Script::new(
                    3,
                    false,
                    vec![
                        (Read(v(&[0, 1, 2])), rows(&[])),
                        (Insert(v(&[0, 1, 2])), Fail(duplicate())),
                        ($after_duplicate(v(&[0, 1, 2])), rows(&[])),
                        (Insert(v(&[0])), Count(1)),
                        (Read(v(&[0])), rows(&[(0, "a")])),
                        (Insert(v(&[1])), Fail(duplicate())),
                        ($after_duplicate(v(&[1])), rows(&[(1, "a")])),
                        (Insert(v(&[2])), Fail(duplicate())),
                        ($after_duplicate(v(&[2])), rows(&[])),
                    ],
                )
                .play::<$db>();
                assert!(matches!(
                    found,
                    Err(Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _))
                ));
            }

            #[test]
            fn a_row_deleted_after_the_insert_is_inserted_again() {
                let (found, _) = Script::new(
                    1,
                    false,
                    vec![
                        (Read(v(&[0])), rows(&[])),
                        (Insert(v(&[0])), Count(1)),
                        (Read(v(&[0])), rows(&[])),
                        (Insert(v(&[0])), Count(1)),
                        (Read(v(&[0])), rows(&[(0, "a2")])),
                    ],
                )
                .play::<$db>();
                assert_eq!(ok(found), [("a2", true)]);
            }

            #[test]
            fn other_errors_are_returned() {
                let (found, _) = Script::new(
                    1,
                    true,
                    vec![
                        (Read(v(&[0])), rows(&[])),
                        (
                            Insert(v(&[0])),
                            Fail(error(DatabaseErrorKind::NotNullViolation, "null")),
                        ),
                    ],
                )
                .play::<$db>();
                assert!(matches!(
                    found,
                    Err(Error::DatabaseError(DatabaseErrorKind::NotNullViolation, _))
                ));
            }
        }
    };
}

#[cfg(feature = "mysql")]
plain_insert_tests!(mysql, diesel::mysql::Mysql, ReadShared);
#[cfg(feature = "sqlite")]
plain_insert_tests!(sqlite, diesel::sqlite::Sqlite, Read);

#[cfg(feature = "mysql")]
#[test]
fn mysql_a_deadlock_runs_again_standalone_and_is_returned_in_a_transaction() {
    use diesel::mysql::Mysql;
    let deadlock = || {
        error(
            DatabaseErrorKind::Unknown,
            "Deadlock found when trying to get lock; try restarting transaction",
        )
    };
    let (found, _) = Script::new(
        1,
        false,
        vec![
            (Read(v(&[0])), rows(&[])),
            (Insert(v(&[0])), Fail(deadlock())),
            (Pause, Done),
            (Read(v(&[0])), rows(&[(0, "a")])),
        ],
    )
    .play::<Mysql>();
    assert_eq!(ok(found), [("a", false)]);
    let (found, _) = Script::new(
        1,
        true,
        vec![
            (Read(v(&[0])), rows(&[])),
            (Insert(v(&[0])), Fail(deadlock())),
        ],
    )
    .play::<Mysql>();
    assert!(matches!(
        found,
        Err(Error::DatabaseError(
            DatabaseErrorKind::SerializationFailure,
            _
        ))
    ));
}

/// `update_or_create_all_with`, every backend's branches.
mod update {
    use super::*;

    fn deadlock() -> Error {
        error(
            DatabaseErrorKind::Unknown,
            "Deadlock found when trying to get lock; try restarting transaction",
        )
    }

    #[cfg(feature = "postgres")]
    mod postgres {
        use diesel::pg::Pg;

        use super::*;

        #[test]
        fn one_upsert_updates_and_creates_in_key_order() {
            let (found, steps) = Script::new(
                2,
                false,
                vec![(
                    Upsert(v(&[0, 1])),
                    Upserted(vec![(0, "a", true), (1, "b", false)]),
                )],
            )
            .play_update::<Pg>();
            assert_eq!(ok(found), [("a", true), ("b", false)]);
            assert_eq!(steps.len(), 1);
        }

        #[test]
        fn inside_a_transaction_the_upsert_runs_in_a_savepoint() {
            let (found, _) = Script::new(
                1,
                true,
                vec![
                    (Begin, Done),
                    (Upsert(v(&[0])), Upserted(vec![(0, "a", false)])),
                    (Commit, Done),
                ],
            )
            .play_update::<Pg>();
            assert_eq!(ok(found), [("a", false)]);
        }

        #[test]
        fn create_values_that_cannot_form_a_row_update_the_existing_keys_and_fail_the_others() {
            let null = || error(DatabaseErrorKind::NotNullViolation, "null value");
            let (found, _) = Script::new(
                2,
                false,
                vec![
                    (Upsert(v(&[0, 1])), Fail(null())),
                    (UpdateReturning(v(&[0, 1])), rows(&[(1, "b")])),
                    (InsertReturning(v(&[0])), Fail(null())),
                ],
            )
            .play_update::<Pg>();
            assert!(matches!(
                found,
                Err(Error::DatabaseError(DatabaseErrorKind::NotNullViolation, _))
            ));
            // With every key's row present, the update is the answer.
            let (found, _) = Script::new(
                1,
                false,
                vec![
                    (Upsert(v(&[0])), Fail(null())),
                    (UpdateReturning(v(&[0])), rows(&[(0, "a")])),
                ],
            )
            .play_update::<Pg>();
            assert_eq!(ok(found), [("a", false)]);
        }

        #[test]
        fn a_duplicate_on_another_index_runs_the_upsert_again() {
            // A concurrent caller committed key 1 with the same value of
            // another unique column: the key's row is now there to update.
            let (found, _) = Script::new(
                2,
                false,
                vec![
                    (Upsert(v(&[0, 1])), Fail(duplicate())),
                    (
                        Upsert(v(&[0, 1])),
                        Upserted(vec![(0, "a", true), (1, "b", false)]),
                    ),
                ],
            )
            .play_update::<Pg>();
            assert_eq!(ok(found), [("a", true), ("b", false)]);
        }

        #[test]
        fn a_second_duplicate_updates_what_exists_and_inserts_the_rest() {
            let (found, _) = Script::new(
                2,
                true,
                vec![
                    (Begin, Done),
                    (Upsert(v(&[0, 1])), Fail(duplicate())),
                    (Rollback, Done),
                    (Begin, Done),
                    (Upsert(v(&[0, 1])), Fail(duplicate())),
                    (Rollback, Done),
                    (UpdateReturning(v(&[0, 1])), rows(&[(1, "b")])),
                    (Begin, Done),
                    (InsertReturning(v(&[0])), Fail(duplicate())),
                    (Rollback, Done),
                    // No row for key 0: its own create values collide.
                    (Read(v(&[0])), rows(&[])),
                    (Begin, Done),
                    (Upsert(v(&[0])), Fail(duplicate())),
                    (Rollback, Done),
                    (Begin, Done),
                    (Upsert(v(&[0])), Fail(duplicate())),
                    (Rollback, Done),
                    (UpdateReturning(v(&[0])), rows(&[])),
                    (Begin, Done),
                    (InsertReturning(v(&[0])), Fail(duplicate())),
                    (Rollback, Done),
                    (Read(v(&[0])), rows(&[])),
                ],
            )
            .play_update::<Pg>();
            assert!(matches!(
                found,
                Err(Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _))
            ));
        }

        #[test]
        fn a_key_a_concurrent_caller_inserted_is_updated_not_created() {
            let (found, _) = Script::new(
                1,
                false,
                vec![
                    (Upsert(v(&[0])), Fail(duplicate())),
                    (Upsert(v(&[0])), Fail(duplicate())),
                    (UpdateReturning(v(&[0])), rows(&[])),
                    // Skipped: committed by a concurrent caller since.
                    (InsertReturning(v(&[0])), rows(&[])),
                    (Read(v(&[0])), rows(&[(0, "theirs")])),
                    // The next attempt updates it.
                    (Upsert(v(&[0])), Upserted(vec![(0, "updated", false)])),
                ],
            )
            .play_update::<Pg>();
            assert_eq!(ok(found), [("updated", false)]);
        }

        #[test]
        fn a_serialization_failure_runs_again_standalone_without_updating_twice() {
            let mut keys = vec![];
            for i in 0..super::super::super::CHUNK + 1 {
                keys.push(i);
            }
            let (first, second) = keys.split_at(super::super::super::CHUNK);
            let first_rows: Vec<(usize, &'static str, bool)> =
                first.iter().map(|&i| (i, "a", false)).collect();
            let (found, _) = Script::new(
                keys.len(),
                false,
                vec![
                    (Upsert(first.to_vec()), Upserted(first_rows)),
                    (Upsert(second.to_vec()), Fail(serialization_failure())),
                    (Pause, Done),
                    // The committed first chunk is not updated again.
                    (
                        Upsert(second.to_vec()),
                        Upserted(vec![(keys.len() - 1, "b", true)]),
                    ),
                ],
            )
            .play_update::<Pg>();
            assert_eq!(ok(found).last(), Some(&("b", true)));
        }

        #[test]
        fn an_empty_changeset_is_get_or_create_all() {
            let mut script = Script::new(1, false, vec![(Read(v(&[0])), rows(&[(0, "a")]))]);
            script.noop = true;
            let (found, _) = script.play_update::<Pg>();
            assert_eq!(ok(found), [("a", false)]);
        }
    }

    #[cfg(feature = "mysql")]
    mod mysql {
        use diesel::mysql::Mysql;

        use super::*;

        #[test]
        fn a_read_first_then_the_update_and_its_locking_read_in_a_transaction_then_the_insert() {
            let (found, steps) = Script::new(
                3,
                false,
                vec![
                    (Read(v(&[0, 1, 2])), rows(&[(1, "b")])),
                    (Begin, Done),
                    (Update(v(&[1])), Count(1)),
                    (ReadShared(v(&[1])), rows(&[(1, "b2")])),
                    (Commit, Done),
                    (Begin, Done),
                    (Insert(v(&[0, 2])), Count(2)),
                    (Read(v(&[0, 2])), rows(&[(0, "a"), (2, "c")])),
                    (Commit, Done),
                ],
            )
            .play_update::<Mysql>();
            assert_eq!(ok(found), [("a", true), ("b2", false), ("c", true)]);
            assert_eq!(steps.len(), 9);
        }

        #[test]
        fn inside_a_transaction_no_transaction_of_its_own() {
            let (found, _) = Script::new(
                2,
                true,
                vec![
                    (Read(v(&[0, 1])), rows(&[(0, "a")])),
                    (Update(v(&[0])), Count(1)),
                    (ReadShared(v(&[0])), rows(&[(0, "a2")])),
                    (Insert(v(&[1])), Count(1)),
                    (Read(v(&[1])), rows(&[(1, "b")])),
                ],
            )
            .play_update::<Mysql>();
            assert_eq!(ok(found), [("a2", false), ("b", true)]);
        }

        #[test]
        fn a_key_a_concurrent_caller_inserted_is_updated_without_reading_it_again() {
            let (found, _) = Script::new(
                1,
                true,
                vec![
                    (Read(v(&[0])), rows(&[])),
                    (Insert(v(&[0])), Fail(duplicate())),
                    (ReadShared(v(&[0])), rows(&[(0, "theirs")])),
                    // Known to exist: a plain read in the caller's snapshot
                    // would not see it.
                    (Update(v(&[0])), Count(1)),
                    (ReadShared(v(&[0])), rows(&[(0, "updated")])),
                ],
            )
            .play_update::<Mysql>();
            assert_eq!(ok(found), [("updated", false)]);
        }

        #[test]
        fn a_row_deleted_before_the_update_is_inserted() {
            let (found, _) = Script::new(
                1,
                true,
                vec![
                    (Read(v(&[0])), rows(&[(0, "old")])),
                    (Update(v(&[0])), Count(0)),
                    (ReadShared(v(&[0])), rows(&[])),
                    (Insert(v(&[0])), Count(1)),
                    (Read(v(&[0])), rows(&[(0, "new")])),
                ],
            )
            .play_update::<Mysql>();
            assert_eq!(ok(found), [("new", true)]);
        }

        #[test]
        fn a_read_that_finds_more_rows_than_the_update_matched_undoes_the_step_and_tries_again() {
            let (found, _) = Script::new(
                1,
                false,
                vec![
                    (Read(v(&[0])), rows(&[(0, "old")])),
                    (Begin, Done),
                    // Deleted, then created again by a concurrent caller
                    // between the update and the read.
                    (Update(v(&[0])), Count(0)),
                    (ReadShared(v(&[0])), rows(&[(0, "theirs")])),
                    (Rollback, Done),
                    // The insert finds it; the next attempt updates it.
                    (Begin, Done),
                    (Insert(v(&[0])), Fail(duplicate())),
                    (ReadShared(v(&[0])), rows(&[(0, "theirs")])),
                    (Commit, Done),
                    (Begin, Done),
                    (Update(v(&[0])), Count(1)),
                    (ReadShared(v(&[0])), rows(&[(0, "updated")])),
                    (Commit, Done),
                ],
            )
            .play_update::<Mysql>();
            assert_eq!(ok(found), [("updated", false)]);
        }

        #[test]
        fn in_a_transaction_a_row_replaced_under_the_update_is_a_serialization_failure() {
            let (found, _) = Script::new(
                1,
                true,
                vec![
                    (Read(v(&[0])), rows(&[(0, "old")])),
                    (Update(v(&[0])), Count(0)),
                    (ReadShared(v(&[0])), rows(&[(0, "theirs")])),
                ],
            )
            .play_update::<Mysql>();
            assert!(matches!(
                found,
                Err(Error::DatabaseError(
                    DatabaseErrorKind::SerializationFailure,
                    _
                ))
            ));
        }

        #[test]
        fn a_deadlock_is_returned_in_a_transaction() {
            let (found, _) = Script::new(
                1,
                true,
                vec![
                    (Read(v(&[0])), rows(&[(0, "a")])),
                    (Update(v(&[0])), Fail(deadlock())),
                ],
            )
            .play_update::<Mysql>();
            assert!(matches!(
                found,
                Err(Error::DatabaseError(
                    DatabaseErrorKind::SerializationFailure,
                    _
                ))
            ));
        }
    }

    #[cfg(feature = "sqlite")]
    mod sqlite {
        use diesel::sqlite::Sqlite;

        use super::*;

        #[test]
        fn update_returning_then_the_insert_and_its_read_in_a_transaction() {
            let (found, steps) = Script::new(
                2,
                false,
                vec![
                    (UpdateReturning(v(&[0, 1])), rows(&[(1, "b")])),
                    (Begin, Done),
                    (Insert(v(&[0])), Count(1)),
                    (Read(v(&[0])), rows(&[(0, "a")])),
                    (Commit, Done),
                ],
            )
            .play_update::<Sqlite>();
            assert_eq!(ok(found), [("a", true), ("b", false)]);
            assert_eq!(steps.len(), 5);
        }

        #[test]
        fn a_key_another_connection_inserted_first_is_updated() {
            let (found, _) = Script::new(
                1,
                true,
                vec![
                    (UpdateReturning(v(&[0])), rows(&[])),
                    (Insert(v(&[0])), Fail(duplicate())),
                    (Read(v(&[0])), rows(&[(0, "theirs")])),
                    (UpdateReturning(v(&[0])), rows(&[(0, "updated")])),
                ],
            )
            .play_update::<Sqlite>();
            assert_eq!(ok(found), [("updated", false)]);
        }

        #[test]
        fn keys_deleted_after_every_attempt_give_up() {
            let mut script = vec![];
            for _ in 0..MAX_ATTEMPTS {
                script.push((UpdateReturning(v(&[0])), rows(&[])));
                script.push((Insert(v(&[0])), Fail(duplicate())));
                script.push((Read(v(&[0])), rows(&[(0, "theirs")])));
            }
            let (found, _) = Script::new(1, true, script).play_update::<Sqlite>();
            assert!(matches!(
                found,
                Err(Error::DatabaseError(
                    DatabaseErrorKind::SerializationFailure,
                    _
                ))
            ));
        }
    }
}

/// `update_or_create_all`: each key with its own values.
mod each {
    use super::*;

    fn deadlock() -> Error {
        error(
            DatabaseErrorKind::Unknown,
            "Deadlock found when trying to get lock; try restarting transaction",
        )
    }

    #[cfg(feature = "postgres")]
    mod postgres {
        use diesel::pg::Pg;

        use super::*;

        #[test]
        fn one_upsert_updates_and_creates() {
            let (found, steps) = Script::new(
                2,
                false,
                vec![(
                    Upsert(v(&[0, 1])),
                    Upserted(vec![(0, "a", false), (1, "b", true)]),
                )],
            )
            .play_each::<Pg>();
            assert_eq!(ok(found), [("a", false), ("b", true)]);
            assert_eq!(steps.len(), 1);
        }

        #[test]
        fn a_second_duplicate_is_returned_without_an_update_fallback() {
            let (found, _) = Script::new(
                1,
                false,
                vec![
                    (Upsert(v(&[0])), Fail(duplicate())),
                    (Upsert(v(&[0])), Fail(duplicate())),
                ],
            )
            .play_each::<Pg>();
            assert!(matches!(
                found,
                Err(Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _))
            ));
        }

        #[test]
        fn values_that_cannot_form_a_row_are_returned() {
            let null = || error(DatabaseErrorKind::NotNullViolation, "null value");
            let (found, _) =
                Script::new(1, false, vec![(Upsert(v(&[0])), Fail(null()))]).play_each::<Pg>();
            assert!(matches!(
                found,
                Err(Error::DatabaseError(DatabaseErrorKind::NotNullViolation, _))
            ));
        }
    }

    #[cfg(feature = "sqlite")]
    mod sqlite {
        use diesel::sqlite::Sqlite;

        use super::*;

        #[test]
        fn locks_upserts_and_reads_the_existing_rows_then_inserts_the_rest() {
            let (found, steps) = Script::new(
                3,
                false,
                vec![
                    (Begin, Done),
                    (LockRows(v(&[0, 1, 2])), rows(&[(2, "c"), (0, "a")])),
                    (UpsertRows(v(&[0, 2])), rows(&[(0, "a2"), (2, "c2")])),
                    (Commit, Done),
                    (Begin, Done),
                    (Insert(v(&[1])), Count(1)),
                    (Read(v(&[1])), rows(&[(1, "b")])),
                    (Commit, Done),
                ],
            )
            .play_each::<Sqlite>();
            assert_eq!(ok(found), [("a2", false), ("b", true), ("c2", false)]);
            assert_eq!(steps.len(), 8);
        }

        #[test]
        fn no_existing_row_no_upsert() {
            let (found, _) = Script::new(
                1,
                true,
                vec![
                    (LockRows(v(&[0])), rows(&[])),
                    (Insert(v(&[0])), Count(1)),
                    (Read(v(&[0])), rows(&[(0, "a")])),
                ],
            )
            .play_each::<Sqlite>();
            assert_eq!(ok(found), [("a", true)]);
        }

        #[test]
        fn a_key_created_between_the_lock_and_the_insert_is_updated_next() {
            // Standalone, the lock ends with its step: another connection can
            // insert the key before this call's insert.
            let (found, _) = Script::new(
                1,
                false,
                vec![
                    (Begin, Done),
                    (LockRows(v(&[0])), rows(&[])),
                    (Commit, Done),
                    (Begin, Done),
                    (Insert(v(&[0])), Fail(duplicate())),
                    (Read(v(&[0])), rows(&[(0, "theirs")])),
                    (Commit, Done),
                    (Begin, Done),
                    (LockRows(v(&[0])), rows(&[(0, "theirs")])),
                    (UpsertRows(v(&[0])), rows(&[(0, "ours")])),
                    (Commit, Done),
                ],
            )
            .play_each::<Sqlite>();
            assert_eq!(ok(found), [("ours", false)]);
        }
    }

    #[cfg(feature = "mysql")]
    mod mysql {
        use diesel::mysql::Mysql;

        use super::*;

        #[test]
        fn a_plain_read_then_lock_upsert_and_read_then_the_insert() {
            let (found, steps) = Script::new(
                3,
                false,
                vec![
                    (Read(v(&[0, 1, 2])), rows(&[(1, "b")])),
                    (Begin, Done),
                    (LockRows(v(&[1])), rows(&[(1, "b")])),
                    (UpsertRows(v(&[1])), Done),
                    (ReadShared(v(&[1])), rows(&[(1, "b2")])),
                    (Commit, Done),
                    (Begin, Done),
                    (Insert(v(&[0, 2])), Count(2)),
                    (Read(v(&[0, 2])), rows(&[(0, "a"), (2, "c")])),
                    (Commit, Done),
                ],
            )
            .play_each::<Mysql>();
            assert_eq!(ok(found), [("a", true), ("b2", false), ("c", true)]);
            assert_eq!(steps.len(), 10);
        }

        #[test]
        fn a_row_deleted_after_the_read_is_not_upserted_but_inserted() {
            let (found, _) = Script::new(
                2,
                true,
                vec![
                    (Read(v(&[0, 1])), rows(&[(0, "a"), (1, "b")])),
                    (LockRows(v(&[0, 1])), rows(&[(1, "b")])),
                    (UpsertRows(v(&[1])), Done),
                    (ReadShared(v(&[1])), rows(&[(1, "b2")])),
                    (Insert(v(&[0])), Count(1)),
                    (Read(v(&[0])), rows(&[(0, "a2")])),
                ],
            )
            .play_each::<Mysql>();
            assert_eq!(ok(found), [("a2", true), ("b2", false)]);
        }

        #[test]
        fn a_failed_upsert_is_rolled_back_and_returned() {
            let (found, _) = Script::new(
                1,
                false,
                vec![
                    (Read(v(&[0])), rows(&[(0, "a")])),
                    (Begin, Done),
                    (LockRows(v(&[0])), rows(&[(0, "a")])),
                    (UpsertRows(v(&[0])), Fail(duplicate())),
                    (Rollback, Done),
                ],
            )
            .play_each::<Mysql>();
            assert!(matches!(
                found,
                Err(Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _))
            ));
        }

        #[test]
        fn a_deadlock_runs_again_standalone_and_is_returned_in_a_transaction() {
            let (found, _) = Script::new(
                1,
                false,
                vec![
                    (Read(v(&[0])), rows(&[(0, "a")])),
                    (Begin, Done),
                    (LockRows(v(&[0])), Fail(deadlock())),
                    (Rollback, Done),
                    (Pause, Done),
                    // The key is known to exist: no second read.
                    (Begin, Done),
                    (LockRows(v(&[0])), rows(&[(0, "a")])),
                    (UpsertRows(v(&[0])), Done),
                    (ReadShared(v(&[0])), rows(&[(0, "a2")])),
                    (Commit, Done),
                ],
            )
            .play_each::<Mysql>();
            assert_eq!(ok(found), [("a2", false)]);
            let (found, _) = Script::new(
                1,
                true,
                vec![
                    (Read(v(&[0])), rows(&[(0, "a")])),
                    (LockRows(v(&[0])), Fail(deadlock())),
                ],
            )
            .play_each::<Mysql>();
            assert!(matches!(
                found,
                Err(Error::DatabaseError(
                    DatabaseErrorKind::SerializationFailure,
                    _
                ))
            ));
        }
    }
}
