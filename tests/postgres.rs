//! Behaviour of get_or_create / update_or_create on PostgreSQL: the shared
//! behaviour tests, statement counts, and deterministic two- and
//! three-connection interleavings (lost race, snapshot, row locks, killed
//! connection). Each test has its own schema on the server at `GOC_PG_URL`.

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error};
use diesel_get_or_create::prelude::*;
use diesel_get_or_create_tests::models::*;
use diesel_get_or_create_tests::pg::*;
use diesel_get_or_create_tests::schema::*;
use diesel_get_or_create_tests::txn;

type Conn = PgConnection;

const TAGS_DDL: &str =
    "CREATE TABLE tags (id SERIAL PRIMARY KEY, name TEXT NOT NULL UNIQUE, uses INTEGER NOT NULL DEFAULT 0)";

fn is_repeated_column_error(err: &Error) -> bool {
    err.to_string().contains("specified more than once")
}

include!("shared/behaviour.rs");

const UNUSABLE_UNIQUE: (&str, diesel_get_or_create::Unusable) = (
    "CREATE UNIQUE INDEX gadgets_code_partial ON gadgets (code) WHERE color IS NOT NULL",
    diesel_get_or_create::Unusable::Partial,
);
const EXPRESSION_UNIQUE: Option<&str> =
    Some("CREATE UNIQUE INDEX gadgets_code_lower ON gadgets (lower(code))");

include!("shared/constraints.rs");

fn session_id(conn: &mut PgConnection) -> u64 {
    backend_pid(conn) as u64
}

fn kill_session(admin: &mut PgConnection, pid: u64) {
    diesel::sql_query("SELECT pg_terminate_backend($1)")
        .bind::<diesel::sql_types::Integer, _>(pid as i32)
        .execute(admin)
        .unwrap();
}

const LOST_RACE_CASES: &[(&str, bool, usize)] = &[
    // SELECT (miss), INSERT (waits, then returns no row), SELECT.
    ("READ COMMITTED", false, 3),
    // BEGIN, SELECT, SAVEPOINT, INSERT, RELEASE, SELECT, COMMIT.
    ("READ COMMITTED", true, 7),
    // SELECT, INSERT (serialization failure), the call runs again: SELECT (hit).
    ("REPEATABLE READ", false, 3),
    ("SERIALIZABLE", false, 3),
];

/// At REPEATABLE READ and above, A cannot update a row committed after its
/// snapshot (see `snapshot_taken_before_the_row_was_committed`).
const LOCK_ISOLATIONS: &[&str] = &["READ COMMITTED"];

fn lock_prober(db: &TestDb) -> PgConnection {
    db.connect()
}

/// `SELECT .. FOR UPDATE NOWAIT`: fails at once if the row is locked.
fn locked_read(c: &mut PgConnection, email: &str) -> QueryResult<i32> {
    users::table
        .filter(users::email.eq(email))
        .select(users::visits)
        .for_update()
        .no_wait()
        .get_result(c)
}

fn is_lock_refusal(err: &Error) -> bool {
    err.to_string().contains("could not obtain lock")
}

include!("shared/interleavings.rs");

fn is_serialization_failure(err: &Error) -> bool {
    matches!(
        err,
        Error::DatabaseError(DatabaseErrorKind::SerializationFailure, _)
    )
}

#[test]
fn statements_per_call() {
    let db = TestDb::new("pg_statements");
    let mut conn = db.connect();
    let counter = StatementCounter::install(&mut conn);
    let ann = || names("ann", "Ann", "Lee");

    let (_, created) = User::get_or_create(&mut conn, users::email.key("ann@x.io"), ann()).unwrap();
    assert!(created);
    assert_eq!(
        counter.take(),
        2,
        "miss: SELECT + INSERT .. ON CONFLICT DO NOTHING RETURNING"
    );
    User::get_or_create(&mut conn, users::email.key("ann@x.io"), ann()).unwrap();
    assert_eq!(counter.take(), 1, "hit: one SELECT");

    let (u, created) = bump(&mut conn, "ann@x.io", 1).unwrap();
    assert_eq!((created, u.visits), (false, 8));
    assert_eq!(
        counter.take(),
        1,
        "update: one INSERT .. ON CONFLICT DO UPDATE RETURNING"
    );
    let (u, created) = bump(&mut conn, "bob@x.io", 1).unwrap();
    assert_eq!((created, u.visits), (true, 1));
    let log = counter.statements();
    assert_eq!(log.len(), 1, "create: the same one statement: {log:?}");
    assert!(
        log[0].contains(r#"ON CONFLICT ("email") DO UPDATE SET "visits" = ("users"."visits" + $"#)
            && log[0].ends_with(r#""users"."nick", (xmax = 0) -- binds: ["bob@x.io", "bob@x.io", "bob@x.io", "L", 1, 1]"#),
        "{log:?}"
    );
    counter.take();

    // Inside the caller's transaction each insert runs in a savepoint.
    conn.transaction::<_, Error, _>(|conn| {
        counter.take();
        User::get_or_create(conn, users::email.key("ann@x.io"), ann())?;
        assert_eq!(counter.take(), 1, "hit in a transaction: one SELECT");
        User::get_or_create(conn, users::email.key("cy@x.io"), names("cy", "Cy", "Oh"))?;
        assert_eq!(
            counter.take(),
            4,
            "miss: SELECT, SAVEPOINT, INSERT, RELEASE"
        );
        bump(conn, "cy@x.io", 1)?;
        assert_eq!(
            counter.take(),
            3,
            "update: SAVEPOINT, INSERT .. DO UPDATE, RELEASE"
        );
        Ok(())
    })
    .unwrap();
}

#[test]
fn created_flag_is_right_for_rows_this_transaction_wrote() {
    let db = TestDb::new("pg_xmax");
    let mut conn = db.connect();
    conn.transaction::<_, Error, _>(|conn| {
        let (u, created) = bump(conn, "ann@x.io", 1)?;
        assert_eq!((created, u.visits), (true, 1));
        let (u, created) = bump(conn, "ann@x.io", 1)?;
        assert_eq!(
            (created, u.visits),
            (false, 2),
            "updated a row inserted by this transaction"
        );
        let (u, created) = bump(conn, "ann@x.io", 1)?;
        assert_eq!((created, u.visits), (false, 3), "updated it a second time");
        let (_, created) =
            User::get_or_create(conn, users::email.key("bob@x.io"), names("bob", "B", "B"))?;
        assert!(created);
        let (u, created) = bump(conn, "bob@x.io", 5)?;
        assert_eq!((created, u.visits), (false, 12));
        Ok(())
    })
    .unwrap();
    // A row locked (not updated) by this transaction before the upsert.
    conn.transaction::<_, Error, _>(|conn| {
        users::table
            .filter(users::email.eq("ann@x.io"))
            .for_update()
            .execute(conn)?;
        let (u, created) = bump(conn, "ann@x.io", 1)?;
        assert_eq!((created, u.visits), (false, 4));
        Ok(())
    })
    .unwrap();
}

/// The caller's transaction took its snapshot before another connection
/// committed the key. READ COMMITTED finds the row; REPEATABLE READ and
/// SERIALIZABLE cannot see it and must not return a wrong row or a duplicate:
/// they fail with a serialization failure, and the transaction run again
/// finds the row.
#[test]
fn snapshot_taken_before_the_row_was_committed() {
    let db = TestDb::new("pg_snapshot");
    for isolation in ["READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE"] {
        let email = format!("{}@x.io", isolation.replace(' ', "-"));
        let mut a = db.connect_at(isolation);
        let mut b = db.connect();
        let mut runs = 0;
        let (row, created) = a
            .transaction::<_, Error, _>(|a| {
                runs += 1;
                let _ = users::table.count().get_result::<i64>(a)?; // the snapshot
                if runs == 1 {
                    User::get_or_create(
                        &mut b,
                        users::email.key(&*email),
                        names(&email, &email, "B"),
                    )
                    .unwrap();
                }
                let result =
                    User::get_or_create(a, users::email.key(&*email), names(&email, &email, "A"));
                if isolation != "READ COMMITTED" && runs == 1 {
                    let err = result.as_ref().unwrap_err();
                    assert!(is_serialization_failure(err), "{isolation}: {err:?}");
                    // The savepoint was rolled back: the transaction is usable, but
                    // its snapshot is stale: the caller runs it again.
                    users::table.count().get_result::<i64>(a)?;
                }
                result
            })
            .or_else(|e| {
                assert!(is_serialization_failure(&e));
                a.transaction(|a| {
                    User::get_or_create(a, users::email.key(&*email), names(&email, &email, "A"))
                })
            })
            .unwrap();
        assert!(!created, "{isolation}");
        assert_eq!(row.last_name, "B", "{isolation}: the committed row");
        let n: i64 = users::table
            .filter(users::email.eq(&email))
            .count()
            .get_result(&mut b)
            .unwrap();
        assert_eq!(n, 1, "{isolation}");
    }
}

#[test]
fn an_error_in_a_savepoint_leaves_the_callers_transaction_usable() {
    let db = TestDb::new("pg_savepoint");
    let mut conn = db.connect();
    User::get_or_create(
        &mut conn,
        users::email.key("ann@x.io"),
        names("ann", "Ann", "Lee"),
    )
    .unwrap();
    conn.transaction::<_, Error, _>(|conn| {
        let err = User::update_or_create_with(
            conn,
            users::email.key("carl@x.io"),
            users::visits.eq(users::visits + 1),
            names("ann", "Carl", "Oz"),
        )
        .unwrap_err();
        diesel_get_or_create_tests::assert_unique_violation(&err);
        // PostgreSQL would refuse every further statement without the savepoint.
        let (_, created) = bump(conn, "dan@x.io", 1)?;
        assert!(created);
        Ok(())
    })
    .unwrap();
    let n: i64 = users::table.count().get_result(&mut conn).unwrap();
    assert_eq!(n, 2);
}
