#![doc = include_str!("../../README.md")]
#![deny(missing_docs)]

mod backend;
mod defaults;
mod key;
mod model;
mod query;
#[cfg(feature = "sqlite")]
mod sqlite;
mod unique;

pub use crate::backend::{GetOrCreateBackend, UpdateOrCreateBackend};
pub use crate::defaults::InsertValues;
pub use crate::key::{
    ColumnTuple, Key, KeyExpressionMethods, KeyPart, KeyValue, Lookup, LookupFilter, LookupQueryId,
};
pub use crate::model::GetOrCreate;
pub use crate::unique::UniqueKey;

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
    pub use crate::model::GetOrCreate;
    pub use crate::unique::UniqueKey;
    pub use diesel;
}
