//! One call's statements, as query nodes: the same for every driver.
//!
//! A [`Call`] holds what the caller passed (the key, the defaults or create
//! values, the changeset) and builds the nodes of `query.rs` from them. The
//! drivers run the nodes; the algorithms only say which one.

use core::marker::PhantomData;

use diesel::backend::Backend;
use diesel::query_builder::QueryFragment;
use diesel::{QueryResult, Selectable, SelectableHelper};

use crate::defaults::InsertValues;
use crate::key::Lookup;
use crate::model::Model;
use crate::query::{From, Insert, OnConflictDoNothing, SelectByKey, UpdateByKey};

/// The statements of one call for model `M`: lookup `K`, insert values built
/// from `D` (through marker `Mk`) on the first insert, and changeset `U`
/// (`()` for `get_or_create`).
pub struct Call<M, K, D, Mk, U>
where
    M: Model,
    D: InsertValues<M::Table, K, Mk>,
{
    pub(crate) key: K,
    pub(crate) defaults: Option<D>,
    pub(crate) values: Option<D::Values>,
    pub(crate) changeset: U,
    model: PhantomData<fn() -> (M, Mk)>,
}

impl<M, K, D, Mk, U> Call<M, K, D, Mk, U>
where
    M: Model,
    K: Lookup + Clone,
    D: InsertValues<M::Table, K, Mk>,
{
    pub(crate) fn new(key: K, defaults: D, changeset: U) -> Self {
        Call {
            key,
            defaults: Some(defaults),
            values: None,
            changeset,
            model: PhantomData,
        }
    }

    /// The key and the defaults as one row to insert, built on the first
    /// insert only: a hit does nothing but its `SELECT`.
    pub(crate) fn values(&mut self) -> &D::Values {
        let (defaults, key) = (&mut self.defaults, &self.key);
        self.values.get_or_insert_with(|| {
            defaults
                .take()
                .expect("the defaults are taken once, by the first insert")
                .with_key(key.clone())
        })
    }

    /// `SELECT <model> FROM <table> WHERE <key> LIMIT 1 <lock>`
    pub(crate) fn select<DB, L>(
        &self,
        lock: L,
    ) -> SelectByKey<'_, M::Table, K, SelectionOf<M, DB>, L>
    where
        DB: Backend,
        M: Selectable<DB>,
    {
        SelectByKey {
            from: From::of(M::table()),
            key: &self.key,
            select: M::as_select(),
            lock,
        }
    }

    /// `INSERT INTO <table> <key and values> <conflict> <returning>`
    pub(crate) fn insert<X, R>(
        &mut self,
        conflict: X,
        returning: R,
    ) -> Insert<'_, M::Table, D::Values, X, R> {
        Insert {
            from: From::of(M::table()),
            values: self.values(),
            conflict,
            returning,
        }
    }

    /// ` ON CONFLICT (<key columns>) DO NOTHING`
    pub(crate) fn on_conflict_do_nothing(&self) -> OnConflictDoNothing<K::Columns> {
        OnConflictDoNothing::new()
    }

    /// `UPDATE <table> SET <changeset> WHERE <key> <returning>`
    pub(crate) fn update<R>(&self, returning: R) -> UpdateByKey<'_, M::Table, U, K, R> {
        UpdateByKey {
            from: From::of(M::table()),
            changeset: &self.changeset,
            key: &self.key,
            returning,
        }
    }

    /// Whether the changeset renders nothing (an all-`None` struct).
    pub(crate) fn update_is_noop<DB: Backend + Default>(&self) -> QueryResult<bool>
    where
        U: QueryFragment<DB>,
    {
        self.changeset.is_noop(&DB::default())
    }
}

/// The model's selection for backend `DB`, `M::as_select()`.
pub(crate) type SelectionOf<M, DB> = diesel::dsl::AsSelect<M, DB>;

/// The SQL type of the model's selection for backend `DB`.
pub(crate) type SqlTypeOf<M, DB> =
    <<M as Selectable<DB>>::SelectExpression as diesel::Expression>::SqlType;

/// The SQL type the model is built from when loaded through its selection.
///
/// Diesel 2.4 loads `M::as_select()` by way of its (hidden, public) marker
/// `SqlTypeLikeMarker`, which maps an embedded selection to the SQL type its
/// fields come from; generic code has to state that bound itself. For a model
/// without `#[diesel(embed)]` fields it is [`SqlTypeOf`].
pub(crate) type RowSqlTypeOf<M, DB> =
    <SqlTypeOf<M, DB> as diesel::deserialize::SqlTypeLikeMarker>::SqlType;
