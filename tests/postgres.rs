//! Behaviour of get_or_create / update_or_create on PostgreSQL: the shared
//! behaviour tests, statement counts, and deterministic two- and
//! three-connection interleavings (lost race, snapshot, row locks, killed
//! connection). Each test has its own schema on the server at `GOC_PG_URL`.

use diesel::prelude::*;
use diesel::result::Error;
use diesel_get_or_create::prelude::*;
use diesel_get_or_create_tests::models::*;
use diesel_get_or_create_tests::pg::*;
use diesel_get_or_create_tests::race::is_serialization_failure;
use diesel_get_or_create_tests::schema::*;
use diesel_get_or_create_tests::suite::{self, bump};

diesel_get_or_create_tests::suite_tests!(Postgres, behaviour);
diesel_get_or_create_tests::suite_tests!(Postgres, batch);
diesel_get_or_create_tests::suite_tests!(Postgres, batch_update);
diesel_get_or_create_tests::suite_tests!(Postgres, constraints);
diesel_get_or_create_tests::suite_tests!(Postgres, constraints: [drift_an_expression_index_does_not_count]);
diesel_get_or_create_tests::suite_tests!(Postgres, interleavings);

/// The shared statement counts, and the text of the one upsert statement.
#[test]
fn statements_per_call() {
    let logs = suite::behaviour::statements_per_call::<Postgres>();
    let log = &logs.create;
    assert!(
        log[0].contains(r#"ON CONFLICT ("email") DO UPDATE SET "visits" = ("users"."visits" + $"#)
            && log[0].ends_with(r#""users"."nick", (xmax = 0) -- binds: ["bob@x.io", "bob@x.io", "bob@x.io", "L", 1, 1]"#),
        "{log:?}"
    );
    let log = &logs.miss;
    assert!(
        log[0].starts_with(r#"SELECT "users"."id""#)
            && log[1].contains(r#"ON CONFLICT ("email") DO NOTHING RETURNING"#),
        "{log:?}"
    );
}

/// A hit inserts nothing: no sequence value is consumed, so the next row
/// created takes the next id.
#[test]
fn a_hit_consumes_no_sequence_value() {
    let db = TestDb::new("pg_sequence");
    let mut conn = db.connect();
    let get = |conn: &mut PgConnection, email: &str| {
        User::get_or_create(conn, users::email.key(email), names(email, email, "S")).unwrap()
    };
    let (ann, created) = get(&mut conn, "ann@x.io");
    assert!(created);
    for _ in 0..5 {
        assert_eq!(get(&mut conn, "ann@x.io"), (ann.clone(), false));
    }
    let (bob, created) = get(&mut conn, "bob@x.io");
    assert!(created);
    assert_eq!(bob.id, ann.id + 1, "five hits took no sequence value");
}

/// Values that render `DEFAULT` (an `Option` field that is `None`): the
/// column takes its default.
#[test]
fn get_or_create_with_default_in_its_values_inserts_the_column_default() {
    let db = TestDb::new("pg_default_values");
    let mut conn = db.connect();
    let counter = StatementCounter::install(&mut conn);
    let defaults = UserDefaults {
        username: "ann",
        first_name: "Ann",
        last_name: "Lee",
        visits: None,
    };
    let (ann, created) =
        User::get_or_create(&mut conn, users::email.key("ann@x.io"), &defaults).unwrap();
    assert_eq!((created, ann.visits), (true, 7), "the column default");
    let log = counter.statements();
    assert_eq!(counter.take(), 2, "{log:?}");
    assert!(
        log[1].contains("VALUES ($1, $2, $3, $4, DEFAULT)"),
        "{log:?}"
    );
    let (again, created) =
        User::get_or_create(&mut conn, users::email.key("ann@x.io"), &defaults).unwrap();
    assert_eq!((again, created), (ann, false));
    assert_eq!(counter.take(), 1, "a hit is one SELECT");
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
