//! Checking the declared constraints against the live database, and the DDL
//! that creates them.
//!
//! The compile-time check trusts the model's `#[unique]`,
//! `#[unique_together(..)]` and primary key; only the database can enforce
//! them. [`GetOrCreate::verify_constraints`](crate::GetOrCreate::verify_constraints)
//! and [`verify_all`] look for a unique index on exactly each declared column
//! set, and [`GetOrCreate::unique_constraints_sql`](crate::GetOrCreate::unique_constraints_sql)
//! writes the `CREATE UNIQUE INDEX` statements that create them. See
//! [`guide::schema`](crate::guide::schema).

use core::fmt;
use core::marker::PhantomData;

use diesel::backend::Backend;
use diesel::connection::LoadConnection;
use diesel::query_builder::{BoxedSqlQuery, QueryFragment, SqlQuery};
use diesel::{Connection, QueryResult, QueryableByName, RunQueryDsl};

#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

/// Where a constraint of the model was declared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConstraintKind {
    /// The primary key (`#[diesel(primary_key(..))]`, or the column `id`).
    PrimaryKey,
    /// `#[unique]` on a field.
    Unique,
    /// `#[unique_together(..)]` on the struct.
    UniqueTogether,
}

/// One uniqueness constraint declared on a model: its kind and its columns'
/// SQL names, in declaration order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DeclaredConstraint {
    kind: ConstraintKind,
    columns: &'static [&'static str],
}

impl DeclaredConstraint {
    /// Used by the code `#[derive(GetOrCreate)]` generates.
    #[doc(hidden)]
    pub const fn __new(kind: ConstraintKind, columns: &'static [&'static str]) -> Self {
        DeclaredConstraint { kind, columns }
    }

    /// How it was declared.
    pub fn kind(&self) -> ConstraintKind {
        self.kind
    }

    /// The columns' SQL names, in declaration order.
    pub fn columns(&self) -> &'static [&'static str] {
        self.columns
    }
}

impl fmt::Display for DeclaredConstraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            ConstraintKind::PrimaryKey => "primary key",
            ConstraintKind::Unique => "#[unique]",
            ConstraintKind::UniqueTogether => "#[unique_together]",
        };
        write!(f, "{kind} ({})", self.columns.join(", "))
    }
}

/// A table's name, and its schema (PostgreSQL schema, MySQL database,
/// SQLite attached database) when the `table!` declaration names one.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TableName {
    /// The schema, if the table is qualified with one.
    pub schema: Option<String>,
    /// The table's name.
    pub name: String,
}

impl TableName {
    /// Reads back the name Diesel renders for `table` on backend `DB`: one or
    /// two quoted identifiers separated by a dot. (A table renders without
    /// error; if one did, the message would show up as the table's name.)
    fn of<DB, T>(table: &T) -> TableName
    where
        DB: SchemaBackend,
        T: QueryFragment<DB>,
    {
        use diesel::query_builder::QueryBuilder;
        let mut builder = DB::QueryBuilder::default();
        let rendered = match table.to_sql(&mut builder, &DB::default()) {
            Ok(()) => builder.finish(),
            Err(e) => e.to_string(),
        };
        let mut parts = split_quoted(&rendered);
        let name = parts.pop().unwrap_or(rendered);
        TableName {
            schema: parts.pop(),
            name,
        }
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.schema {
            Some(schema) => write!(f, "{schema}.{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// `"a"."b"` or `` `a`.`b` `` to `[a, b]`; a doubled quote is a quote.
fn split_quoted(rendered: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut chars = rendered.trim().chars().peekable();
    while let Some(quote) = chars.next() {
        if quote == '.' {
            continue;
        }
        let mut part = String::new();
        if quote != '"' && quote != '`' {
            // Unquoted: up to the next dot.
            part.push(quote);
            while let Some(&c) = chars.peek() {
                if c == '.' {
                    break;
                }
                part.push(c);
                chars.next();
            }
        } else {
            while let Some(c) = chars.next() {
                if c == quote {
                    if chars.peek() == Some(&quote) {
                        chars.next();
                    } else {
                        break;
                    }
                }
                part.push(c);
            }
        }
        parts.push(part);
    }
    parts
}

/// Why a unique index does not back a declared constraint even though its
/// columns match: the database would not use it for the key's conflicts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unusable {
    /// It has a `WHERE` clause: rows outside it are not unique.
    Partial,
    /// It indexes an expression, not only plain columns.
    Expression,
    /// MySQL: it indexes a prefix of a column (`col(10)`), so it is stricter
    /// than the declared constraint.
    Prefix,
    /// PostgreSQL: a `DEFERRABLE` constraint, which `ON CONFLICT` cannot use.
    Deferrable,
    /// PostgreSQL: not valid or not ready (a failed `CREATE INDEX CONCURRENTLY`).
    Invalid,
}

impl fmt::Display for Unusable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Unusable::Partial => {
                "it is partial (it has a WHERE clause), so rows outside it may repeat the key"
            }
            Unusable::Expression => "it indexes an expression, not the columns themselves",
            Unusable::Prefix => {
                "it indexes only a prefix of a column, so distinct keys can collide"
            }
            Unusable::Deferrable => {
                "it is DEFERRABLE, and ON CONFLICT cannot use a deferrable constraint"
            }
            Unusable::Invalid => "it is not valid (a failed CREATE INDEX CONCURRENTLY?)",
        })
    }
}

/// A unique index (or unique/primary key constraint) found in the database.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct UniqueIndex {
    /// Its name in the database.
    pub name: String,
    /// Its key columns, in index order; an expression part has no name and
    /// is left out (see [`unusable`](Self::unusable)).
    pub columns: Vec<String>,
    /// Whether it is the table's primary key.
    pub primary: bool,
    /// Why it cannot back a constraint, if it cannot.
    pub unusable: Option<Unusable>,
}

impl fmt::Display for UniqueIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.primary {
            "primary key"
        } else {
            "unique index"
        };
        write!(f, "{what} {} on ", self.name)?;
        if self.columns.is_empty() {
            f.write_str("an expression")
        } else {
            write!(f, "({})", self.columns.join(", "))
        }
    }
}

/// What `#[derive(GetOrCreate)]` declared for one model, ready to be checked
/// on backend `DB`. Built by [`GetOrCreate::constraints`](crate::GetOrCreate::constraints).
#[derive(Clone, Debug)]
pub struct ModelConstraints<DB> {
    model: &'static str,
    table: TableName,
    constraints: &'static [DeclaredConstraint],
    backend: PhantomData<fn() -> DB>,
}

impl<DB> ModelConstraints<DB> {
    pub(crate) fn new<T>(
        model: &'static str,
        table: &T,
        constraints: &'static [DeclaredConstraint],
    ) -> Self
    where
        DB: SchemaBackend,
        T: QueryFragment<DB>,
    {
        ModelConstraints {
            model,
            table: TableName::of::<DB, T>(table),
            constraints,
            backend: PhantomData,
        }
    }

    /// The model's name.
    pub fn model(&self) -> &'static str {
        self.model
    }

    /// The model's table.
    pub fn table(&self) -> &TableName {
        &self.table
    }

    /// The declared constraints, primary key first.
    pub fn constraints(&self) -> &'static [DeclaredConstraint] {
        self.constraints
    }
}

impl<DB: SchemaBackend> ModelConstraints<DB> {
    /// `CREATE UNIQUE INDEX` statements, one per declared constraint.
    pub fn create_sql(&self) -> Vec<String> {
        self.constraints
            .iter()
            .map(|c| create_index_sql::<DB>(&self.table, c.columns))
            .collect()
    }
}

fn create_index_sql<DB: SchemaBackend>(table: &TableName, columns: &[&str]) -> String {
    DB::create_unique_index(table, &index_name(&table.name, columns), columns)
}

/// `<table>_<col>_.._key`, as PostgreSQL names a `UNIQUE` constraint; cut to
/// 63 bytes (PostgreSQL's limit, MySQL's is 64) with a hash of the full name.
fn index_name(table: &str, columns: &[&str]) -> String {
    let full = format!("{table}_{}_key", columns.join("_"));
    if full.len() <= 63 {
        return full;
    }
    // FNV-1a: stable across builds and platforms.
    let hash = full.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let mut cut = 54;
    while !full.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}_{:08x}", &full[..cut], hash as u32)
}

/// A backend whose unique indexes the check can compare, and whose DDL it
/// writes.
pub trait SchemaBackend:
    Backend<QueryBuilder: Default> + Default + crate::query::sealed::Sealed
{
    /// Whether the backend compares column names case-insensitively.
    #[doc(hidden)]
    const CASE_INSENSITIVE: bool;

    /// `CREATE UNIQUE INDEX <name> ON <table> (<columns>);`
    #[doc(hidden)]
    fn create_unique_index(table: &TableName, name: &str, columns: &[&str]) -> String;
}

/// How backend `Self` lists a table's unique indexes: two queries, and what
/// their rows say. The sync and async drivers run the queries.
#[doc(hidden)]
pub trait Schema: SchemaBackend {
    /// A row of [`table_query`](Schema::table_query).
    type TableRow: QueryableByName<Self> + Send + 'static;
    /// A row of [`indexes_query`](Schema::indexes_query).
    type IndexRow: QueryableByName<Self> + Send + 'static;

    /// The query whose rows say whether the table exists (and, on SQLite,
    /// its primary key).
    fn table_query(table: &TableName) -> BoxedSqlQuery<'static, Self, SqlQuery>;

    /// The query of the table's unique index columns.
    fn indexes_query(table: &TableName) -> BoxedSqlQuery<'static, Self, SqlQuery>;

    /// The table's unique indexes, or `None` if the table does not exist.
    fn unique_indexes(
        table: Vec<Self::TableRow>,
        indexes: Vec<Self::IndexRow>,
    ) -> Option<Vec<UniqueIndex>>;
}

/// How backend `Self` lists a table's unique indexes over connection `C`.
#[diagnostic::on_unimplemented(
    message = "the constraints of a model cannot be checked over `{C}`",
    note = "check that the backend's feature of diesel-get-or-create is enabled (`sqlite`, `postgres` or `mysql`)",
    note = "on MariaDB, connect with `diesel::MysqlConnection`: \
            Diesel 2.4's `MariadbConnection` (backend `Mariadb`) is not supported yet"
)]
pub trait Introspect<C>: SchemaBackend {
    /// The table's unique indexes, or `None` if the table does not exist.
    #[doc(hidden)]
    fn unique_indexes(conn: &mut C, table: &TableName) -> QueryResult<Option<Vec<UniqueIndex>>>;
}

impl<C, DB> Introspect<C> for DB
where
    C: Connection<Backend = DB> + LoadConnection,
    DB: Schema,
    BoxedSqlQuery<'static, DB, SqlQuery>: diesel::query_dsl::LoadQuery<'static, C, DB::TableRow>
        + diesel::query_dsl::LoadQuery<'static, C, DB::IndexRow>,
{
    fn unique_indexes(conn: &mut C, table: &TableName) -> QueryResult<Option<Vec<UniqueIndex>>> {
        let table_rows = DB::table_query(table).load(conn)?;
        if table_rows.is_empty() {
            return Ok(None);
        }
        let index_rows = DB::indexes_query(table).load(conn)?;
        Ok(DB::unique_indexes(table_rows, index_rows))
    }
}

/// A declared constraint and the index that backs it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Matched {
    /// The declared constraint.
    pub constraint: DeclaredConstraint,
    /// The index with exactly its columns.
    pub index: UniqueIndex,
}

/// A declared constraint with no usable unique index.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Missing {
    /// The declared constraint.
    pub constraint: DeclaredConstraint,
    /// Unique indexes on exactly its columns that cannot back it, each with
    /// its reason in [`UniqueIndex::unusable`].
    pub unusable: Vec<UniqueIndex>,
    /// The statement that creates it.
    pub create_sql: String,
}

/// The check of one model.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ModelReport {
    /// The model's name.
    pub model: &'static str,
    /// Its table.
    pub table: TableName,
    /// Whether the table exists; if not, every constraint is missing.
    pub table_found: bool,
    /// Declared constraints with a unique index.
    pub matched: Vec<Matched>,
    /// Declared constraints without one: `get_or_create` on such a key can
    /// create duplicate rows, and on PostgreSQL and SQLite it fails.
    pub missing: Vec<Missing>,
    /// Unique indexes the model does not declare. An insert that conflicts on
    /// one fails with a `UniqueViolation`; declare it if
    /// lookups should be able to use it.
    pub undeclared: Vec<UniqueIndex>,
}

/// The result of a check: one [`ModelReport`] per model. Its `Display` is a
/// report a human can act on, with the SQL that fixes what is missing.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ConstraintReport {
    /// The models, in the order given.
    pub models: Vec<ModelReport>,
}

impl ConstraintReport {
    /// Whether every declared constraint has its unique index.
    pub fn is_ok(&self) -> bool {
        self.models.iter().all(|m| m.missing.is_empty())
    }

    /// The statements that create every missing constraint.
    pub fn missing_sql(&self) -> Vec<&str> {
        self.models
            .iter()
            .flat_map(|m| &m.missing)
            .map(|m| m.create_sql.as_str())
            .collect()
    }

    fn count(&self, f: impl Fn(&ModelReport) -> usize) -> usize {
        self.models.iter().map(f).sum()
    }
}

impl fmt::Display for ConstraintReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let missing = self.count(|m| m.missing.len());
        let declared = self.count(|m| m.missing.len() + m.matched.len());
        let undeclared = self.count(|m| m.undeclared.len());
        writeln!(
            f,
            "{} of {declared} declared uniqueness constraints have a unique index in the database \
             ({missing} missing, {undeclared} undeclared unique indexes)",
            declared - missing
        )?;
        for m in &self.models {
            writeln!(f, "{} (table {}):", m.model, m.table)?;
            if !m.table_found {
                writeln!(f, "  table {} does not exist in the database", m.table)?;
            }
            for ok in &m.matched {
                writeln!(f, "  ok       {}: {}", ok.constraint, ok.index)?;
            }
            for missing in &m.missing {
                writeln!(
                    f,
                    "  MISSING  {}: no usable unique index on exactly these columns, so \
                     get_or_create on this key can fail or insert duplicates",
                    missing.constraint
                )?;
                for index in &missing.unusable {
                    if let Some(why) = index.unusable {
                        writeln!(f, "           {index} does not count: {why}")?;
                    }
                }
                writeln!(f, "           fix: {}", missing.create_sql)?;
            }
            for index in &m.undeclared {
                writeln!(
                    f,
                    "  note     {index} is not declared on {}: an insert that conflicts on it \
                     fails with a UniqueViolation; declare it with #[unique] or \
                     #[unique_together(..)] if lookups should use it",
                    m.model
                )?;
            }
        }
        Ok(())
    }
}

/// Why a check failed: constraints are missing, or the schema could not be
/// read.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConstraintError {
    /// At least one declared constraint has no usable unique index.
    Missing(ConstraintReport),
    /// Reading the database's indexes failed.
    Database(diesel::result::Error),
}

impl fmt::Display for ConstraintError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConstraintError::Missing(report) => {
                write!(
                    f,
                    "the database does not enforce every declared uniqueness constraint: {report}"
                )
            }
            ConstraintError::Database(e) => {
                write!(f, "could not read the database's unique indexes: {e}")
            }
        }
    }
}

impl std::error::Error for ConstraintError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConstraintError::Missing(_) => None,
            ConstraintError::Database(e) => Some(e),
        }
    }
}

impl From<diesel::result::Error> for ConstraintError {
    fn from(e: diesel::result::Error) -> Self {
        ConstraintError::Database(e)
    }
}

/// Check several models at once: each declared constraint needs a unique
/// index on exactly its columns (in any order) that is not partial, not on an
/// expression, not on a prefix and not deferrable.
///
/// `Ok` when nothing is missing (the report still lists undeclared unique
/// indexes), `Err(ConstraintError::Missing(report))` otherwise, so `?` at
/// start-up stops a service whose database does not enforce its models:
/// `verify_all(&mut conn, &[User::constraints(), Device::constraints()])?`.
/// [`guide::schema`](crate::guide::schema) has a complete example.
pub fn verify_all<C>(
    conn: &mut C,
    models: &[ModelConstraints<C::Backend>],
) -> Result<ConstraintReport, ConstraintError>
where
    C: Connection,
    C::Backend: Introspect<C>,
{
    let mut found = Vec::with_capacity(models.len());
    for model in models {
        found.push(<C::Backend as Introspect<C>>::unique_indexes(
            conn,
            &model.table,
        )?);
    }
    report(models, found)
}

/// The report on `models`, given the unique indexes found for each (`None`:
/// no such table).
pub(crate) fn report<DB: SchemaBackend>(
    models: &[ModelConstraints<DB>],
    found: Vec<Option<Vec<UniqueIndex>>>,
) -> Result<ConstraintReport, ConstraintError> {
    let report = ConstraintReport {
        models: models
            .iter()
            .zip(found)
            .map(|(model, found)| check::<DB>(model, found))
            .collect(),
    };
    if report.is_ok() {
        Ok(report)
    } else {
        Err(ConstraintError::Missing(report))
    }
}

fn check<DB: SchemaBackend>(
    model: &ModelConstraints<DB>,
    found: Option<Vec<UniqueIndex>>,
) -> ModelReport {
    let table_found = found.is_some();
    let indexes = found.unwrap_or_default();
    let same = |declared: &[&str], index: &UniqueIndex| {
        index.columns.len() == declared.len()
            && declared.iter().all(|d| {
                index.columns.iter().any(|c| {
                    if DB::CASE_INSENSITIVE {
                        c.eq_ignore_ascii_case(d)
                    } else {
                        c == d
                    }
                })
            })
    };
    let mut report = ModelReport {
        model: model.model,
        table: model.table.clone(),
        table_found,
        matched: Vec::new(),
        missing: Vec::new(),
        undeclared: Vec::new(),
    };
    for &constraint in model.constraints {
        let candidates = indexes.iter().filter(|i| same(constraint.columns, i));
        let (usable, unusable): (Vec<_>, Vec<_>) =
            candidates.cloned().partition(|i| i.unusable.is_none());
        match usable.into_iter().next() {
            Some(index) => report.matched.push(Matched { constraint, index }),
            None => report.missing.push(Missing {
                constraint,
                unusable,
                create_sql: create_index_sql::<DB>(&model.table, constraint.columns),
            }),
        }
    }
    report.undeclared = indexes
        .into_iter()
        .filter(|i| !model.constraints.iter().any(|c| same(c.columns, i)))
        .collect();
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_names_split_on_dots_outside_quotes() {
        assert_eq!(split_quoted("`users`"), ["users"]);
        assert_eq!(split_quoted("\"app\".\"users\""), ["app", "users"]);
        assert_eq!(split_quoted("\"a\"\"b\".\"c.d\""), ["a\"b", "c.d"]);
        assert_eq!(split_quoted("`a``b`"), ["a`b"]);
    }

    #[test]
    fn long_index_names_are_cut_with_a_stable_hash() {
        assert_eq!(index_name("users", &["email"]), "users_email_key");
        let long = index_name(
            "a_rather_long_table_name",
            &["first_column", "second_column", "third_column"],
        );
        assert_eq!(long.len(), 63);
        assert_eq!(
            long,
            index_name(
                "a_rather_long_table_name",
                &["first_column", "second_column", "third_column"]
            )
        );
        assert_ne!(
            long,
            index_name(
                "a_rather_long_table_name",
                &["first_column", "second_column", "fourth_column"]
            )
        );
    }
}
