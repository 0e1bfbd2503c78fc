//! MySQL and MariaDB: `information_schema.STATISTICS`, one row per column of
//! each index (`NON_UNIQUE = 0` for unique ones and the primary key).

use diesel::mysql::Mysql;
use diesel::query_builder::{BoxedSqlQuery, SqlQuery};
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::QueryableByName;

use super::{Schema, SchemaBackend, TableName, UniqueIndex, Unusable};

fn quote(identifier: &str) -> String {
    format!("`{}`", identifier.replace('`', "``"))
}

impl SchemaBackend for Mysql {
    const CASE_INSENSITIVE: bool = true;

    fn create_unique_index(table: &TableName, name: &str, columns: &[&str]) -> String {
        let on = match &table.schema {
            Some(schema) => format!("{}.{}", quote(schema), quote(&table.name)),
            None => quote(&table.name),
        };
        let columns: Vec<String> = columns.iter().map(|c| quote(c)).collect();
        format!(
            "CREATE UNIQUE INDEX {} ON {on} ({});",
            quote(name),
            columns.join(", ")
        )
    }
}

#[derive(QueryableByName)]
pub struct Count {
    #[diesel(sql_type = BigInt)]
    #[allow(dead_code)] // its existence is the answer
    n: i64,
}

#[derive(QueryableByName)]
pub struct Row {
    #[diesel(sql_type = Text)]
    name: String,
    /// `NULL` for an expression part (MySQL 8 functional indexes).
    #[diesel(sql_type = Nullable<Text>)]
    column_name: Option<String>,
    #[diesel(sql_type = BigInt)]
    prefix: i64,
}

// No row when the table does not exist.
const TABLE_EXISTS: &str = "
    SELECT 1 AS n FROM information_schema.TABLES
     WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ?";

const UNIQUE_INDEXES: &str = "
    SELECT INDEX_NAME AS name,
           COLUMN_NAME AS column_name,
           CAST(SUB_PART IS NOT NULL AS SIGNED) AS prefix
      FROM information_schema.STATISTICS
     WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? AND NON_UNIQUE = 0
     ORDER BY INDEX_NAME, SEQ_IN_INDEX";

impl Schema for Mysql {
    type TableRow = Count;
    type IndexRow = Row;

    fn table_query(table: &TableName) -> BoxedSqlQuery<'static, Mysql, SqlQuery> {
        diesel::sql_query(TABLE_EXISTS)
            .into_boxed()
            .bind::<Nullable<Text>, _>(table.schema.clone())
            .bind::<Text, _>(table.name.clone())
    }

    fn indexes_query(table: &TableName) -> BoxedSqlQuery<'static, Mysql, SqlQuery> {
        diesel::sql_query(UNIQUE_INDEXES)
            .into_boxed()
            .bind::<Nullable<Text>, _>(table.schema.clone())
            .bind::<Text, _>(table.name.clone())
    }

    fn unique_indexes(_: Vec<Count>, rows: Vec<Row>) -> Option<Vec<UniqueIndex>> {
        let mut indexes: Vec<UniqueIndex> = Vec::new();
        for row in rows {
            if indexes.last().is_none_or(|i| i.name != row.name) {
                indexes.push(UniqueIndex {
                    primary: row.name == "PRIMARY",
                    name: row.name.clone(),
                    columns: Vec::new(),
                    unusable: None,
                });
            }
            let index = indexes.last_mut().expect("pushed above");
            match row.column_name {
                Some(column) => index.columns.push(column),
                None => index.unusable = Some(Unusable::Expression),
            }
            if row.prefix != 0 && index.unusable.is_none() {
                index.unusable = Some(Unusable::Prefix);
            }
        }
        Some(indexes)
    }
}
