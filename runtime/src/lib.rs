//! Atomic, compile-time-checked `get_or_create` and `update_or_create` for
//! Diesel models.
//!
//! `#[derive(GetOrCreate)]` goes on a Diesel model (`Queryable` +
//! `Selectable`). It reads the model's uniqueness constraints (`#[unique]`
//! fields, `#[unique_together(a, b)]` on the struct, and the primary key) and
//! implements [`GetOrCreate`], whose operations take a lookup key that must
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
//! The README describes the semantics of each operation, the statements each
//! backend runs, and the errors.
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
