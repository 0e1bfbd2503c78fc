//! Atomic, compile-time-checked `get_or_create` and `update_or_create` for
//! Diesel models.
//!
//! A "get or create" written as a read followed by an insert fails under
//! concurrency: two callers that both miss insert two rows when no unique
//! constraint covers the lookup (and from then on every lookup finds
//! "multiple rows"), and with one, the caller that loses the race
//! gets a duplicate-key error instead of the row. This crate lets the database
//! decide who inserts, and refuses at compile time a lookup that no unique
//! constraint covers.
//!
//! `#[derive(GetOrCreate)]` goes on a Diesel model (`Queryable` +
//! `Selectable`). It reads the model's uniqueness constraints (`#[unique]`
//! fields, `#[unique_together(a, b)]` on the struct, and the primary key) and
//! gives the model [`GetOrCreate`], whose operations take a lookup key that must
//! name exactly the columns of one of those constraints, or the call does not
//! compile.
//!
//! ```
//! use diesel::prelude::*;
//! use diesel_get_or_create::prelude::*;
//!
//! diesel::table! {
//!     tags (id) {
//!         id -> Integer,
//!         name -> Text,
//!         uses -> Integer,
//!     }
//! }
//!
//! #[derive(Queryable, Selectable, GetOrCreate)]
//! #[diesel(table_name = tags)]
//! struct Tag {
//!     id: i32,
//!     #[unique]
//!     name: String,
//!     uses: i32,
//! }
//!
//! # fn main() -> QueryResult<()> {
//! let mut conn = SqliteConnection::establish(":memory:").unwrap();
//! diesel::sql_query("CREATE TABLE tags (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, uses INTEGER NOT NULL)")
//!     .execute(&mut conn)?;
//! let (tag, created) = Tag::update_or_create_with(
//!     &mut conn,
//!     tags::name.key("rust"),
//!     tags::uses.eq(tags::uses + 1),
//!     tags::uses.eq(1),
//! )?;
//! assert_eq!((tag.uses, created), (1, true));
//! let (tag, created) = Tag::get_or_create(&mut conn, tags::name.key("rust"), ())?;
//! assert_eq!((tag.uses, created), (1, false));
//! # Ok(())
//! # }
//! ```
//!
//! # Operations
//!
//! `use diesel_get_or_create::prelude::*;` brings in the derive, the [`GetOrCreate`] trait and
//! `.key()`. Every operation returns the row, as the model, and `true` if this call inserted
//! it: `QueryResult<(Model, bool)>`, or a `Vec` of them in input order for the batch forms.
//!
//! | operation | what happens | batch form (many keys at once) |
//! |---|---|---|
//! | [`get_or_create(conn, key, defaults)`](GetOrCreate::get_or_create) | returns the row with `key`; if there is none, inserts `key` + `defaults`. Defaults are never written to an existing row. | [`get_or_create_all(conn, items)`](GetOrCreate::get_or_create_all) |
//! | [`update_or_create(conn, key, values)`](GetOrCreate::update_or_create) | applies `values` to the row with `key`, or inserts `key` + `values`. | [`update_or_create_all(conn, items)`](GetOrCreate::update_or_create_all) |
//! | [`update_or_create_with(conn, key, update, create)`](GetOrCreate::update_or_create_with) | applies `update` (which may use the row's own columns, `visits + 1`) to the row with `key`, or inserts `key` + `create` (Django 5's `create_defaults`). | [`update_or_create_all_with(conn, items, update)`](GetOrCreate::update_or_create_all_with) |
//!
//! With the feature `async`, [`asynchronous::GetOrCreate`] has the same operations, arguments
//! and statements on diesel-async connections. [`transaction`] runs your closure in a
//! transaction and runs it again when the database aborts it. [`GetOrCreate::verify_constraints`]
//! and [`verify_all`] check that the database has the unique indexes the models declare.
//!
//! # The key
//!
//! The key is `column.key(value)` ([`KeyExpressionMethods::key`]), or a tuple of them for a
//! composite constraint, in any column order. It must name exactly the columns of one declared
//! constraint: extra columns belong in the defaults. Values are typed against the column like
//! Diesel's `eq`. For a nullable column the key takes the non-null type: a unique column admits
//! any number of NULLs, so a NULL key would insert a new row on every call, and `None` does not
//! compile.
//!
//! A lookup that no constraint covers does not compile. For a model `User` with a primary key
//! `id`, `#[unique] email` and `#[unique_together(first_name, last_name)]`, `first_name` alone
//! is only half of a constraint:
//!
//! ```text
//! error[E0277]: `User` has no uniqueness constraint on exactly the columns `(columns::first_name,)`
//!    |
//!    |     let _ = User::get_or_create(conn, users::first_name.key("Ann"), ());
//!    |             ^^^^ no `#[unique]`, `#[unique_together(..)]` or primary key of `User` covers this lookup
//!    |
//!    = note: without a unique constraint, concurrent callers can insert duplicate rows, so this lookup is refused
//!    = note: a lookup must name exactly the columns of one declared constraint (in any order): put other
//!            columns in the defaults, or declare the constraint on the model with `#[unique]` on a field or
//!            `#[unique_together(a, b)]` on the struct, and create the matching unique index in the database
//!    = help: the following other types implement trait `UniqueKey<Cols>`:
//!              `User` implements `UniqueKey<(columns::email,)>`
//!              `User` implements `UniqueKey<(columns::first_name, columns::last_name)>`
//!              `User` implements `UniqueKey<(columns::id,)>`
//!              `User` implements `UniqueKey<(columns::last_name, columns::first_name)>`
//! ```
//!
//! `tests/ui/` in the repository holds every refusal with the exact message: subsets and
//! supersets of a constraint, columns of another table, a NULL key, and each mistake in the
//! attributes.
//!
//! # Defaults and values
//!
//! Defaults and values are anything Diesel accepts for the table: `()` (insert the key alone),
//! a `column.eq(value)` or a tuple of them, or a `#[derive(Insertable)]` /
//! `#[derive(AsChangeset)]` struct (`Option` fields render as `DEFAULT` or are skipped, as
//! Diesel does). They must not repeat a key column. Doing so is an error on every backend, even
//! SQLite, which would otherwise keep one of the two values without complaint.
//!
//! [`lazy(|| defaults)`](lazy) computes the defaults (or `create` values) only when the call
//! inserts the row: a `get_or_create` that finds the row never calls the closure, and a miss
//! calls it once, just before its `INSERT` (a miss that then loses the race to another caller
//! has called it too). `update_or_create_with` calls it only when it creates, except on
//! PostgreSQL and MySQL/MariaDB, whose upsert statement carries the create values, so there it
//! runs on every call. Tested on every backend, sync and async (`tests/src/suite/behaviour.rs`).
//!
//! # Rules every operation follows
//!
//! - A conflict on a unique column **outside** the key (say the defaults repeat another row's
//!   `username`) is returned as `DatabaseError(UniqueViolation, ..)`. It is never taken for
//!   "found", and no row is touched.
//! - If the row that beat an insert is deleted before it can be read, the call inserts again,
//!   up to 16 times, then returns `DatabaseError(SerializationFailure, ..)` whose message says
//!   so: concurrent work made the call impossible, and running it again is the remedy. It
//!   never returns a row it did not read, and never `NotFound`.
//! - `conn` is any `Connection` of the backend: a plain connection, a pooled one (r2d2), or
//!   one of your own wrappers. Calls work standalone and inside your transaction, and your
//!   transaction stays usable after any error they return.
//! - A **standalone** call (no transaction open in Diesel) that the database aborts with a
//!   serialization failure or a deadlock runs again, up to 100 runs, after a random pause of up
//!   to `min(2^n, 128)` ms. Inside your transaction such an error is returned as
//!   `DatabaseError(SerializationFailure, ..)`: retry your transaction, for example with
//!   [`transaction`]. See [`guide::transactions`].
//! - Updates are statements the database applies to the row as it is at that moment
//!   (`visits = visits + 1`), and `update_or_create*` keeps the row locked until your
//!   transaction ends (standalone, until the call returns), so no update is lost.
//! - Create values that cannot form a row (a NULL in a `NOT NULL` column, a failed CHECK) never
//!   make a call on an existing row fail, on every backend, except `update_or_create_all` on
//!   PostgreSQL (see [its documentation](GetOrCreate::update_or_create_all)).
//!
//! How each backend does it, in one paragraph: on SQLite and PostgreSQL a conflicting insert is
//! absorbed by `ON CONFLICT (key) DO NOTHING` on exactly the key's constraint; on MySQL and
//! MariaDB the duplicate-key error is caught and the row is read with a locking read, which sees
//! it even at REPEATABLE READ. Either way the caller that lost the race gets the winner's row.
//! [`guide::statements`] lists every statement.
//!
//! # The derive's attributes
//!
//! - `#[unique]` on a field, `#[unique_together(field_a, field_b)]` (repeatable, names fields)
//!   on the struct; the primary key is `#[diesel(primary_key(..))]` (names columns), else the
//!   column `id`. Up to 6 columns per constraint.
//! - It reads `#[diesel(table_name = ..)]`, `column_name`, `primary_key` and `embed` as
//!   Diesel does, keywords included (`r#type` in `table!`, a field `r#type`,
//!   `column_name = "type"`). Every other `#[diesel(..)]` option is left to Diesel.
//! - `#[get_or_create(crate = path)]` (or `crate = "path"`) names this crate when you
//!   rename or re-export it.
//! - A mistake in them is one error, at the mistaken token: calls that use the intended key
//!   do not report it again.
//!
//! # Backends and versions
//!
//! | feature | backend | connections |
//! |---|---|---|
//! | `sqlite` | SQLite (3.35 or newer, for `RETURNING`; Diesel's feature `returning_clauses_for_sqlite_3_35`) | `SqliteConnection` |
//! | `postgres` | PostgreSQL (links the system libpq, Debian `libpq-dev`) | `PgConnection` |
//! | `mysql` | MySQL and MariaDB (links the system client library, Debian `libmariadb-dev libmariadb-dev-compat`) | `MysqlConnection` |
//! | `async` | the same backends on diesel-async | `AsyncPgConnection`, `AsyncMysqlConnection`, `SyncConnectionWrapper<SqliteConnection>`, and deadpool or bb8 pooled connections |
//!
//! Diesel 2.4 (from 2.4.0) and diesel-async 0.10, on Rust 1.88 or newer (Diesel 2.4's
//! minimum). Diesel 2.3 and diesel-async 0.9 are not supported: a project on Diesel 2.3 moves
//! to 2.4 with `cargo update -p diesel` (both are Diesel 2). On MariaDB, connect with Diesel's
//! `MysqlConnection` (feature `mysql`): Diesel 2.4's own `MariadbConnection` (backend
//! `Mariadb`) is not supported yet, and a call on it does not compile, with a message that says
//! so.
//!
//! # Guides
//!
//! [`guide`] holds the longer topics: [statements per call](guide::statements),
//! [transactions and errors](guide::transactions), [retrying transactions](guide::retrying),
//! [batches](guide::batches), [checking the schema](guide::schema),
//! [clusters](guide::clusters) and [how it is tested](guide::testing).
#![deny(missing_docs)]
// Without a backend feature the crate only type-checks (for docs): nothing
// runs a statement, and the shared algorithm code is unused.
#![cfg_attr(
    not(any(feature = "sqlite", feature = "postgres", feature = "mysql")),
    allow(dead_code)
)]

mod algorithm;
#[cfg(feature = "async")]
pub mod asynchronous;
mod batch;
mod call;
mod defaults;
mod driver;
pub mod guide;
mod key;
mod model;
#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod postgres;
mod query;
#[cfg(feature = "sqlite")]
mod sqlite;
mod transaction;
mod unique;
mod verify;

pub use crate::batch::sync::{
    GetOrCreateAllBackend, UpdateOrCreateAllBackend, UpdateOrCreateEachBackend,
};
pub use crate::defaults::{lazy, LazyDefaults};
pub use crate::driver::sync::{GetOrCreateBackend, UpdateOrCreateBackend};
pub use crate::key::{Key, KeyExpressionMethods, KeyValue, Lookup};
pub use crate::model::GetOrCreate;
pub use crate::transaction::{transaction, RetryBackend, TransactionError};
pub use crate::unique::UniqueKey;
pub use crate::verify::{
    verify_all, ConstraintError, ConstraintKind, ConstraintReport, DeclaredConstraint, Introspect,
    Matched, Missing, ModelConstraints, ModelReport, SchemaBackend, TableName, UniqueIndex,
    Unusable,
};

/// `#[derive(GetOrCreate)]`: see the [crate documentation](crate).
pub use diesel_get_or_create_macros::GetOrCreate;

/// `use diesel_get_or_create::prelude::*;` brings the derive, the
/// [`GetOrCreate`] trait and `.key()` into scope.
pub mod prelude {
    pub use crate::key::KeyExpressionMethods;
    pub use crate::model::GetOrCreate;
    pub use diesel_get_or_create_macros::GetOrCreate;
}

/// Items used by the code `#[derive(GetOrCreate)]` generates. Not public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::defaults::InsertValues;
    #[cfg(feature = "async")]
    pub use crate::driver::asynchronous::{AsyncGetOrCreateBackend, AsyncUpdateOrCreateBackend};
    pub use crate::key::{ColumnTuple, KeyPart, LookupFilter, LookupQueryId};
    pub use crate::model::Model;
    pub use crate::transaction::__Errors;
    pub use crate::unique::UniqueKey;
    pub use crate::verify::Schema;
    pub use crate::verify::{ConstraintKind, DeclaredConstraint};
    pub use diesel;
}
