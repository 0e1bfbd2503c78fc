//! SQLite: `PRAGMA index_list` / `index_info` (through their table-valued
//! forms), and `PRAGMA table_info` for an `INTEGER PRIMARY KEY`, which is
//! the rowid and has no index.

use diesel::query_builder::{BoxedSqlQuery, SqlQuery};
use diesel::sql_types::{Integer, Nullable, Text};
use diesel::sqlite::Sqlite;
use diesel::QueryableByName;

use super::{Schema, SchemaBackend, TableName, UniqueIndex, Unusable};

fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

impl SchemaBackend for Sqlite {
    const CASE_INSENSITIVE: bool = true;

    fn create_unique_index(table: &TableName, name: &str, columns: &[&str]) -> String {
        // SQLite puts the schema on the index, which lives beside its table.
        let index = match &table.schema {
            Some(schema) => format!("{}.{}", quote(schema), quote(name)),
            None => quote(name),
        };
        let columns: Vec<String> = columns.iter().map(|c| quote(c)).collect();
        format!(
            "CREATE UNIQUE INDEX {index} ON {} ({});",
            quote(&table.name),
            columns.join(", ")
        )
    }
}

#[derive(QueryableByName)]
pub struct Column {
    #[diesel(sql_type = Text)]
    name: String,
    /// 1-based position in the primary key, 0 outside it.
    #[diesel(sql_type = Integer)]
    pk: i32,
}

#[derive(QueryableByName)]
pub struct Row {
    #[diesel(sql_type = Text)]
    name: String,
    /// `c` (CREATE INDEX), `u` (UNIQUE) or `pk` (PRIMARY KEY).
    #[diesel(sql_type = Text)]
    origin: String,
    #[diesel(sql_type = Integer)]
    partial: i32,
    /// `NULL` for an expression (and for the rowid).
    #[diesel(sql_type = Nullable<Text>)]
    column_name: Option<String>,
}

const COLUMNS: &str = "SELECT name, pk FROM pragma_table_info(?1, ?2) ORDER BY pk";

const UNIQUE_INDEXES: &str = "
    SELECT il.name AS name, il.origin AS origin, il.partial AS partial, ii.name AS column_name
      FROM pragma_index_list(?1, ?2) AS il
      JOIN pragma_index_info(il.name, ?2) AS ii
     WHERE il.\"unique\" = 1
     ORDER BY il.name, ii.seqno";

impl Schema for Sqlite {
    type TableRow = Column;
    type IndexRow = Row;

    fn table_query(table: &TableName) -> BoxedSqlQuery<'static, Sqlite, SqlQuery> {
        diesel::sql_query(COLUMNS)
            .into_boxed()
            .bind::<Text, _>(table.name.clone())
            .bind::<Text, _>(schema(table))
    }

    fn indexes_query(table: &TableName) -> BoxedSqlQuery<'static, Sqlite, SqlQuery> {
        diesel::sql_query(UNIQUE_INDEXES)
            .into_boxed()
            .bind::<Text, _>(table.name.clone())
            .bind::<Text, _>(schema(table))
    }

    fn unique_indexes(columns: Vec<Column>, rows: Vec<Row>) -> Option<Vec<UniqueIndex>> {
        let mut indexes: Vec<UniqueIndex> = Vec::new();
        for row in rows {
            if indexes.last().is_none_or(|i| i.name != row.name) {
                indexes.push(UniqueIndex {
                    name: row.name.clone(),
                    columns: Vec::new(),
                    primary: row.origin == "pk",
                    unusable: (row.partial != 0).then_some(Unusable::Partial),
                });
            }
            let index = indexes.last_mut().expect("pushed above");
            match row.column_name {
                Some(column) => index.columns.push(column),
                None => index.unusable = index.unusable.or(Some(Unusable::Expression)),
            }
        }
        // A primary key with no index of origin `pk` is the rowid itself.
        let key: Vec<String> = columns
            .into_iter()
            .filter(|c| c.pk > 0)
            .map(|c| c.name)
            .collect();
        if !key.is_empty() && !indexes.iter().any(|i| i.primary) {
            indexes.insert(
                0,
                UniqueIndex {
                    name: "rowid".into(),
                    columns: key,
                    primary: true,
                    unusable: None,
                },
            );
        }
        Some(indexes)
    }
}

fn schema(table: &TableName) -> String {
    table.schema.clone().unwrap_or_else(|| "main".into())
}
