//! MariaDB/MySQL: a database per strategy on the server at `GOC_MYSQL_URL`
//! (the test suite's `my::TestDb`, named `goc_bench_*`).
//!
//! Diesel's MySQL connection has no `RETURNING`, so the best hand-written
//! equivalents take a second statement to read the row.

use diesel::connection::SimpleConnection;
use diesel::result::{DatabaseErrorKind, Error};
use diesel_get_or_create_tests::my::TestDb;

crate::common_ops!(diesel::MysqlConnection);

/// Turns `users` into a table without unique indexes, for the naive strategy
/// (email indexed, so lookups cost the same).
const DROP_UNIQUE: &str = "
    ALTER TABLE users
        DROP INDEX email,
        DROP INDEX username,
        DROP INDEX first_name,
        ADD INDEX users_email (email)";

/// Hand-written `get_or_create`: `INSERT`, then `SELECT` the row (whether
/// the insert created it or failed on the key's unique index).
pub fn hand_get(conn: &mut Conn, key: &str) -> QueryResult<(User, bool)> {
    let inserted = diesel::insert_into(users::table)
        .values((
            users::email.eq(key),
            names(key, key, "B"),
            users::visits.eq(0),
        ))
        .execute(conn);
    match inserted {
        Ok(_) => Ok((hand_hit(conn, key)?, true)),
        Err(Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
            Ok((hand_hit(conn, key)?, false))
        }
        Err(e) => Err(e),
    }
}

/// Hand-written `update_or_create`:
/// `INSERT .. ON DUPLICATE KEY UPDATE visits = visits + 1`, then `SELECT`
/// the row, outside a transaction (so the row read may already carry a
/// concurrent caller's update). `created` is always false.
pub fn hand_increment(conn: &mut Conn, key: &str) -> QueryResult<(User, bool)> {
    diesel::insert_into(users::table)
        .values((
            users::email.eq(key),
            names(key, key, "B"),
            users::visits.eq(1),
        ))
        .on_conflict(diesel::dsl::DuplicatedKeys)
        .do_update()
        .set(users::visits.eq(users::visits + 1))
        .execute(conn)?;
    Ok((hand_hit(conn, key)?, false))
}

/// [`hand_increment`] inside a transaction (`BEGIN`, upsert, `SELECT`,
/// `COMMIT`): the row read is the row written, as the crate guarantees.
pub fn hand_increment_txn(conn: &mut Conn, key: &str) -> QueryResult<(User, bool)> {
    conn.transaction(|conn| hand_increment(conn, key))
}

/// A fresh database, dropped on drop.
pub struct Db(TestDb);

impl Db {
    /// A new database named after `name`; without the unique indexes of
    /// `users` unless `unique_indexes`.
    pub fn new(name: &str, unique_indexes: bool) -> Db {
        let db = TestDb::new(name);
        if !unique_indexes {
            db.connect().batch_execute(DROP_UNIQUE).unwrap();
        }
        Db(db)
    }
    /// The database's name.
    pub fn database(&self) -> &str {
        &self.0.database
    }

    /// A new connection, at `isolation` if given (`REPEATABLE READ` or
    /// `READ COMMITTED`), else the server's default.
    pub fn connect(&self, isolation: Option<&str>) -> Conn {
        match isolation {
            Some(level) => self.0.connect_at(level),
            None => self.0.connect(),
        }
    }
}

/// The hand-written upsert strategy (`ON DUPLICATE KEY UPDATE`).
pub fn upsert_strategy() -> crate::Strategy<Conn> {
    crate::Strategy {
        name: "hand-written upsert",
        get: hand_get,
        increment: hand_increment,
        unique_indexes: true,
    }
}

/// The strategies compared under contention.
pub fn strategies() -> Vec<crate::Strategy<Conn>> {
    vec![crate_strategy(), naive_strategy(), upsert_strategy()]
}

/// Nothing to set on a timed connection (MariaDB needs no checkpoint
/// schedule; see `sqlite::checkpoint_on_schedule`).
pub fn checkpoint_on_schedule(_conn: &mut Conn) {}

/// Nothing to do between timed calls (see `sqlite::maintain`).
pub fn maintain(_conn: &mut Conn, _calls: u64) {}
