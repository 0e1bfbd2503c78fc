//! Per-backend algorithms, dispatched through a trait on the backend type.
//!
//! The operations of [`GetOrCreate`](crate::GetOrCreate) call
//! `<C::Backend as GetOrCreateBackend<C, ..>>`, so any connection whose
//! backend implements the trait works: a plain connection, a pooled one, or
//! an instrumented wrapper. (Two blanket impls keyed on `C::Backend = X`
//! would overlap; impls on the backend types `Sqlite`, `Pg`, `Mysql` do not.)

use diesel::backend::Backend;
use diesel::QueryResult;

/// How backend `Self` runs `get_or_create` for model `M`, lookup `K` and
/// defaults `D` over connection `C`.
#[diagnostic::on_unimplemented(
    message = "`get_or_create` cannot run for `{M}` on backend `{Self}` with these arguments",
    label = "a requirement below is not met",
    note = "check that the backend's feature of diesel-get-or-create is enabled (`sqlite`, `postgres` or `mysql`), \
            that the key and the defaults use columns of the model's table, \
            and that the model derives `Queryable` and `Selectable`"
)]
pub trait GetOrCreateBackend<C, M, K, D, Mk>: Backend {
    /// See [`GetOrCreate::get_or_create`](crate::GetOrCreate::get_or_create).
    fn get_or_create(conn: &mut C, key: K, defaults: D) -> QueryResult<(M, bool)>;
}

/// How backend `Self` runs `update_or_create_with` for model `M`.
#[diagnostic::on_unimplemented(
    message = "`update_or_create` cannot run for `{M}` on backend `{Self}` with these arguments",
    label = "a requirement below is not met",
    note = "check that the backend's feature of diesel-get-or-create is enabled (`sqlite`, `postgres` or `mysql`), \
            that the key and the values use columns of the model's table, that the update \
            values are `AsChangeset` and the create values `Insertable`, \
            and that the model derives `Queryable` and `Selectable`"
)]
pub trait UpdateOrCreateBackend<C, M, K, U, D, Mk>: Backend {
    /// See [`GetOrCreate::update_or_create_with`](crate::GetOrCreate::update_or_create_with).
    fn update_or_create_with(conn: &mut C, key: K, update: U, create: D) -> QueryResult<(M, bool)>;
}

/// How many times an operation re-runs its statements when a concurrent
/// delete removes the row between a conflict and the read that follows it.
pub(crate) const MAX_ATTEMPTS: usize = 16;
