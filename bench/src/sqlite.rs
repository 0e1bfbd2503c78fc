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

/// Writes between two WAL checkpoints in [`maintain`].
const CHECKPOINT_EVERY: u64 = 256;

/// Make a timed connection checkpoint its WAL on a fixed schedule.
///
/// SQLite runs its automatic checkpoint only when a statement is stepped to
/// its end. Diesel's `get_result` reads one row and resets the statement, so
/// a connection that only runs `INSERT .. RETURNING` (the hand-written
/// upsert) never checkpoints, and its WAL grows without bound (17,558 pages
/// after 3000 inserts, against 739 for the crate, whose `SELECT` of a miss
/// finds no row, runs to its end and checkpoints: `profile-miss`). Timed
/// that way, the crate paid for every checkpoint of the benchmark and the
/// hand-written side for none. Here automatic checkpoints are off, and
/// [`maintain`] checkpoints every [`CHECKPOINT_EVERY`] calls of either side.
pub fn checkpoint_on_schedule(conn: &mut Conn) {
    conn.batch_execute("PRAGMA wal_autocheckpoint = 0").unwrap();
}

/// Called after every timed call (`calls` so far, for this side): a passive
/// WAL checkpoint every [`CHECKPOINT_EVERY`] calls, the same for every side.
pub fn maintain(conn: &mut Conn, calls: u64) {
    if calls.is_multiple_of(CHECKPOINT_EVERY) {
        conn.batch_execute("PRAGMA wal_checkpoint(PASSIVE)")
            .unwrap();
    }
}

/// The strategies compared under contention.
pub fn strategies() -> Vec<crate::Strategy<Conn>> {
    vec![crate_strategy(), naive_strategy(), upsert_strategy()]
}
