//! Behaviour of get_or_create / update_or_create on MariaDB/MySQL: the shared
//! behaviour tests, statement counts, and deterministic two- and
//! three-connection interleavings (lost race, REPEATABLE READ snapshot, row
//! locks, killed connection). Each test has its own database on the server at
//! `GOC_MYSQL_URL`.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::result::Error;
use diesel_get_or_create::prelude::*;
use diesel_get_or_create_tests::models::*;
use diesel_get_or_create_tests::my::*;
use diesel_get_or_create_tests::schema::*;
use diesel_get_or_create_tests::txn;

type Conn = MysqlConnection;

const TAGS_DDL: &str = "CREATE TABLE tags (id INTEGER NOT NULL AUTO_INCREMENT PRIMARY KEY, \
     name VARCHAR(191) NOT NULL UNIQUE, uses INTEGER NOT NULL DEFAULT 0)";

fn is_repeated_column_error(err: &Error) -> bool {
    err.to_string().contains("specified twice")
}

include!("shared/behaviour.rs");

/// MySQL has no partial indexes; a prefix index is its index that enforces
/// something other than the declared constraint.
const UNUSABLE_UNIQUE: (&str, diesel_get_or_create::Unusable) = (
    "CREATE UNIQUE INDEX gadgets_code_prefix ON gadgets (code(4))",
    diesel_get_or_create::Unusable::Prefix,
);
const EXPRESSION_UNIQUE: Option<&str> = None;

include!("shared/constraints.rs");

fn session_id(conn: &mut MysqlConnection) -> u64 {
    thread_id(conn)
}

fn kill_session(admin: &mut MysqlConnection, id: u64) {
    admin.batch_execute(&format!("KILL {id}")).unwrap();
}

/// SELECT (miss), INSERT (waits, then a duplicate), SELECT .. LOCK IN SHARE
/// MODE; inside a transaction also BEGIN and COMMIT.
const LOST_RACE_CASES: &[(&str, bool, usize)] = &[
    ("REPEATABLE READ", false, 3),
    ("REPEATABLE READ", true, 5),
    ("READ COMMITTED", false, 3),
    ("READ COMMITTED", true, 5),
];

const LOCK_ISOLATIONS: &[&str] = &["REPEATABLE READ", "READ COMMITTED"];

/// A connection that gives up waiting for a row lock after 1 s.
fn lock_prober(db: &TestDb) -> MysqlConnection {
    let mut c = db.connect();
    c.batch_execute("SET SESSION innodb_lock_wait_timeout = 1")
        .unwrap();
    c
}

fn locked_read(c: &mut MysqlConnection, email: &str) -> QueryResult<i32> {
    users::table
        .filter(users::email.eq(email))
        .select(users::visits)
        .for_update()
        .get_result(c)
}

fn is_lock_refusal(err: &Error) -> bool {
    err.to_string().contains("Lock wait timeout")
}

include!("shared/interleavings.rs");

#[test]
fn statements_per_call() {
    let db = TestDb::new("my_statements");
    let mut conn = db.connect();
    let counter = StatementCounter::install(&mut conn);
    let ann = || names("ann", "Ann", "Lee");

    let (_, created) = User::get_or_create(&mut conn, users::email.key("ann@x.io"), ann()).unwrap();
    assert!(created);
    let log = counter.statements();
    assert_eq!(
        log.len(),
        3,
        "miss: SELECT, INSERT, SELECT (no RETURNING): {log:?}"
    );
    assert!(
        log[1].starts_with("INSERT INTO `users` (`email`, `username`"),
        "{log:?}"
    );
    assert!(
        !log[1].contains("IGNORE") && !log[1].contains("DUPLICATE"),
        "{log:?}"
    );
    counter.take();
    User::get_or_create(&mut conn, users::email.key("ann@x.io"), ann()).unwrap();
    assert_eq!(counter.take(), 1, "hit: one SELECT");

    let (u, created) = bump(&mut conn, "ann@x.io", 1).unwrap();
    assert_eq!((created, u.visits), (false, 8));
    let log = counter.statements();
    assert_eq!(
        log.len(),
        4,
        "update: BEGIN, UPDATE, SELECT .. FOR UPDATE, COMMIT: {log:?}"
    );
    assert!(log[2].contains("LIMIT 1 FOR UPDATE"), "{log:?}");
    counter.take();
    let (u, created) = bump(&mut conn, "bob@x.io", 1).unwrap();
    assert_eq!((created, u.visits), (true, 1));
    assert_eq!(
        counter.take(),
        7,
        "create: BEGIN, UPDATE (no row), COMMIT, BEGIN, INSERT, SELECT .. FOR UPDATE, COMMIT"
    );

    conn.transaction::<_, Error, _>(|conn| {
        counter.take();
        User::get_or_create(conn, users::email.key("ann@x.io"), ann())?;
        assert_eq!(counter.take(), 1, "hit in a transaction: one SELECT");
        User::get_or_create(conn, users::email.key("cy@x.io"), names("cy", "Cy", "Oh"))?;
        assert_eq!(counter.take(), 3, "miss: SELECT, INSERT, SELECT");
        bump(conn, "cy@x.io", 1)?;
        assert_eq!(
            counter.take(),
            3,
            "update: SELECT, UPDATE, SELECT .. FOR UPDATE"
        );
        bump(conn, "dan@x.io", 1)?;
        assert_eq!(
            counter.take(),
            3,
            "create: SELECT (no row), INSERT, SELECT .. FOR UPDATE"
        );
        Ok(())
    })
    .unwrap();
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
