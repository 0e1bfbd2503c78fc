//! `diesel_get_or_create::transaction` and `asynchronous::transaction` on
//! every backend: a real conflict makes the closure run again (PostgreSQL
//! REPEATABLE READ serialization failure, MariaDB deadlock, SQLite `database
//! is locked`), and an error that does not mean "retry" is returned at once,
//! after one run, with the transaction rolled back. (Galera's certification
//! failures: `tests/galera.rs`.)

use std::sync::mpsc;

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error};
use diesel_get_or_create::RetryBackend;
use diesel_get_or_create_tests::backend::{AsConnRef, ServerBackend};
use diesel_get_or_create_tests::models::names;
use diesel_get_or_create_tests::schema::users;
use diesel_get_or_create_tests::suite::{bump, visits_of};
use diesel_get_or_create_tests::{my, pg, query, sqlite};

/// `visits = visits + 1` of user `email`, with a plain Diesel update.
fn increment<C: AsConnRef>(conn: &mut C, email: &str) -> QueryResult<usize> {
    query!(
        conn,
        execute,
        diesel::update(users::table.filter(users::email.eq(email)))
            .set(users::visits.eq(users::visits + 1))
    )
}

#[test]
fn postgres_serialization_failure_runs_the_transaction_again() {
    let db = pg::TestDb::new("txn_retry_serialization");
    let mut a = db.connect_at("REPEATABLE READ");
    let mut b = db.connect();
    bump(&mut b, "k@txn.test", 1).unwrap();
    let mut runs = 0;
    let visits = diesel_get_or_create::transaction(&mut a, |a| {
        runs += 1;
        // The first read takes the snapshot; another transaction then
        // commits an update of the row (first run only).
        visits_of(a, "k@txn.test");
        if runs == 1 {
            bump(&mut b, "k@txn.test", 10).unwrap();
        }
        increment(a, "k@txn.test")?; // 40001 in the first run
        Ok::<_, Error>(visits_of(a, "k@txn.test"))
    })
    .unwrap();
    assert_eq!((runs, visits), (2, Some(12)));
}

#[test]
fn mariadb_deadlock_runs_the_transaction_again() {
    let db = my::TestDb::new("txn_retry_deadlock");
    let mut a = db.connect();
    let mut b = db.connect();
    let mut observer = db.connect();
    for key in ["r1@txn.test", "r2@txn.test", "r3@txn.test"] {
        bump(&mut a, key, 1).unwrap();
    }
    let b_id = my::Mysql::session_id(&mut b);
    let (go, wait) = mpsc::channel::<()>();
    let mut runs = 0;
    let result = std::thread::scope(|s| {
        // B writes two rows (so that InnoDB picks A, which wrote nothing, as
        // the victim), then waits for A's lock on r1.
        let other = s.spawn(move || {
            wait.recv().unwrap();
            b.transaction(|b| {
                increment(b, "r2@txn.test")?;
                increment(b, "r3@txn.test")?;
                increment(b, "r1@txn.test")
            })
        });
        let result = diesel_get_or_create::transaction(&mut a, |a| {
            runs += 1;
            users::table
                .filter(users::email.eq("r1@txn.test"))
                .select(users::visits)
                .for_update()
                .get_result::<i32>(a)?;
            if runs == 1 {
                go.send(()).unwrap();
                my::Mysql::wait_until_blocked(&mut observer, b_id);
            }
            // Closes the cycle: 1213 for A in the first run.
            increment(a, "r2@txn.test")
        });
        (result, other.join().unwrap())
    });
    assert_eq!(result.0.unwrap(), 1);
    assert_eq!(result.1.unwrap(), 1);
    assert_eq!(
        runs, 2,
        "the deadlock did not make the transaction run again"
    );
    assert_eq!(visits_of(&mut a, "r2@txn.test"), Some(3));
}

#[test]
fn sqlite_database_is_locked_runs_the_transaction_again() {
    let db = sqlite::TestDb::new("txn_retry_busy");
    let mut a = db.connect();
    let mut b = db.connect();
    bump(&mut a, "k@txn.test", 1).unwrap();
    let mut runs = 0;
    diesel_get_or_create::transaction(&mut a, |a| {
        runs += 1;
        // A deferred transaction reads; another connection writes; the
        // read transaction cannot become a writer ("database is locked").
        visits_of(a, "k@txn.test");
        if runs == 1 {
            bump(&mut b, "k@txn.test", 10).unwrap();
        }
        bump(a, "k@txn.test", 1)
    })
    .unwrap();
    assert_eq!(runs, 2);
    assert_eq!(visits_of(&mut a, "k@txn.test"), Some(12));
}

/// A unique violation is not a reason to run again: one run, the error, and
/// nothing of the run committed.
fn a_unique_violation_is_returned_at_once<C>(mut conn: C)
where
    C: Connection + AsConnRef,
    C::Backend: RetryBackend,
{
    bump(&mut conn, "taken@txn.test", 1).unwrap();
    let mut runs = 0;
    let result = diesel_get_or_create::transaction(&mut conn, |c| {
        runs += 1;
        bump(c, "new@txn.test", 1)?;
        query!(
            c,
            execute,
            diesel::insert_into(users::table).values((
                users::email.eq("taken@txn.test"),
                names("dup", "dup", "dup")
            ))
        )
    });
    assert!(
        matches!(
            result,
            Err(Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _))
        ),
        "{result:?}"
    );
    assert_eq!(runs, 1);
    assert_eq!(visits_of(&mut conn, "new@txn.test"), None);
}

#[test]
fn non_retryable_errors_are_returned_at_once_on_every_backend() {
    let p = pg::TestDb::new("txn_non_retryable");
    a_unique_violation_is_returned_at_once(p.connect());
    let m = my::TestDb::new("txn_non_retryable");
    a_unique_violation_is_returned_at_once(m.connect());
    let s = sqlite::TestDb::new("txn_non_retryable");
    a_unique_violation_is_returned_at_once(s.connect());
}

/// Inside a transaction that is already open, the closure runs once, in a
/// savepoint, and a serialization failure is returned: the outer
/// transaction is the one to run again.
#[test]
fn inside_an_open_transaction_it_runs_once() {
    let db = pg::TestDb::new("txn_nested");
    let mut a = db.connect_at("REPEATABLE READ");
    let mut b = db.connect();
    bump(&mut b, "k@txn.test", 1).unwrap();
    let mut runs = 0;
    let outer: QueryResult<()> = a.transaction(|a| {
        visits_of(a, "k@txn.test");
        bump(&mut b, "k@txn.test", 10).unwrap();
        diesel_get_or_create::transaction(a, |a| {
            runs += 1;
            increment(a, "k@txn.test")
        })?;
        Ok(())
    });
    assert!(
        matches!(
            outer,
            Err(Error::DatabaseError(
                DatabaseErrorKind::SerializationFailure,
                _
            ))
        ),
        "{outer:?}"
    );
    assert_eq!(runs, 1);
}

/// Your own error type: a Diesel error inside it is read; the others are
/// returned at once.
#[test]
fn an_application_error_is_returned_at_once() {
    #[derive(Debug)]
    enum AppError {
        Db(Error),
        OutOfStock,
    }
    impl From<Error> for AppError {
        fn from(e: Error) -> Self {
            AppError::Db(e)
        }
    }
    impl diesel_get_or_create::TransactionError for AppError {
        fn diesel_error(&self) -> Option<&Error> {
            match self {
                AppError::Db(e) => Some(e),
                AppError::OutOfStock => None,
            }
        }
    }
    let db = sqlite::TestDb::new("txn_app_error");
    let mut conn = db.connect();
    let mut runs = 0;
    let result: Result<(), AppError> = diesel_get_or_create::transaction(&mut conn, |c| {
        runs += 1;
        bump(c, "k@txn.test", 1)?;
        Err(AppError::OutOfStock)
    });
    assert!(matches!(result, Err(AppError::OutOfStock)));
    assert_eq!(runs, 1);
    assert_eq!(visits_of(&mut conn, "k@txn.test"), None);
}

mod asynchronous {
    use super::*;
    use diesel_async::{
        AsyncConnection, AsyncMysqlConnection, AsyncPgConnection, RunQueryDsl,
        SimpleAsyncConnection,
    };
    use diesel_get_or_create::asynchronous::prelude::*;
    use diesel_get_or_create_tests::models::User;

    #[tokio::test]
    async fn postgres_serialization_failure_runs_the_transaction_again() {
        let db = pg::TestDb::new("txn_async_serialization");
        let mut a = AsyncPgConnection::establish(&pg::url()).await.unwrap();
        a.batch_execute(&format!(
            "SET search_path TO {}; SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL REPEATABLE READ",
            db.schema
        ))
        .await
        .unwrap();
        let mut b = db.connect();
        bump(&mut b, "k@txn.test", 1).unwrap();
        let mut runs = 0;
        let visits = diesel_get_or_create::asynchronous::transaction(&mut a, async |a| {
            runs += 1;
            users::table.select(users::visits).load::<i32>(a).await?;
            if runs == 1 {
                bump(&mut b, "k@txn.test", 10).unwrap();
            }
            let (user, _) = User::update_or_create_with(
                a,
                users::email.key("k@txn.test"),
                users::visits.eq(users::visits + 1),
                (names("k", "k", "k"), users::visits.eq(1)),
            )
            .await?;
            Ok::<_, Error>(user.visits)
        })
        .await
        .unwrap();
        assert_eq!((runs, visits), (2, 12));
    }

    #[tokio::test]
    async fn mariadb_unique_violation_is_returned_at_once() {
        let db = my::TestDb::new("txn_async_non_retryable");
        let mut a = AsyncMysqlConnection::establish(&my::url_for(&db.database))
            .await
            .unwrap();
        bump(&mut db.connect(), "taken@txn.test", 1).unwrap();
        let mut runs = 0;
        let result = diesel_get_or_create::asynchronous::transaction(&mut a, async |a| {
            runs += 1;
            User::get_or_create(a, users::email.key("new@txn.test"), names("n", "n", "n")).await?;
            diesel::insert_into(users::table)
                .values((users::email.eq("taken@txn.test"), names("d", "d", "d")))
                .execute(a)
                .await
        })
        .await;
        assert!(
            matches!(
                result,
                Err(Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _))
            ),
            "{result:?}"
        );
        assert_eq!(runs, 1);
        assert_eq!(visits_of(&mut db.connect(), "new@txn.test"), None);
    }

    /// The retrying transaction runs inside `tokio::spawn` (its future is
    /// `Send` there), on a connection the task owns, as a web handler does,
    /// with an `async move` closure that owns its key. (With `async |c|`
    /// borrowing the task's `key`, rustc refuses the spawn: "implementation
    /// of `Send` is not general enough".)
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_retrying_transaction_runs_in_a_spawned_task() {
        let db = pg::TestDb::new("txn_async_spawned");
        let url = format!("{}?options=-csearch_path%3D{}", pg::url(), db.schema);
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let url = url.clone();
                tokio::spawn(async move {
                    let mut conn = AsyncPgConnection::establish(&url).await.unwrap();
                    let key = String::from("spawned@txn.test");
                    diesel_get_or_create::asynchronous::transaction(&mut conn, async move |c| {
                        User::update_or_create_with(
                            c,
                            users::email.key(key.as_str()),
                            users::visits.eq(users::visits + 1),
                            (names("s", "s", "s"), users::visits.eq(1)),
                        )
                        .await
                    })
                    .await
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(visits_of(&mut db.connect(), "spawned@txn.test"), Some(4));
    }
}
