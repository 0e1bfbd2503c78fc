//! Behaviour of get_or_create / update_or_create on SQLite (file database):
//! the shared behaviour and constraint-check suites, statement counts, and
//! what only SQLite has (a lost race forced by a trigger).

use diesel::prelude::*;
use diesel_get_or_create::prelude::*;
use diesel_get_or_create_tests::models::*;
use diesel_get_or_create_tests::schema::*;
use diesel_get_or_create_tests::sqlite::*;
use diesel_get_or_create_tests::suite::{self, count_users};

diesel_get_or_create_tests::suite_tests!(Sqlite, behaviour);
diesel_get_or_create_tests::suite_tests!(Sqlite, batch);
diesel_get_or_create_tests::suite_tests!(Sqlite, batch_update);
diesel_get_or_create_tests::suite_tests!(Sqlite, constraints);
diesel_get_or_create_tests::suite_tests!(Sqlite, constraints: [drift_an_expression_index_does_not_count]);

#[test]
fn statements_per_call() {
    suite::behaviour::statements_per_call::<Sqlite>();
}

#[test]
fn the_rendered_statements_target_only_the_key_constraint() {
    let db = TestDb::new("sql");
    let mut conn = db.connect();
    let counter = StatementCounter::install(&mut conn);
    counter.take();
    User::get_or_create(
        &mut conn,
        (users::last_name.key("Lee"), users::first_name.key("Ann")),
        (users::email.eq("ann@x.io"), users::username.eq("ann")),
    )
    .unwrap();
    let log = counter.log.lock().unwrap().clone();
    assert_eq!(log.len(), 2, "{log:?}");
    assert!(log[0].starts_with("SELECT "), "{log:?}");
    assert!(log[0].contains("LIMIT 1"), "{log:?}");
    assert!(
        log[1].starts_with("INSERT INTO `users`") || log[1].starts_with("INSERT INTO \"users\""),
        "{log:?}"
    );
    assert!(
        log[1].contains("ON CONFLICT (`last_name`, `first_name`) DO NOTHING RETURNING")
            || log[1].contains("ON CONFLICT (\"last_name\", \"first_name\") DO NOTHING RETURNING"),
        "{log:?}"
    );
}

#[test]
fn pooled_connections_from_r2d2_race_like_plain_ones() {
    use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool};
    #[derive(Debug)]
    struct BusyTimeout;
    impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for BusyTimeout {
        fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
            diesel::connection::SimpleConnection::batch_execute(
                conn,
                "PRAGMA busy_timeout = 30000;",
            )
            .map_err(diesel::r2d2::Error::QueryError)
        }
    }
    let db = TestDb::new("pool");
    let pool = Pool::builder()
        .max_size(8)
        .connection_customizer(Box::new(BusyTimeout))
        .build(ConnectionManager::<SqliteConnection>::new(
            db.path.to_str().unwrap(),
        ))
        .unwrap();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let mut conn = pool.get().unwrap();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                User::get_or_create(
                    &mut conn,
                    users::email.key("pool@x.io"),
                    names("pool", "P", "Q"),
                )
                .map(|(u, created)| (u.id, created))
            })
        })
        .collect();
    let results: Vec<(i32, bool)> = handles
        .into_iter()
        .map(|h| h.join().unwrap().unwrap())
        .collect();
    assert_eq!(results.iter().filter(|(_, created)| *created).count(), 1);
    assert!(results.iter().all(|(id, _)| *id == results[0].0));
    assert_eq!(count_users(&mut *pool.get().unwrap()), 1);
}

#[test]
fn a_declared_constraint_missing_from_the_database_is_an_error_not_a_duplicate() {
    // The model says `name` is unique; this table has no such index.
    let db = TestDb::new("missing-index");
    let mut conn = db.connect();
    diesel::sql_query("CREATE TABLE tags (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, uses INTEGER NOT NULL DEFAULT 0)")
        .execute(&mut conn)
        .unwrap();
    let err = Tag::get_or_create(&mut conn, tags::name.key("rust"), ()).unwrap_err();
    assert!(
        err.to_string()
            .contains("ON CONFLICT clause does not match any PRIMARY KEY or UNIQUE constraint"),
        "{err}"
    );
    let rows: i64 = tags::table.count().get_result(&mut conn).unwrap();
    assert_eq!(rows, 0);
}

diesel::table! {
    readings (id) {
        id -> Integer,
        site -> Text,
        sensor -> Integer,
        year -> Integer,
        month -> Integer,
        day -> Integer,
        hour -> Integer,
        value -> Double,
    }
}

#[derive(Debug, PartialEq, Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = readings)]
#[unique_together(site, sensor, year, month, day, hour)]
struct Reading {
    id: i32,
    site: String,
    sensor: i32,
    year: i32,
    month: i32,
    day: i32,
    hour: i32,
    value: f64,
}

#[test]
fn six_column_key_in_any_order() {
    let db = TestDb::new("six");
    let mut conn = db.connect();
    diesel::sql_query(
        "CREATE TABLE readings (id INTEGER PRIMARY KEY AUTOINCREMENT, site TEXT NOT NULL,
         sensor INTEGER NOT NULL, year INTEGER NOT NULL, month INTEGER NOT NULL,
         day INTEGER NOT NULL, hour INTEGER NOT NULL, value DOUBLE NOT NULL,
         UNIQUE (site, sensor, year, month, day, hour))",
    )
    .execute(&mut conn)
    .unwrap();
    let (r, created) = Reading::get_or_create(
        &mut conn,
        (
            readings::site.key("north"),
            readings::sensor.key(4),
            readings::year.key(2026),
            readings::month.key(11),
            readings::day.key(22),
            readings::hour.key(9),
        ),
        readings::value.eq(1.5),
    )
    .unwrap();
    assert!(created);
    let (again, created) = Reading::update_or_create(
        &mut conn,
        (
            readings::hour.key(9),
            readings::day.key(22),
            readings::month.key(11),
            readings::year.key(2026),
            readings::sensor.key(4),
            readings::site.key("north"),
        ),
        readings::value.eq(2.5),
    )
    .unwrap();
    assert!(!created);
    assert_eq!((again.id, again.value), (r.id, 2.5));
}

/// Forces the lost race deterministically: a trigger inserts the same key
/// just before our insert, as a concurrent caller committing between our
/// `SELECT` (or `UPDATE`) and our `INSERT` would.
fn with_racing_trigger(conn: &mut SqliteConnection) {
    diesel::sql_query(
        "CREATE TRIGGER racing_insert BEFORE INSERT ON users
         WHEN NEW.email = 'race@x.io' AND NEW.username <> 'winner'
         BEGIN
             INSERT INTO users (email, username, first_name, last_name, visits)
             VALUES ('race@x.io', 'winner', 'Win', 'Ner', 10);
         END",
    )
    .execute(conn)
    .unwrap();
}

#[test]
fn lost_race_returns_the_winners_row_in_three_statements() {
    let db = TestDb::new("lost-race");
    let mut conn = db.connect();
    with_racing_trigger(&mut conn);
    let counter = StatementCounter::install(&mut conn);
    let (user, created) = User::get_or_create(
        &mut conn,
        users::email.key("race@x.io"),
        names("loser", "Lo", "Ser"),
    )
    .unwrap();
    assert!(!created);
    assert_eq!((user.username.as_str(), user.visits), ("winner", 10));
    assert_eq!(
        counter.take(),
        3,
        "SELECT (miss) + INSERT (conflict) + SELECT"
    );
    assert_eq!(count_users(&mut conn), 1);
}

#[test]
fn lost_race_on_update_or_create_updates_the_winners_row() {
    let db = TestDb::new("lost-race-update");
    let mut conn = db.connect();
    with_racing_trigger(&mut conn);
    let counter = StatementCounter::install(&mut conn);
    let (user, created) = User::update_or_create_with(
        &mut conn,
        users::email.key("race@x.io"),
        users::visits.eq(users::visits + 1),
        (
            users::username.eq("loser"),
            users::first_name.eq("Lo"),
            users::last_name.eq("Ser"),
            users::visits.eq(1),
        ),
    )
    .unwrap();
    assert!(!created);
    assert_eq!(
        (user.username.as_str(), user.visits),
        ("winner", 11),
        "the winner's row, incremented"
    );
    assert_eq!(
        counter.take(),
        3,
        "UPDATE (no row) + INSERT (conflict) + UPDATE"
    );
    assert_eq!(count_users(&mut conn), 1);
}
