//! The scripted driver (tests only): answers each step an algorithm asks for
//! from a script of `(expected step, reply)` pairs, so that every branch of
//! every algorithm runs without a server, and the statements it runs are
//! asserted in order.

use std::collections::VecDeque;
use std::time::Duration;

use diesel::result::{DatabaseErrorKind, Error};
use diesel::QueryResult;

#[cfg(any(feature = "sqlite", feature = "postgres"))]
use crate::algorithm::ReturningIo;
use crate::algorithm::{backoff_cap_us, Algorithms, Io, StaticInfo};

/// A step an algorithm asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// `SELECT .. WHERE key`
    Select,
    /// `SELECT .. WHERE key LOCK IN SHARE MODE` (MySQL)
    SelectShare,
    /// `SELECT .. WHERE key FOR UPDATE` (MySQL)
    SelectForUpdate,
    /// `SELECT .. WHERE key` with MySQL's transaction guard, inside the
    /// caller's transaction
    SelectInTransaction,
    /// `INSERT` (MySQL)
    Insert,
    /// `UPDATE .. WHERE key` (MySQL, where it carries the transaction guard)
    Update,
    /// `INSERT .. ON CONFLICT (key) DO NOTHING RETURNING`
    InsertReturning,
    /// `UPDATE .. WHERE key RETURNING`
    UpdateReturning,
    /// `INSERT .. ON CONFLICT (key) DO UPDATE .. RETURNING .., (xmax = 0)` (PostgreSQL)
    Upsert,
    /// `INSERT .. ON DUPLICATE KEY UPDATE <key check>, ..` (MySQL)
    InsertOnDuplicateKeyUpdate,
    /// `SELECT <row>, (@var <=> token) .. FOR UPDATE` after it (MySQL)
    SelectUpserted,
    /// The check that an insert names no column twice (SQLite)
    CheckColumns,
    /// `BEGIN` or `SAVEPOINT`
    Begin,
    /// `COMMIT` or `RELEASE SAVEPOINT`
    Commit,
    /// `ROLLBACK` or `ROLLBACK TO SAVEPOINT`
    Rollback,
    /// A pause before the call runs again
    Pause,
}

/// The scripted outcome of a step.
#[derive(Debug)]
pub(crate) enum Reply {
    /// A statement returned this row.
    Row(&'static str),
    /// A statement returned no row.
    NoRow,
    /// A statement affected (or matched) this many rows.
    Count(usize),
    /// The upsert returned (MySQL: its read found) this row, inserted
    /// (`true`) or updated.
    Upserted(&'static str, bool),
    /// A boundary, a pause or a check succeeded.
    Done,
    /// The step failed with this error.
    Fail(Error),
}

pub(crate) use Reply::*;
pub(crate) use Step::*;

/// A driver that plays a script.
pub(crate) struct Script {
    in_transaction: bool,
    noop: bool,
    script: VecDeque<(Step, Reply)>,
    log: Vec<Step>,
    runs: u32,
}

impl Script {
    /// A script for a standalone call (`in_transaction == false`) or one
    /// inside the caller's transaction.
    pub(crate) fn new(in_transaction: bool, script: Vec<(Step, Reply)>) -> Script {
        Script {
            in_transaction,
            noop: false,
            script: script.into(),
            log: Vec::new(),
            runs: 1,
        }
    }

    /// The call's changeset is empty.
    pub(crate) fn with_noop_changeset(mut self) -> Script {
        self.noop = true;
        self
    }

    fn next(&mut self, step: Step) -> Reply {
        self.log.push(step);
        match self.script.pop_front() {
            Some((expected, reply)) if expected == step => reply,
            Some((expected, _)) => panic!(
                "step {} is {step:?}, the script expects {expected:?}; steps so far: {:?}",
                self.log.len(),
                self.log
            ),
            None => panic!(
                "step {} is {step:?} after the script's end; steps so far: {:?}",
                self.log.len(),
                self.log
            ),
        }
    }

    fn row(&mut self, step: Step) -> QueryResult<Option<&'static str>> {
        match self.next(step) {
            Row(row) => Ok(Some(row)),
            NoRow => Ok(None),
            Fail(error) => Err(error),
            reply => panic!("{step:?} cannot reply {reply:?}"),
        }
    }

    fn count(&mut self, step: Step) -> QueryResult<usize> {
        match self.next(step) {
            Count(n) => Ok(n),
            Fail(error) => Err(error),
            reply => panic!("{step:?} cannot reply {reply:?}"),
        }
    }

    fn done(&mut self, step: Step) -> QueryResult<()> {
        match self.next(step) {
            Done => Ok(()),
            Fail(error) => Err(error),
            reply => panic!("{step:?} cannot reply {reply:?}"),
        }
    }

    /// Run `algorithm` on this script to its end: its result and the steps
    /// it took. Panics if it asks for a step the script does not expect, or
    /// stops before the script's end.
    pub(crate) fn play<R>(
        mut self,
        algorithm: impl AsyncFnOnce(&mut Script) -> R,
    ) -> (R, Vec<Step>) {
        let result = super::sync::block_on(algorithm(&mut self));
        assert!(
            self.script.is_empty(),
            "the algorithm stopped before the script's end; steps: {:?}, left: {:?}",
            self.log,
            self.script
        );
        (result, self.log)
    }
}

impl Io for Script {
    type Row = &'static str;

    fn in_transaction(&mut self) -> QueryResult<bool> {
        Ok(self.in_transaction)
    }

    fn update_is_noop(&self) -> QueryResult<bool> {
        Ok(self.noop)
    }

    async fn select(&mut self) -> QueryResult<Option<&'static str>> {
        self.row(Select)
    }

    async fn insert(&mut self) -> QueryResult<usize> {
        self.count(Insert)
    }

    async fn update(&mut self) -> QueryResult<usize> {
        self.count(Update)
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
        assert!(
            pause.as_micros() as u64 <= backoff_cap_us(self.runs),
            "pause {pause:?} after run {} is above its cap",
            self.runs
        );
        self.runs += 1;
        self.done(Pause).expect("a pause cannot fail");
    }
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl ReturningIo for Script {
    async fn insert_returning(&mut self) -> QueryResult<Option<&'static str>> {
        self.row(InsertReturning)
    }

    async fn update_returning(&mut self) -> QueryResult<Option<&'static str>> {
        self.row(UpdateReturning)
    }
}

#[cfg(feature = "postgres")]
impl crate::postgres::UpsertIo for Script {
    async fn upsert(&mut self) -> QueryResult<(&'static str, bool)> {
        match self.next(Upsert) {
            Upserted(row, created) => Ok((row, created)),
            Fail(error) => Err(error),
            reply => panic!("Upsert cannot reply {reply:?}"),
        }
    }
}

#[cfg(feature = "mysql")]
impl crate::mysql::LockingIo for Script {
    async fn select_locked(
        &mut self,
        lock: crate::mysql::Lock,
    ) -> QueryResult<Option<&'static str>> {
        self.row(match lock {
            crate::mysql::Lock::Share => SelectShare,
            crate::mysql::Lock::Update => SelectForUpdate,
        })
    }

    async fn select_in_transaction(&mut self) -> QueryResult<Option<&'static str>> {
        self.row(SelectInTransaction)
    }

    async fn update_in_transaction(&mut self) -> QueryResult<usize> {
        self.count(Update)
    }
}

#[cfg(feature = "mysql")]
impl crate::mysql::UpsertIo for Script {
    async fn upsert(&mut self, _token: u64) -> QueryResult<usize> {
        self.count(InsertOnDuplicateKeyUpdate)
    }

    async fn select_upserted(&mut self, _token: u64) -> QueryResult<Option<(&'static str, bool)>> {
        match self.next(SelectUpserted) {
            Upserted(row, created) => Ok(Some((row, !created))),
            NoRow => Ok(None),
            Fail(error) => Err(error),
            reply => panic!("SelectUpserted cannot reply {reply:?}"),
        }
    }
}

#[cfg(feature = "sqlite")]
impl crate::sqlite::SqliteIo for Script {
    fn check_insert_columns(&mut self) -> QueryResult<()> {
        self.done(CheckColumns)
    }
}

/// A database error of `kind` with `message`, as a driver reports it.
pub(crate) fn db_error(kind: DatabaseErrorKind, message: &'static str) -> Error {
    Error::DatabaseError(
        kind,
        Box::new(StaticInfo {
            message,
            hint: None,
        }),
    )
}

/// A unique violation (on any index).
pub(crate) fn unique_violation() -> Error {
    db_error(
        DatabaseErrorKind::UniqueViolation,
        "duplicate key value violates unique constraint",
    )
}

/// A serialization failure (PostgreSQL 40001; sync Diesel's MySQL 1213).
pub(crate) fn serialization_failure() -> Error {
    db_error(
        DatabaseErrorKind::SerializationFailure,
        "could not serialize access due to concurrent update",
    )
}

/// Play `script` through backend `DB`'s `get_or_create`.
pub(crate) fn get_or_create<DB: Algorithms<Script>>(
    in_transaction: bool,
    script: Vec<(Step, Reply)>,
) -> Outcome {
    let (result, _) =
        Script::new(in_transaction, script).play(async |io| DB::get_or_create(io).await);
    outcome(result)
}

/// Play `script` through backend `DB`'s `update_or_create_with`.
pub(crate) fn update_or_create<DB: Algorithms<Script>>(
    in_transaction: bool,
    script: Vec<(Step, Reply)>,
) -> Outcome {
    let (result, _) = Script::new(in_transaction, script)
        .play(async |io| crate::algorithm::update_or_create::<DB, _>(io).await);
    outcome(result)
}

/// `update_or_create_with` with an empty changeset, on a row that exists:
/// the steps backend `DB` takes.
pub(crate) fn update_nothing<DB: Algorithms<Script>>() -> (Outcome, Vec<Step>) {
    let (result, steps) = Script::new(false, vec![(Select, Row("ann"))])
        .with_noop_changeset()
        .play(async |io| crate::algorithm::update_or_create::<DB, _>(io).await);
    (outcome(result), steps)
}

/// An algorithm's result, with its error as the error's kind and whether
/// it is the error of a call that gave up because the key's row kept
/// vanishing.
pub(crate) type Outcome = Result<(&'static str, bool), (DatabaseErrorKind, bool)>;

/// See [`Outcome`].
pub(crate) fn outcome(result: QueryResult<(&'static str, bool)>) -> Outcome {
    result.map_err(|error| match error {
        Error::DatabaseError(kind, info) => {
            (kind, info.message().contains("gave up after 16 attempts"))
        }
        other => panic!("not a database error: {other:?}"),
    })
}
