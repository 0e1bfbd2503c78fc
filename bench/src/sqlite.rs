//! SQLite: a WAL database file per strategy (the test suite's `TestDb`:
//! `busy_timeout = 30000`, `synchronous = NORMAL`).

use diesel::connection::SimpleConnection;
use diesel_get_or_create_tests::sqlite::TestDb;

crate::common_ops!(diesel::SqliteConnection);
crate::returning_upserts!();

/// The `users` table without its unique constraints, for the naive strategy
/// (email indexed, so lookups cost the same).
const NAIVE_USERS: &str = "
    DROP TABLE users;
    CREATE TABLE users (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        email TEXT NOT NULL,
        username TEXT NOT NULL,
        first_name TEXT NOT NULL,
        last_name TEXT NOT NULL,
        visits INTEGER NOT NULL DEFAULT 7,
        nick TEXT
    );
    CREATE INDEX users_email ON users (email);";

/// A fresh database, removed on drop.
pub struct Db(TestDb);

impl Db {
    /// A new database named after `name`; without the unique indexes of
    /// `users` unless `unique_indexes`.
    pub fn new(name: &str, unique_indexes: bool) -> Db {
        let db = TestDb::new(name);
        if !unique_indexes {
            db.connect().batch_execute(NAIVE_USERS).unwrap();
        }
        Db(db)
    }
    /// The database file's path.
    pub fn path(&self) -> &str {
        self.0.path.to_str().expect("temporary path is UTF-8")
    }

    /// A new connection. SQLite has one isolation level (serializable):
    /// `isolation` is ignored.
    pub fn connect(&self, _isolation: Option<&str>) -> Conn {
        self.0.connect()
    }
}

/// The strategies compared under contention.
pub fn strategies() -> Vec<crate::Strategy<Conn>> {
    vec![crate_strategy(), naive_strategy(), upsert_strategy()]
}
