//! The integration tests' library: the schema and models, the contract each
//! backend implements ([`backend`]: `sqlite::Sqlite`, `pg::Postgres`,
//! `my::Mysql`), the suites every backend runs as generic functions
//! ([`suite`]), and the race harness ([`race`]). The test targets
//! (`tests/sqlite.rs`, `tests/postgres_race.rs`, ..) instantiate the suites for
//! their backend and hold the tests only that backend has.
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

    diesel::table! {
        /// Not in the backends' `SCHEMA`: the tests that use it create it
        /// (`TestBackend::TAGS_DDL`).
        tags (id) {
            id -> Integer,
            name -> Text,
            uses -> Integer,
        }
    }

    diesel::table! {
        /// Not in the backends' `SCHEMA`: each constraint-check test creates
        /// it with the indexes it checks.
        gadgets (id) {
            id -> Integer,
            code -> Text,
            maker -> Text,
            model -> Text,
            color -> Nullable<Text>,
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

    #[derive(Debug, PartialEq, Queryable, Selectable, GetOrCreate)]
    #[diesel(table_name = tags)]
    pub struct Tag {
        pub id: i32,
        #[unique]
        pub name: String,
        pub uses: i32,
    }

    /// Declares the primary key `id`, `#[unique] code` and `(maker, model)`.
    #[derive(Debug, Queryable, Selectable, GetOrCreate)]
    #[diesel(table_name = gadgets)]
    #[unique_together(maker, model)]
    pub struct Gadget {
        pub id: i32,
        #[unique]
        pub code: String,
        pub maker: String,
        pub model: String,
        pub color: Option<String>,
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

#[cfg(feature = "async")]
pub mod asyncs;
pub mod backend;
pub mod counter;
#[cfg(feature = "mysql")]
pub mod my;
#[cfg(feature = "postgres")]
pub mod pg;
pub mod race;
#[cfg(feature = "sqlite")]
pub mod sqlite;
pub mod suite;

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

/// Open, commit or roll back a transaction the way Diesel's (or
/// diesel-async's) `transaction` does, on any connection of the suites, so
/// that Diesel (and the crate) know it is open. (A raw `BEGIN` sent with
/// `batch_execute` is invisible to Diesel's transaction manager.)
pub mod txn {
    use crate::backend::AsConnRef;
    use diesel::result::Error;
    use diesel::QueryResult;

    pub fn try_begin<C: AsConnRef>(conn: &mut C) -> QueryResult<()> {
        crate::dispatch!(conn, |c| sync::begin(c), async |a| {
            crate::asyncs::txn::begin(a).await
        })
    }

    pub fn try_commit<C: AsConnRef>(conn: &mut C) -> QueryResult<()> {
        crate::dispatch!(conn, |c| sync::commit(c), async |a| {
            crate::asyncs::txn::commit(a).await
        })
    }

    pub fn try_rollback<C: AsConnRef>(conn: &mut C) -> QueryResult<()> {
        crate::dispatch!(conn, |c| sync::rollback(c), async |a| {
            crate::asyncs::txn::rollback(a).await
        })
    }

    pub fn begin<C: AsConnRef>(conn: &mut C) {
        try_begin(conn).unwrap()
    }

    pub fn commit<C: AsConnRef>(conn: &mut C) {
        try_commit(conn).unwrap()
    }

    pub fn rollback<C: AsConnRef>(conn: &mut C) {
        try_rollback(conn).unwrap()
    }

    /// `f` in a transaction, as `Connection::transaction` runs it: committed
    /// if it returns `Ok`, rolled back (and its error returned) if not.
    pub fn transaction<C: AsConnRef, R>(
        conn: &mut C,
        f: impl FnOnce(&mut C) -> QueryResult<R>,
    ) -> QueryResult<R> {
        try_begin(conn)?;
        match f(conn) {
            Ok(value) => {
                try_commit(conn)?;
                Ok(value)
            }
            Err(error) => match try_rollback(conn) {
                Ok(()) | Err(Error::BrokenTransactionManager) => Err(error),
                Err(rollback_error) => Err(rollback_error),
            },
        }
    }

    mod sync {
        use diesel::connection::TransactionManager;
        use diesel::{Connection, QueryResult};

        pub fn begin<C: Connection>(conn: &mut C) -> QueryResult<()> {
            C::TransactionManager::begin_transaction(conn)
        }

        pub fn commit<C: Connection>(conn: &mut C) -> QueryResult<()> {
            C::TransactionManager::commit_transaction(conn)
        }

        pub fn rollback<C: Connection>(conn: &mut C) -> QueryResult<()> {
            C::TransactionManager::rollback_transaction(conn)
        }
    }
}

/// The name of test `name`'s own schema (PostgreSQL) or database (MySQL):
/// `goc_<name>`, or `goc_<run>_<name>` when `GOC_RUN_ID` is set. The test command
/// sets it when the tests run on servers of your choosing (`GOC_PG_URL`,
/// `GOC_MYSQL_URL`), so that two runs on one server keep apart.
pub fn db_name(name: &str) -> String {
    let run = std::env::var("GOC_RUN_ID").unwrap_or_default();
    let name = if run.is_empty() {
        format!("goc_{name}")
    } else {
        format!("goc_{run}_{name}")
    };
    let name = name.replace(|c: char| !c.is_ascii_alphanumeric() && c != '_', "_");
    // PostgreSQL keeps 63 bytes of a name, MySQL refuses more than 64: a longer
    // one is cut and told apart by a hash (FNV-1a) of the whole.
    if name.len() <= 63 {
        return name;
    }
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{}_{hash:016x}", &name[..46])
}

/// Run `sql` (one or more statements, no results) on any connection of the
/// suites.
pub fn exec<C: backend::AsConnRef>(conn: &mut C, sql: &str) -> diesel::QueryResult<()> {
    dispatch!(
        conn,
        |c| diesel::connection::SimpleConnection::batch_execute(c, sql),
        async |a| diesel_async::SimpleAsyncConnection::batch_execute(a, sql).await
    )
}
