//! `update_or_create_all`: a batch in which each key has its own values,
//! inserted for a missing key and set on an existing row.
//!
//! One statement updates many rows with different values only as an upsert:
//! `INSERT <rows> ON CONFLICT (<key>) DO UPDATE SET <c> = excluded.<c> ..`
//! (MySQL: `ON DUPLICATE KEY UPDATE <c> = VALUES(<c>) ..`), whose `SET`
//! names each column the values set ([`SetToValues`]). Diesel renders the
//! column list only into a statement, so the names are read from the values'
//! own rendered `INSERT` column list ([`columns_set`]). A column whose value
//! is `DEFAULT` (an `Option` field's `None` in an `Insertable` struct) is left
//! unchanged on an existing row, as `AsChangeset` leaves it; keys are grouped
//! by the columns they set, one batch per group ([`Each`]).
//!
//! * PostgreSQL runs the upsert itself for every key: its `RETURNING (xmax =
//!   0)` says which rows it inserted.
//! * MySQL and SQLite cannot tell which rows an upsert inserted. Each chunk
//!   first locks the rows that exist ([`UpsertRowsBatchIo::lock_rows`]), then
//!   upserts only those, which can then only be updated (SQLite's upsert
//!   returns them; MySQL reads them back), in a transaction of its own when
//!   standalone; the keys without a row go to the insert of
//!   `get_or_create_all`, as in `update_or_create_all_with`.

use core::future::Future;
use core::marker::PhantomData;

use diesel::backend::Backend;
use diesel::query_builder::{AsChangeset, AstPass, QueryBuilder, QueryFragment, QueryId};
use diesel::{Insertable, QueryResult, Table};

use super::{wrapped, UpdateBatchIo};

/// The changeset of `update_or_create_all`: each named column set to the
/// value the statement's row for that key gives it (`excluded.<c>`, or
/// MySQL's `VALUES(<c>)`). Only valid in an upsert.
#[derive(Debug, Clone)]
pub struct SetToValues<T> {
    columns: Vec<String>,
    table: PhantomData<fn() -> T>,
}

impl<T> SetToValues<T> {
    pub(crate) fn new(columns: Vec<String>) -> Self {
        SetToValues {
            columns,
            table: PhantomData,
        }
    }
}

/// How backend `Self` names the value an upsert tried to insert into a
/// column.
pub trait InsertedValue: Backend {
    /// Push the inserted value of `column`.
    #[doc(hidden)]
    fn push_inserted<'b>(column: &'b str, out: &mut AstPass<'_, 'b, Self>) -> QueryResult<()>;
}

#[cfg(feature = "postgres")]
impl InsertedValue for diesel::pg::Pg {
    fn push_inserted<'b>(column: &'b str, out: &mut AstPass<'_, 'b, Self>) -> QueryResult<()> {
        out.push_sql("excluded.");
        out.push_identifier(column)
    }
}

#[cfg(feature = "sqlite")]
impl InsertedValue for diesel::sqlite::Sqlite {
    fn push_inserted<'b>(column: &'b str, out: &mut AstPass<'_, 'b, Self>) -> QueryResult<()> {
        out.push_sql("excluded.");
        out.push_identifier(column)
    }
}

#[cfg(feature = "mysql")]
impl InsertedValue for diesel::mysql::Mysql {
    fn push_inserted<'b>(column: &'b str, out: &mut AstPass<'_, 'b, Self>) -> QueryResult<()> {
        out.push_sql("VALUES(");
        out.push_identifier(column)?;
        out.push_sql(")");
        Ok(())
    }
}

impl<T, DB: InsertedValue> QueryFragment<DB> for SetToValues<T> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        for (n, column) in self.columns.iter().enumerate() {
            if n > 0 {
                out.push_sql(", ");
            }
            out.push_identifier(column)?;
            out.push_sql(" = ");
            DB::push_inserted(column, &mut out)?;
        }
        Ok(())
    }

    fn is_noop(&self, _: &DB) -> QueryResult<bool> {
        Ok(self.columns.is_empty())
    }
}

impl<T> QueryId for SetToValues<T> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<T: Table> AsChangeset for SetToValues<T> {
    type Target = T;
    type Changeset = Self;

    fn as_changeset(self) -> Self {
        self
    }
}

/// The columns, other than `key`'s, that `row` gives a value other than
/// `DEFAULT`, in its order: read from its `(<columns>) VALUES (<values>)`
/// clause as backend `DB` renders it. A column named twice (a key column
/// repeated in the values) is refused, as every backend's `INSERT` refuses
/// it (SQLite would keep the first value without complaint).
pub(crate) fn columns_set<DB, T, R>(row: R, key: &[&str]) -> QueryResult<Vec<String>>
where
    DB: Backend + Default,
    DB::QueryBuilder: Default,
    R: Insertable<T>,
    R::Values: QueryFragment<DB>,
{
    let mut builder = DB::QueryBuilder::default();
    row.values().to_sql(&mut builder, &DB::default())?;
    let sql = builder.finish();
    let columns = insert_columns(&sql).ok_or_else(|| {
        diesel::result::Error::QueryBuilderError(
            format!("cannot read the columns of the values `{sql}`").into(),
        )
    })?;
    for (i, (column, _)) in columns.iter().enumerate() {
        if columns[..i].iter().any(|(c, _)| c == column) {
            return Err(diesel::result::Error::QueryBuilderError(
                format!(
                    "column `{column}` is given twice in one insert: \
                     the values must not repeat a key column, nor name a column twice"
                )
                .into(),
            ));
        }
    }
    Ok(columns
        .into_iter()
        .filter(|(name, default)| !default && !key.contains(&name.as_str()))
        .map(|(name, _)| name)
        .collect())
}

/// [`columns_set`] of key `key` with values `values`, for model `M`.
pub(crate) fn columns_of<DB, M, K, V, Mk>(key: &K, values: &V) -> QueryResult<Vec<String>>
where
    DB: Backend + Default,
    DB::QueryBuilder: Default,
    M: crate::model::Model,
    K: crate::key::Lookup + Clone,
    V: crate::defaults::InsertRow<M::Table, K, Mk> + Clone,
    V::Row: Insertable<M::Table>,
    <V::Row as Insertable<M::Table>>::Values: QueryFragment<DB>,
{
    let row = values.clone().row(key.clone());
    columns_set::<DB, M::Table, _>(row, <K::Columns as crate::key::ColumnTuple>::NAMES)
}

/// The columns of a rendered `(<c1>, <c2>) VALUES (<v1>, <v2>)` clause, each
/// with whether its value is `DEFAULT`; nothing for `DEFAULT VALUES`. Names
/// are quoted identifiers (`"a"` or `` `a` ``, the quote doubled inside);
/// values are split at the commas outside parentheses and quotes.
pub(crate) fn insert_columns(sql: &str) -> Option<Vec<(String, bool)>> {
    if sql.trim() == "DEFAULT VALUES" {
        return Some(Vec::new());
    }
    let mut chars = sql.strip_prefix('(')?.chars().peekable();
    let mut names = Vec::new();
    loop {
        let quote = chars.next()?;
        if quote != '"' && quote != '`' {
            return None;
        }
        let mut name = String::new();
        loop {
            let c = chars.next()?;
            if c == quote {
                if chars.peek() == Some(&quote) {
                    chars.next();
                } else {
                    break;
                }
            }
            name.push(c);
        }
        names.push(name);
        match chars.next()? {
            ',' if chars.next()? == ' ' => {}
            ')' => break,
            _ => return None,
        }
    }
    let rest: String = chars.collect();
    let values = rest.strip_prefix(" VALUES (")?;
    let mut parts = Vec::new();
    let (mut depth, mut quote, mut start) = (0usize, None, 0);
    for (i, c) in values.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"' | '`') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') if depth == 0 => {
                parts.push(values[start..i].trim());
                break;
            }
            (None, ')') => depth -= 1,
            (None, ',') if depth == 0 => {
                parts.push(values[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    if parts.len() != names.len() {
        return None;
    }
    Some(
        names
            .into_iter()
            .zip(parts)
            .map(|(name, value)| (name, value == "DEFAULT"))
            .collect(),
    )
}

/// Keys whose values set the same columns: those columns, and each key with
/// its values.
pub(crate) type Group<K, V> = (Vec<String>, Vec<(K, V)>);

/// The inputs of `update_or_create_all` grouped by the columns their values
/// set, each key once (its first occurrence's values).
pub(crate) struct Each<K, V> {
    /// Each group: the columns its keys' values set, and its keys.
    pub(crate) groups: Vec<Group<K, V>>,
    /// For each input, in input order: its group, its key's place there,
    /// and whether it is the key's first occurrence.
    input: Vec<(usize, usize, bool)>,
}

impl<K: Ord + Clone, V> Each<K, V> {
    /// Group `items` by `columns` of each key's first occurrence.
    pub(crate) fn new(
        items: impl IntoIterator<Item = (K, V)>,
        mut columns: impl FnMut(&K, &V) -> QueryResult<Vec<String>>,
    ) -> QueryResult<Self> {
        let mut items: Vec<(usize, K, V)> = items
            .into_iter()
            .enumerate()
            .map(|(i, (k, v))| (i, k, v))
            .collect();
        items.sort_by(|a, b| a.1.cmp(&b.1));
        let mut input = vec![(0, 0, false); items.len()];
        let mut groups: Vec<Group<K, V>> = Vec::new();
        let mut last: Option<(K, usize, usize)> = None;
        for (position, key, values) in items {
            if let Some((previous, group, place)) = &last {
                if *previous == key {
                    input[position] = (*group, *place, false);
                    continue;
                }
            }
            let set = columns(&key, &values)?;
            let group = match groups.iter().position(|(columns, _)| *columns == set) {
                Some(group) => group,
                None => {
                    groups.push((set, Vec::new()));
                    groups.len() - 1
                }
            };
            let place = groups[group].1.len();
            groups[group].1.push((key.clone(), values));
            input[position] = (group, place, true);
            last = Some((key, group, place));
        }
        Ok(Each { groups, input })
    }

    /// The result in input order, from each group's results in its order: a
    /// repeated key's row, cloned, and not created after its first
    /// occurrence.
    pub(crate) fn finish<R: Clone>(&self, results: &[Vec<(R, bool)>]) -> Vec<(R, bool)> {
        self.input
            .iter()
            .map(|&(group, place, first)| {
                let (row, created) = &results[group][place];
                (row.clone(), *created && first)
            })
            .collect()
    }
}

/// Rows, each with its key (an index into the batch's keys).
pub type Keyed<R> = Vec<(usize, R)>;

/// The update of a MySQL or SQLite chunk with per-key values.
pub trait UpsertRowsBatchIo: UpdateBatchIo {
    /// The existing rows of keys `which`, locked until the transaction
    /// ends: MySQL's `SELECT .. FOR UPDATE`; on SQLite `UPDATE <table> SET
    /// <key> = <key> WHERE 0`, which takes the database's write lock (no key
    /// can be inserted or deleted by another connection until the
    /// transaction ends), then the batch's read.
    fn lock_rows(
        &mut self,
        which: &[usize],
    ) -> impl Future<Output = QueryResult<Vec<(usize, Self::Row)>>> + Send;

    /// The upsert of the rows of keys `which`, which all exist, and the
    /// rows as it wrote them where the backend returns them: SQLite's
    /// `INSERT <rows> ON CONFLICT (<key>) DO UPDATE SET <changeset> RETURNING
    /// <position>, <row>` (one per key for rows Diesel inserts one by one);
    /// MySQL's `INSERT <rows> ON DUPLICATE KEY UPDATE <key check>,
    /// <changeset>`, whose rows are then read (`None`).
    fn upsert_rows(
        &mut self,
        which: &[usize],
    ) -> impl Future<Output = QueryResult<Option<Keyed<Self::Row>>>> + Send;
}

/// MySQL's and SQLite's update of a chunk with per-key values: lock the
/// rows that exist, upsert them (and on MySQL read them back: a locking
/// read, which sees this transaction's writes), in a transaction of their
/// own when standalone. Keys without a row are left to the insert.
#[cfg(any(feature = "mysql", feature = "sqlite"))]
pub(crate) async fn lock_then_upsert<E: UpsertRowsBatchIo>(
    io: &mut E,
    chunk: &[usize],
    standalone: bool,
) -> QueryResult<Vec<(usize, E::Row)>> {
    wrapped(io, standalone, async |io| {
        let mut locked: Vec<usize> = io
            .lock_rows(chunk)
            .await?
            .into_iter()
            .map(|(i, _)| i)
            .collect();
        if locked.is_empty() {
            return Ok(Vec::new());
        }
        locked.sort_unstable();
        match io.upsert_rows(&locked).await? {
            Some(rows) => Ok(rows),
            None => io.read(&locked, true).await,
        }
    })
    .await
}

/// `<key 1> = <key 1>`: the assignment of SQLite's [`WriteLock`].
#[cfg(feature = "sqlite")]
pub(crate) struct TouchKey<Cols>(PhantomData<fn() -> Cols>);

#[cfg(feature = "sqlite")]
impl<Cols> TouchKey<Cols> {
    pub(crate) const NEW: Self = TouchKey(PhantomData);
}

#[cfg(feature = "sqlite")]
impl<Cols: crate::key::ColumnTuple, DB: Backend> QueryFragment<DB> for TouchKey<Cols> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        let first = Cols::NAMES[0];
        out.push_identifier(first)?;
        out.push_sql(" = ");
        out.push_identifier(first)
    }
}

/// The upsert's conflict clause for key columns `Cols` and changeset `U`:
/// SQLite's ` ON CONFLICT (<key>) DO UPDATE SET <changeset>`; MySQL's ` ON
/// DUPLICATE KEY UPDATE <key check>, <changeset>`.
///
/// MySQL's upsert updates the row it meets in *any* unique index. Its key
/// check, `<k1> = IF(<k1> <=> VALUES(<k1>) AND .., <k1>, (SELECT 1 UNION
/// ALL SELECT 2))`, changes nothing when that row has the key, and fails the
/// statement (error 1242) before any assignment when it has not: the values
/// of some key are another row's in another unique index ([`other_unique`]).
#[cfg(any(feature = "mysql", feature = "sqlite"))]
pub(crate) struct UpsertClause<'a, Cols, U>(pub(crate) &'a U, pub(crate) PhantomData<fn() -> Cols>);

#[cfg(feature = "sqlite")]
impl<Cols, U> QueryFragment<diesel::sqlite::Sqlite> for UpsertClause<'_, Cols, U>
where
    Cols: crate::key::ColumnTuple,
    U: QueryFragment<diesel::sqlite::Sqlite>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, diesel::sqlite::Sqlite>) -> QueryResult<()> {
        out.push_sql(" ON CONFLICT (");
        crate::query::push_column_list::<Cols, _>(&mut out)?;
        out.push_sql(") DO UPDATE SET ");
        self.0.walk_ast(out.reborrow())
    }
}

#[cfg(feature = "mysql")]
impl<Cols, U> QueryFragment<diesel::mysql::Mysql> for UpsertClause<'_, Cols, U>
where
    Cols: crate::key::ColumnTuple,
    U: QueryFragment<diesel::mysql::Mysql>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, diesel::mysql::Mysql>) -> QueryResult<()> {
        let first = Cols::NAMES[0];
        out.push_sql(" ON DUPLICATE KEY UPDATE ");
        out.push_identifier(first)?;
        out.push_sql(" = IF(");
        for (n, name) in Cols::NAMES.iter().enumerate() {
            if n > 0 {
                out.push_sql(" AND ");
            }
            out.push_identifier(name)?;
            out.push_sql(" <=> VALUES(");
            out.push_identifier(name)?;
            out.push_sql(")");
        }
        out.push_sql(", ");
        out.push_identifier(first)?;
        out.push_sql(", (SELECT 1 UNION ALL SELECT 2)), ");
        self.0.walk_ast(out.reborrow())
    }
}

/// Changesets have no query id, so neither has the clause that holds one.
#[cfg(any(feature = "mysql", feature = "sqlite"))]
impl<Cols, U> QueryId for UpsertClause<'_, Cols, U> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

/// `<insert> <conflict>`: MySQL's multi-row upsert.
#[cfg(feature = "mysql")]
pub(crate) struct UpsertRows<I, X> {
    pub(crate) insert: I,
    pub(crate) conflict: X,
}

#[cfg(feature = "mysql")]
impl<I, X> QueryFragment<diesel::mysql::Mysql> for UpsertRows<I, X>
where
    I: QueryFragment<diesel::mysql::Mysql>,
    X: QueryFragment<diesel::mysql::Mysql>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, diesel::mysql::Mysql>) -> QueryResult<()> {
        self.insert.walk_ast(out.reborrow())?;
        self.conflict.walk_ast(out.reborrow())
    }
}

#[cfg(feature = "mysql")]
impl<I, X> QueryId for UpsertRows<I, X> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

#[cfg(feature = "mysql")]
impl<I, X> diesel::query_dsl::RunQueryDslSupport for UpsertRows<I, X> {}

/// The error of MySQL's upsert whose [key check](UpsertClause) failed: a
/// unique violation (the values of a key are another row's in a unique index
/// other than the key's); other errors unchanged.
#[cfg(feature = "mysql")]
pub(crate) fn other_unique(error: diesel::result::Error) -> diesel::result::Error {
    use diesel::result::{DatabaseErrorKind, Error};
    match &error {
        Error::DatabaseError(DatabaseErrorKind::Unknown, info)
            if info
                .message()
                .starts_with("Subquery returns more than 1 row") =>
        {
            Error::DatabaseError(
                DatabaseErrorKind::UniqueViolation,
                Box::new(
                    "the values of a key are already another row's, in a unique index other \
                     than the key's (the upsert met that row; its key check failed)"
                        .to_owned(),
                ),
            )
        }
        _ => error,
    }
}

#[cfg(any(feature = "mysql", feature = "sqlite"))]
impl<M, K, D, Mk, U> super::Batch<M, K, D, Mk, U>
where
    M: crate::model::Model,
    K: crate::key::Lookup + Ord + Clone,
    D: crate::defaults::InsertRow<M::Table, K, Mk>,
    D::Row: Clone,
{
    /// `SELECT <position>, <row> FROM <table> WHERE <keys which> FOR
    /// UPDATE` (MySQL).
    #[cfg(feature = "mysql")]
    pub(crate) fn select_for_update(
        &self,
        which: &[usize],
    ) -> super::SelectKeys<
        '_,
        M::Table,
        K,
        crate::call::SelectionOf<M, diesel::mysql::Mysql>,
        crate::mysql::ForUpdate,
    >
    where
        M: diesel::Selectable<diesel::mysql::Mysql>,
    {
        use diesel::SelectableHelper;
        super::SelectKeys {
            from: crate::query::From::of(M::table()),
            keys: self.keys(which),
            select: M::as_select(),
            lock: Some(crate::mysql::ForUpdate),
        }
    }

    /// `INSERT <rows which> ON DUPLICATE KEY UPDATE <key check>,
    /// <changeset>` (MySQL).
    #[cfg(feature = "mysql")]
    pub(crate) fn upsert_rows(
        &mut self,
        which: &[usize],
    ) -> UpsertRows<super::InsertRows<M, D::Row>, UpsertClause<'_, K::Columns, U>>
    where
        Vec<D::Row>: Insertable<M::Table>,
    {
        let rows = self.rows(which);
        UpsertRows {
            insert: super::insert_rows::<M, D::Row>(rows),
            conflict: UpsertClause(&self.changeset, PhantomData),
        }
    }

    /// `UPDATE <table> SET <key> = <key> WHERE 0` (SQLite): it changes no
    /// row, and takes the database's write lock.
    #[cfg(feature = "sqlite")]
    pub(crate) fn write_lock(&self) -> WriteLock<M::Table, K::Columns> {
        WriteLock {
            from: crate::query::From::of(M::table()),
            touch: TouchKey::NEW,
        }
    }

    /// `INSERT <rows which> ON CONFLICT (<key>) DO UPDATE SET <changeset>
    /// RETURNING CASE WHEN <key 0> THEN 0 .. END, <row>` (SQLite), on
    /// Diesel's rendering of the insert ([`super::sqlite_text`]); `None`
    /// when Diesel would insert these rows one by one.
    #[cfg(feature = "sqlite")]
    #[allow(clippy::type_complexity)]
    pub(crate) fn sqlite_upsert(
        &mut self,
        which: &[usize],
    ) -> QueryResult<
        Option<
            super::sqlite_text::Typed<
                diesel::query_builder::CollectedQuery<super::sqlite_text::Binds>,
                (
                    diesel::sql_types::Integer,
                    diesel::dsl::SqlTypeOf<crate::call::SelectionOf<M, diesel::sqlite::Sqlite>>,
                ),
            >,
        >,
    >
    where
        M: diesel::Selectable<diesel::sqlite::Sqlite>,
        M::SelectExpression: QueryId,
        K: crate::key::LookupFilter<diesel::sqlite::Sqlite>,
        U: QueryFragment<diesel::sqlite::Sqlite>,
        crate::call::SelectionOf<M, diesel::sqlite::Sqlite>: QueryFragment<diesel::sqlite::Sqlite>,
        D::Row: Insertable<M::Table>,
        <D::Row as Insertable<M::Table>>::Values: QueryFragment<diesel::sqlite::Sqlite>,
        Vec<D::Row>: Insertable<M::Table>,
        for<'a> diesel::query_builder::DebugQuery<'a, super::InsertRows<M, D::Row>, diesel::sqlite::Sqlite>:
            core::fmt::Display,
    {
        use diesel::SelectableHelper;
        let rows = self.rows(which);
        let tail = UpsertTail {
            conflict: UpsertClause::<K::Columns, U>(&self.changeset, PhantomData),
            keys: self.keys(which),
            select: M::as_select(),
        };
        Ok(super::sqlite_text::insert_then::<M, _, _>(&rows, &tail)?
            .map(super::sqlite_text::Typed::new))
    }

    /// The values of key `i`'s row, for SQLite's one-row upsert.
    #[cfg(feature = "sqlite")]
    pub(crate) fn row_values(&mut self, i: usize) -> <D::Row as Insertable<M::Table>>::Values
    where
        D::Row: Insertable<M::Table>,
    {
        let mut rows = self.rows(&[i]);
        rows.pop().expect("one row for one key").values()
    }
}

/// `UPDATE <table> SET <key> = <key> WHERE 0`: SQLite's write lock.
#[cfg(feature = "sqlite")]
pub(crate) struct WriteLock<T: diesel::query_source::QuerySource, Cols> {
    from: crate::query::From<T>,
    touch: TouchKey<Cols>,
}

#[cfg(feature = "sqlite")]
impl<T, Cols> QueryFragment<diesel::sqlite::Sqlite> for WriteLock<T, Cols>
where
    T: diesel::query_source::QuerySource,
    T::FromClause: QueryFragment<diesel::sqlite::Sqlite>,
    Cols: crate::key::ColumnTuple,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, diesel::sqlite::Sqlite>) -> QueryResult<()> {
        out.push_sql("UPDATE ");
        self.from.0.walk_ast(out.reborrow())?;
        out.push_sql(" SET ");
        self.touch.walk_ast(out.reborrow())?;
        out.push_sql(" WHERE 0");
        Ok(())
    }
}

#[cfg(feature = "sqlite")]
impl<T: diesel::query_source::QuerySource, Cols> QueryId for WriteLock<T, Cols> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

#[cfg(feature = "sqlite")]
impl<T: diesel::query_source::QuerySource, Cols> diesel::query_dsl::RunQueryDslSupport
    for WriteLock<T, Cols>
{
}

/// ` ON CONFLICT (<key>) DO UPDATE SET <changeset> RETURNING CASE WHEN
/// <key 0> THEN 0 .. END, <select>`: what follows SQLite's multi-row insert
/// in its upsert.
#[cfg(feature = "sqlite")]
pub(crate) struct UpsertTail<'a, Cols, U, K, S> {
    conflict: UpsertClause<'a, Cols, U>,
    keys: Vec<&'a K>,
    select: S,
}

#[cfg(feature = "sqlite")]
impl<Cols, U, K, S> QueryFragment<diesel::sqlite::Sqlite> for UpsertTail<'_, Cols, U, K, S>
where
    Cols: crate::key::ColumnTuple,
    U: QueryFragment<diesel::sqlite::Sqlite>,
    K: crate::key::LookupFilter<diesel::sqlite::Sqlite>,
    S: QueryFragment<diesel::sqlite::Sqlite>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, diesel::sqlite::Sqlite>) -> QueryResult<()> {
        self.conflict.walk_ast(out.reborrow())?;
        out.push_sql(" RETURNING ");
        super::push_positions(&self.keys, &mut out)?;
        out.push_sql(", ");
        self.select.walk_ast(out.reborrow())
    }
}

/// `INSERT INTO <table> <values> ON CONFLICT (<key>) DO UPDATE SET
/// <changeset> RETURNING <select>` for one key's row (SQLite), when Diesel
/// would insert the rows one by one.
#[cfg(feature = "sqlite")]
pub(crate) fn upsert_row<'a, T, V, Cols, U, S>(
    table: T,
    values: &'a V,
    changeset: &'a U,
    select: S,
) -> crate::query::Insert<'a, T, V, UpsertClause<'a, Cols, U>, crate::query::Returning<S>>
where
    T: diesel::query_source::QuerySource,
{
    crate::query::Insert {
        from: crate::query::From::of(table),
        values,
        conflict: UpsertClause(changeset, PhantomData),
        returning: crate::query::Returning(select),
    }
}

#[cfg(test)]
mod tests {
    use super::insert_columns;

    #[test]
    fn reads_names_and_defaults() {
        let columns =
            insert_columns(r#"("na""me", "uses", "x") VALUES ($1, DEFAULT, lower($2, 'a,)'))"#);
        assert_eq!(
            columns,
            Some(vec![
                ("na\"me".to_owned(), false),
                ("uses".to_owned(), true),
                ("x".to_owned(), false)
            ])
        );
        let columns = insert_columns("(`a`, `b`) VALUES (?, ?)");
        assert_eq!(
            columns,
            Some(vec![("a".to_owned(), false), ("b".to_owned(), false)])
        );
        assert_eq!(insert_columns("DEFAULT VALUES"), Some(Vec::new()));
        assert_eq!(insert_columns("(`a`) VALUES (?, ?)"), None);
        assert_eq!(insert_columns("INSERT"), None);
    }
}
