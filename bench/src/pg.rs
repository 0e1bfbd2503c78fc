//! PostgreSQL: a schema per strategy on the server at `GOC_PG_URL` (the test
//! suite's `pg::TestDb`, named `goc_bench_*`).

use diesel::connection::SimpleConnection;
use diesel_get_or_create_tests::pg::TestDb;

crate::common_ops!(diesel::PgConnection);
crate::returning_upserts!();

/// Turns `users` into a table without unique constraints, for the naive
/// strategy (email indexed, so lookups cost the same).
const DROP_UNIQUE: &str = "
    ALTER TABLE users
        DROP CONSTRAINT users_email_key,
        DROP CONSTRAINT users_username_key,
        DROP CONSTRAINT users_first_name_last_name_key;
    CREATE INDEX users_email ON users (email);";

/// A fresh schema, dropped on drop.
pub struct Db(TestDb);

impl Db {
    /// A new schema named after `name`; without the unique indexes of
    /// `users` unless `unique_indexes`.
    pub fn new(name: &str, unique_indexes: bool) -> Db {
        let db = TestDb::new(name);
        if !unique_indexes {
            db.connect().batch_execute(DROP_UNIQUE).unwrap();
        }
        Db(db)
    }
    /// The schema's name.
    pub fn schema(&self) -> &str {
        &self.0.schema
    }

    /// A new connection, at `isolation` if given (`READ COMMITTED`,
    /// `REPEATABLE READ` or `SERIALIZABLE`), else the server's default.
    pub fn connect(&self, isolation: Option<&str>) -> Conn {
        match isolation {
            Some(level) => self.0.connect_at(level),
            None => self.0.connect(),
        }
    }
}

/// The strategies compared under contention.
pub fn strategies() -> Vec<crate::Strategy<Conn>> {
    vec![crate_strategy(), naive_strategy(), upsert_strategy()]
}

/// Nothing to set on a timed connection (PostgreSQL needs no checkpoint
/// schedule; see `sqlite::checkpoint_on_schedule`).
pub fn checkpoint_on_schedule(_conn: &mut Conn) {}

/// Nothing to do between timed calls (see `sqlite::maintain`).
pub fn maintain(_conn: &mut Conn, _calls: u64) {}
