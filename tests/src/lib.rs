//! Shared schema, models and helpers for the integration tests.
#![allow(missing_docs)]

pub mod schema {
    diesel::table! {
        users (id) {
            id -> Integer,
            email -> Text,
            username -> Text,
            first_name -> Text,
            last_name -> Text,
            visits -> Integer,
            nick -> Nullable<Text>,
        }
    }

    diesel::table! {
        /// A composite primary key and a renamed column.
        memberships (org_id, user_name) {
            org_id -> Integer,
            user_name -> Text,
            role -> Text,
            #[sql_name = "seat"]
            seat_no -> Integer,
        }
    }

    diesel::table! {
        /// A unique pair whose columns have other SQL types, and a nullable unique column.
        devices (id) {
            id -> Integer,
            vendor -> Text,
            serial -> BigInt,
            label -> Nullable<Text>,
            pings -> Integer,
        }
    }
}

pub mod models {
    use crate::schema::*;
    use diesel::prelude::*;
    use diesel_get_or_create::prelude::*;

    #[derive(Debug, Clone, PartialEq, Queryable, Selectable, GetOrCreate)]
    #[diesel(table_name = users)]
    #[unique_together(first_name, last_name)]
    pub struct User {
        pub id: i32,
        #[unique]
        pub email: String,
        #[unique]
        pub username: String,
        pub first_name: String,
        pub last_name: String,
        pub visits: i32,
        pub nick: Option<String>,
    }

    #[derive(Debug, Clone, PartialEq, Queryable, Selectable, GetOrCreate)]
    #[diesel(table_name = memberships, primary_key(org_id, user_name))]
    pub struct Membership {
        #[diesel(column_name = org_id)]
        pub org: i32,
        #[diesel(column_name = user_name)]
        pub user: String,
        pub role: String,
        #[diesel(column_name = seat_no)]
        pub seat: i32,
    }

    #[derive(Debug, Clone, PartialEq, Queryable, Selectable, GetOrCreate)]
    #[diesel(table_name = devices)]
    #[unique_together(vendor, serial)]
    pub struct Device {
        pub id: i32,
        pub vendor: String,
        pub serial: i64,
        #[unique]
        pub label: Option<String>,
        pub pings: i32,
    }

    /// `(username, first_name, last_name)` assignments, as `names` returns them.
    pub type Names<'a> = (
        diesel::dsl::Eq<users::username, &'a str>,
        diesel::dsl::Eq<users::first_name, &'a str>,
        diesel::dsl::Eq<users::last_name, &'a str>,
    );

    /// The usual defaults of a test user: `(username, first_name, last_name)`.
    pub fn names<'a>(username: &'a str, first_name: &'a str, last_name: &'a str) -> Names<'a> {
        (
            users::username.eq(username),
            users::first_name.eq(first_name),
            users::last_name.eq(last_name),
        )
    }

    /// Defaults as a derived `Insertable` struct, with an `Option` field
    /// that Diesel renders as the column's default when `None`.
    #[derive(Debug, Clone, Insertable, AsChangeset)]
    #[diesel(table_name = users)]
    pub struct UserDefaults<'a> {
        pub username: &'a str,
        pub first_name: &'a str,
        pub last_name: &'a str,
        pub visits: Option<i32>,
    }
}

pub mod counter;
#[cfg(feature = "mysql")]
pub mod my;
#[cfg(feature = "postgres")]
pub mod pg;
pub mod race;

#[cfg(feature = "sqlite")]
pub mod sqlite {
    pub use crate::counter::StatementCounter;
    use diesel::prelude::*;
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicUsize, Ordering};

    pub const SCHEMA: &str = "
        CREATE TABLE users (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            email TEXT NOT NULL UNIQUE,
            username TEXT NOT NULL UNIQUE,
            first_name TEXT NOT NULL,
            last_name TEXT NOT NULL,
            visits INTEGER NOT NULL DEFAULT 7,
            nick TEXT,
            UNIQUE (first_name, last_name)
        );
        CREATE TABLE memberships (
            org_id INTEGER NOT NULL,
            user_name TEXT NOT NULL,
            role TEXT NOT NULL,
            seat INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (org_id, user_name)
        );
        CREATE TABLE devices (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            vendor TEXT NOT NULL,
            serial BIGINT NOT NULL,
            label TEXT UNIQUE,
            pings INTEGER NOT NULL DEFAULT 0,
            UNIQUE (vendor, serial)
        );";

    /// A fresh database file, removed (with its WAL files) on drop.
    pub struct TestDb {
        pub path: PathBuf,
    }

    impl TestDb {
        pub fn new(name: &str) -> TestDb {
            static SEQ: AtomicUsize = AtomicUsize::new(0);
            let path = std::env::temp_dir().join(format!(
                "dgoc-{name}-{}-{}.sqlite",
                std::process::id(),
                SEQ.fetch_add(1, Ordering::Relaxed)
            ));
            remove(&path);
            let db = TestDb { path };
            let mut conn = db.connect();
            // WAL is a property of the file: set it once, before any other
            // connection exists (switching it needs an exclusive lock).
            diesel::connection::SimpleConnection::batch_execute(
                &mut conn,
                "PRAGMA journal_mode = WAL;",
            )
            .unwrap();
            diesel::connection::SimpleConnection::batch_execute(&mut conn, SCHEMA).unwrap();
            db
        }

        /// A new connection to the (WAL) database file, with a busy timeout,
        /// so writers queue instead of failing.
        pub fn connect(&self) -> SqliteConnection {
            connect(&self.path)
        }
    }

    pub fn connect(path: &Path) -> SqliteConnection {
        let mut conn = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
        diesel::connection::SimpleConnection::batch_execute(
            &mut conn,
            "PRAGMA busy_timeout = 30000; PRAGMA synchronous = NORMAL;",
        )
        .unwrap();
        conn
    }

    fn remove(path: &Path) {
        for suffix in ["", "-wal", "-shm"] {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }

    impl Drop for TestDb {
        fn drop(&mut self) {
            remove(&self.path);
        }
    }
}

/// Panics unless `err` is a unique violation (on any unique index).
#[track_caller]
pub fn assert_unique_violation(err: &diesel::result::Error) {
    use diesel::result::{DatabaseErrorKind, Error};
    assert!(
        matches!(
            err,
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _)
        ),
        "expected a unique violation, got {err:?}"
    );
}

/// The README's Rust examples, compiled and run as doctests.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// Open, commit or roll back a transaction the way Diesel's `transaction`
/// does, so that Diesel (and the crate) know it is open. (A raw `BEGIN` sent
/// with `batch_execute` is invisible to Diesel's transaction manager.)
pub mod txn {
    use diesel::connection::TransactionManager;
    use diesel::Connection;

    pub fn begin<C: Connection>(conn: &mut C) {
        C::TransactionManager::begin_transaction(conn).unwrap()
    }

    pub fn commit<C: Connection>(conn: &mut C) {
        C::TransactionManager::commit_transaction(conn).unwrap()
    }

    pub fn rollback<C: Connection>(conn: &mut C) {
        C::TransactionManager::rollback_transaction(conn).unwrap()
    }
}
