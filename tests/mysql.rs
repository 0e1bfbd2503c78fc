//! Behaviour of get_or_create / update_or_create on MariaDB/MySQL: the shared
//! behaviour tests, statement counts, and deterministic two- and
//! three-connection interleavings (lost race, REPEATABLE READ snapshot, row
//! locks, killed connection). Each test has its own database on the server at
//! `GOC_MYSQL_URL`.

use diesel::prelude::*;
use diesel::result::Error;
use diesel_get_or_create::prelude::*;
use diesel_get_or_create_tests::models::*;
use diesel_get_or_create_tests::my::*;
use diesel_get_or_create_tests::schema::*;
use diesel_get_or_create_tests::suite;

diesel_get_or_create_tests::suite_tests!(Mysql, behaviour);
diesel_get_or_create_tests::suite_tests!(Mysql, batch);
diesel_get_or_create_tests::suite_tests!(Mysql, batch_update);
diesel_get_or_create_tests::suite_tests!(Mysql, constraints);
diesel_get_or_create_tests::suite_tests!(Mysql, interleavings);

/// The shared statement counts, and the text of the statements:
/// `get_or_create` inserts with a plain INSERT (no `IGNORE`, no `ON DUPLICATE
/// KEY`); `update_or_create` upserts with its key check, then reads the row
/// with a locking read.
#[test]
fn statements_per_call() {
    let logs = suite::behaviour::statements_per_call::<Mysql>();
    let log = &logs.miss;
    assert!(
        log[1].starts_with("INSERT INTO `users` (`email`, `username`"),
        "{log:?}"
    );
    assert!(
        !log[1].contains("IGNORE") && !log[1].contains("DUPLICATE"),
        "{log:?}"
    );
    let log = &logs.update;
    assert!(
        log[1].starts_with("INSERT INTO `users`")
            && log[1].contains(" ON DUPLICATE KEY UPDATE `email` = IF(/*M!100300 @@in_transaction AND */ `email` <=> VALUES(`email`) AND (@diesel_get_or_create_updated := IF(`email` IS NULL, NULL, ?)) IS NOT NULL, `email`, (SELECT 1 UNION ALL SELECT 2)), "),
        "{log:?}"
    );
    assert!(log[2].contains("LIMIT 1 FOR UPDATE"), "{log:?}");
}

/// The case Django gets wrong: at REPEATABLE READ, the caller's transaction
/// took its snapshot before another connection committed the key. A plain
/// read cannot see the row; the insert fails with a duplicate; the call must
/// return the committed row, not the duplicate-key error.
#[test]
fn snapshot_taken_before_the_row_was_committed() {
    let db = TestDb::new("my_snapshot");
    for isolation in ["REPEATABLE READ", "READ COMMITTED"] {
        let email = format!("{}@x.io", isolation.replace(' ', "-"));
        let mut a = db.connect_at(isolation);
        let mut b = db.connect();
        let counter = StatementCounter::install(&mut a);
        let (row, created) = a
            .transaction::<_, Error, _>(|a| {
                let _ = users::table.count().get_result::<i64>(a)?; // the snapshot
                User::get_or_create(
                    &mut b,
                    users::email.key(&*email),
                    names(&email, &email, "B"),
                )
                .unwrap();
                let visible = users::table
                    .filter(users::email.eq(&email))
                    .count()
                    .get_result::<i64>(a)?;
                assert_eq!(
                    visible,
                    i64::from(isolation == "READ COMMITTED"),
                    "{isolation}: a plain read"
                );
                counter.take();
                let result =
                    User::get_or_create(a, users::email.key(&*email), names(&email, &email, "A"));
                let expected = if isolation == "READ COMMITTED" { 1 } else { 3 };
                assert_eq!(counter.take(), expected, "{isolation}");
                result
            })
            .unwrap_or_else(|e| panic!("{isolation}: {e}"));
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

/// MySQL's upsert would match any unique key; the crate's insert path must
/// not touch the row that owns a colliding value of another unique column,
/// even when the key's own row exists but the caller's snapshot cannot see it.
#[test]
fn a_duplicate_in_another_index_is_an_error_unless_the_key_exists() {
    let db = TestDb::new("my_other_index");
    let mut a = db.connect_at("REPEATABLE READ");
    let mut b = db.connect();
    let ann = User::get_or_create(
        &mut b,
        users::email.key("ann@x.io"),
        names("ann", "Ann", "Lee"),
    )
    .unwrap()
    .0;
    // New key, username taken by Ann: an error, Ann untouched, on both paths.
    let err = User::get_or_create(&mut a, users::email.key("zed@x.io"), names("ann", "Z", "Z"))
        .unwrap_err();
    diesel_get_or_create_tests::assert_unique_violation(&err);
    let err = User::update_or_create_with(
        &mut a,
        users::email.key("zed@x.io"),
        users::visits.eq(users::visits + 1),
        names("ann", "Z", "Z"),
    )
    .unwrap_err();
    diesel_get_or_create_tests::assert_unique_violation(&err);
    let all: Vec<User> = users::table.select(User::as_select()).load(&mut b).unwrap();
    assert_eq!(all, vec![ann.clone()]);

    // The key's row committed after A's snapshot, and A's defaults also collide
    // on `username` with Ann: A gets the key's row, not an error.
    a.transaction::<_, Error, _>(|a| {
        let _ = users::table.count().get_result::<i64>(a)?;
        let (zed, _) = User::get_or_create(
            &mut b,
            users::email.key("zed@x.io"),
            names("zed", "Zed", "Z"),
        )
        .unwrap();
        let (row, created) =
            User::get_or_create(a, users::email.key("zed@x.io"), names("ann", "Q", "Q"))?;
        assert_eq!((row, created), (zed, false));
        Ok(())
    })
    .unwrap();
    let again: User = users::table
        .filter(users::id.eq(ann.id))
        .select(User::as_select())
        .first(&mut b)
        .unwrap();
    assert_eq!(again, ann);
}
